"""Skills on real physics, both engines."""

import numpy as np
import pytest

from corrigible.errors import SkillError, UnknownNameError, UnknownObjectError
from corrigible.policies.skills import SkillLibrary, skill_spec
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
    with pytest.raises(SkillError, match="drawer"):
        skills.pick("drawer")  # a kind pick does not take (bowls it does: test_bowl_stack.py)
    assert state_env.backend.time == t0


@pytest.mark.parametrize(
    "distance",
    [-0.1, 0.0, float("nan"), float("inf"), float("-inf"), "far", True],
    ids=["negative", "zero", "nan", "inf", "minus_inf", "text", "bool"],
)
def test_push_with_an_invalid_distance_is_refused_before_motion(state_env, distance):
    skills = SkillLibrary(state_env)
    t0 = state_env.backend.time
    with pytest.raises(SkillError, match="push distance must be a positive number"):
        skills.push("purple block", "left", distance)
    assert state_env.backend.time == t0
    assert state_env.trace.of_kind("skill") == []  # no result, let alone a success


@pytest.mark.parametrize(
    "offsets",
    [(float("nan"), 0.0, 0.0), (0.0, float("inf"), 0.0), (0.0, 0.0, float("-inf"))],
    ids=["nan", "inf", "minus_inf"],
)
def test_move_ee_with_non_finite_offsets_is_refused_before_motion(state_env, offsets):
    skills = SkillLibrary(state_env)
    t0 = state_env.backend.time
    with pytest.raises(SkillError, match="finite"):
        skills.move_ee(*offsets)
    assert state_env.backend.time == t0


def test_a_push_longer_than_the_bound_is_clipped_and_traced(state_env):
    skills = SkillLibrary(state_env)
    result = skills.push("pink block", "left", 5.0)
    assert result.args["distance"] == 0.40  # what was really asked of the arm
    clipped = state_env.trace.of_kind("skill.param_clipped")
    assert [(e["param"], e["asked"], e["used"]) for e in clipped] == [("distance", 5.0, 0.40)]


def test_parameters_outside_their_bounds_are_clipped_and_traced(state_env):
    """A near-zero speed (as a knowledge entry once held) runs at the declared minimum."""
    skills = SkillLibrary(state_env)
    lo = skill_spec("move_ee").param("speed").bounds[0]
    result = skills.move_ee(0.0, 0.0, 0.01, speed=1e-6)
    assert result.success and result.params["speed"] == lo
    assert result.duration_s < 5.0  # 1 cm at the minimum speed, not 10 000 s at 1e-6 m/s
    event = state_env.trace.of_kind("skill.param_clipped")[-1]
    assert (event["skill"], event["param"], event["asked"], event["used"]) == (
        "move_ee",
        "speed",
        1e-6,
        lo,
    )


def test_a_drawer_pull_never_exceeds_the_slide_travel(state_env):
    skills = SkillLibrary(state_env)
    travel = float(np.subtract(*state_env.scene.object("drawer").joint.range[::-1]))
    result = skills.open_drawer(pull_distance=0.30)
    assert result.success and result.params["pull_distance"] == 0.30
    event = state_env.trace.of_kind("skill.param_clipped")[-1]
    assert (event["param"], event["asked"], event["used"]) == ("pull_distance", 0.30, travel)
    assert "travels" in event["why"]
