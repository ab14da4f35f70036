"""Skills on real physics, both engines."""

import numpy as np
import pytest

from corrigible.errors import SkillError, UnknownNameError, UnknownObjectError
from corrigible.policies.skills import SkillLibrary
from corrigible.sim_envs import TabletopEnv
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.predicates import parse_predicate


def test_put_in_bowl_and_stack(state_env):
    skills = SkillLibrary(state_env)
    assert skills.put_first_on_second("purple block", "gray bowl").success
    assert skills.put_first_on_second("pink block", "gray block").success
    holds, details = parse_predicate(
        "in(purple block, gray bowl) and on(pink block, gray block)", state_env.scene
    ).evaluate(skills.world())
    assert holds, details
    events = state_env.trace.of_kind("skill")
    assert [e["skill"] for e in events] == ["pick", "place", "pick", "place"]
    for e in events:
        assert {"args", "params", "start_state", "end_state", "success", "duration_s"} <= e.keys()
    assert events[0]["params"]["approach_height"] == pytest.approx(0.10)


def test_drawer_open_put_inside_close(state_env):
    skills = SkillLibrary(state_env)
    with pytest.raises(SkillError, match="open it first"):
        skills.place("gray block", "drawer")
    assert skills.open_drawer().success
    assert skills.put_first_on_second("gray block", "drawer").success
    assert skills.close_drawer().success
    holds, details = parse_predicate(
        "in(gray block, drawer) and closed(drawer)", state_env.scene
    ).evaluate(skills.world())
    assert holds, details


def test_push_and_nudges(state_env):
    skills = SkillLibrary(state_env)
    assert skills.push("purple block", "left", 0.06).success
    start = state_env.arm.ee_pose().pos
    result = skills.move_ee(0.0, -0.03, 0.02)
    assert result.success
    np.testing.assert_allclose(state_env.arm.ee_pose().pos - start, [0.0, -0.03, 0.02], atol=0.007)
    assert skills.go_home().success


def test_slip_depends_on_lift_speed(engine):
    """A heavy, low-friction block held by friction alone slips on a fast lift, not a slow one."""
    layout = LayoutConfig(
        objects=[ObjectRequest(kind="block", color="red", mass=0.5, friction=0.135)],
        include_drawer=False,
    )
    outcomes = {}
    for speed in (0.05, 0.6):
        env = TabletopEnv(engine, obs_mode="state", layout=layout)
        env.reset(seed=1)
        outcomes[speed] = SkillLibrary(env).pick("red block", speed=speed)
        env.close()
    assert outcomes[0.05].success, outcomes[0.05].message
    assert not outcomes[0.6].success and "slipped" in outcomes[0.6].message


def test_parameters_change_behaviour(state_env):
    skills = SkillLibrary(state_env)
    result = skills.pick("purple block", lift_height=0.05)
    assert result.success and result.params["lift_height"] == 0.05
    with pytest.raises(UnknownNameError, match="lift_height"):
        skills.pick("purple block", lift_hieght=0.1)


def test_absent_object_is_clear_error(state_env):
    skills = SkillLibrary(state_env)
    with pytest.raises(UnknownObjectError, match="Did you mean 'purple block'"):
        skills.pick("purpel block")
    t0 = state_env.backend.time
    with pytest.raises(SkillError, match="bowl"):
        skills.pick("gray bowl")
    assert state_env.backend.time == t0
