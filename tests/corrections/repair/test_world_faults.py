"""The faults that act on perception and on the world: they strike, in real physics."""

from __future__ import annotations

import numpy as np

from corrigible.corrections.repair.faults import EXPECTED_CLASS, Fault, FaultInjector
from corrigible.policies.middleware import SkillCall
from corrigible.policies.perception import CameraLocator
from corrigible.policies.skills.specs import skill_spec


def _injector(env, fault: Fault, events: list) -> tuple[FaultInjector, CameraLocator]:
    locator = CameraLocator(env.backend, env.camera)
    names = [o.name for o in env.scene.objects]
    injector = FaultInjector(
        fault, names, env.arm, lambda kind, **f: events.append((kind, f)), locator=locator, seed=3
    )
    return injector, locator


def test_perception_offset_shifts_every_reported_position(state_env) -> None:
    events: list = []
    plain = CameraLocator(state_env.backend, state_env.camera)
    _, locator = _injector(state_env, Fault(kind="perception_offset", offset=(0.03, -0.01)), events)
    shift = locator.pose("pink block")[0] - plain.pose("pink block")[0]
    np.testing.assert_allclose(shift, [0.03, -0.01, 0.0], atol=1e-9)
    assert events and events[0][0] == "fault.injected"
    assert EXPECTED_CLASS["perception_offset"] == "perception_error"


def test_pose_noise_differs_per_look_around_the_truth(state_env) -> None:
    events: list = []
    plain = CameraLocator(state_env.backend, state_env.camera)
    _, locator = _injector(state_env, Fault(kind="pose_noise", noise=0.01), events)
    truth = plain.pose("pink block")[0]
    looks = np.array([locator.pose("pink block")[0] - truth for _ in range(200)])
    assert np.all(looks[:, 2] == 0.0)
    assert 0.006 < float(looks[:, :2].std()) < 0.014  # the asked-for 1 cm, per axis
    assert len({tuple(np.round(v, 6)) for v in looks}) == 200


def test_knocked_over_lays_the_placed_object_down_beside_its_target(state_env) -> None:
    events: list = []
    injector, _ = _injector(state_env, Fault(kind="knocked_over"), events)
    names = [o.name for o in state_env.scene.objects]
    block = next(n for n in names if n.endswith("block"))
    before = state_env.backend.object_poses()[block][0].copy()
    call = SkillCall(spec=skill_spec("place"), args=[block, "middle"])
    assert injector.around_skill(call, lambda c: True)  # the place itself succeeded
    state_env.backend.step(200)
    pos, quat = state_env.backend.object_poses()[block]
    assert 0.07 < float(np.linalg.norm(pos[:2] - before[:2])) < 0.11
    up = np.array([0.0, 0.0, 1.0])
    w, x, y, z = quat  # the block's own z axis now lies in the table plane
    axis_z = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
    assert abs(float(axis_z @ up)) < 0.2
    assert [k for k, _ in events] == ["fault.injected"]
    assert injector.around_skill(call, lambda c: True)  # once only
    assert len(events) == 1
