"""Every command path respects the safety envelope, on both engines."""

import numpy as np
import pytest

from corrigible.errors import ConfigError, EmergencyStopError, MotionError, SafetyError
from corrigible.robots.arm import Pose
from corrigible.robots.safety import SafetyConfig, SafetyEnvelope


@pytest.mark.parametrize(
    "target",
    [[0.5, 0.0, -0.05], [1.2, 0.0, 0.2], [0.5, 0.9, 0.2], [0.5, 0.0, 0.9]],
    ids=["below", "far", "left", "high"],
)
def test_absolute_target_outside_is_rejected_without_motion(state_env, target):
    arm = state_env.arm
    q0 = arm.joint_state()["arm.q_rad"].copy()
    t0 = state_env.backend.time
    with pytest.raises(SafetyError, match="outside the safety envelope"):
        arm.move_to(Pose(target, 0.0))
    assert state_env.backend.time == t0  # not one physics step was taken
    np.testing.assert_allclose(arm.joint_state()["arm.q_rad"], q0, atol=1e-12)


def test_relative_move_is_clipped_and_applied_value_traced(state_env):
    arm = state_env.arm
    start = arm.commanded_pos
    result = arm.move_by([0.0, 0.0, -1.0])
    assert result.clipped
    z_min = arm.envelope.config.z_range[0]
    np.testing.assert_allclose(result.applied, [0.0, 0.0, z_min - start[2]], atol=1e-9)
    event = state_env.trace.of_kind("arm.move_by")[-1]
    assert event["clipped"] and np.allclose(event["applied"], result.applied)
    assert arm.ee_pose().pos[2] > z_min - 0.008


def test_env_step_delta_is_clipped(state_env):
    high = np.array(state_env.arm.envelope.config.z_range[1])
    for _ in range(40):
        _, _, _, _, info = state_env.step(np.array([0.0, 0.0, 1.0, -1.0]))
    assert abs(info["applied_delta_m"][2]) < 1e-9  # at the ceiling nothing more is applied
    assert state_env.arm.commanded_pos[2] <= high + 1e-9
    assert state_env.trace.of_kind("arm.step")[-1]["applied"][2] == pytest.approx(0.0, abs=1e-9)


def test_speed_is_limited(state_env):
    arm = state_env.arm
    result = arm.move_by([0.05, 0.0, 0.0], speed=5.0)
    assert result.speed == arm.envelope.config.max_speed and result.clipped


def test_estop_refuses_motion_until_reset(state_env):
    arm = state_env.arm
    arm.stop()
    with pytest.raises(EmergencyStopError):
        arm.move_by([0.0, 0.01, 0.0])
    with pytest.raises(EmergencyStopError):
        state_env.step(np.zeros(4))
    arm.reset_stop()
    assert arm.move_by([0.0, 0.01, 0.0]).reached


def test_unreachable_target_is_refused(state_env):
    arm = state_env.arm
    wide = SafetyEnvelope(
        SafetyConfig(x_range=(-1.5, 1.5), y_range=(-1.5, 1.5), z_range=(0.0, 1.5))
    )
    arm.envelope = wide
    with pytest.raises(MotionError, match="reach"):
        arm.move_to(Pose([1.4, 0.0, 0.05], 0.0))


def test_config_validation():
    with pytest.raises(ConfigError, match="x_range"):
        SafetyConfig(x_range=(0.8, 0.2))
