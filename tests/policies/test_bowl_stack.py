"""A bowl stacked on a bowl (Code as Policies' class; issue 15): pick holds a bowl by its rim,
place centres it over the other bowl, `on(upper, lower)` judges the result from world state,
and the grammar planner writes the program. Real physics in both engines."""

from __future__ import annotations

import numpy as np
import pytest

from corrigible.errors import ParseError, SkillError
from corrigible.policies.planners.base import PlanContext
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.skills import SkillLibrary
from corrigible.session import Session, SessionConfig
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.objects import BOWL_HEIGHT, make_block, make_bowl
from corrigible.sim_envs.predicates import WorldState, parse_predicate
from corrigible.sim_envs.scene_spec import SceneSpec
from corrigible.sim_envs.tabletop_env import TabletopEnv
from corrigible.sim_envs.vocabulary import kind_names

POS = {
    "red block": [0.50, 0.10, 0.02],
    "blue bowl": [0.55, 0.20, 0.0],
    "red bowl": [0.50, -0.15, 0.0],
    "green bowl": [0.40, 0.00, 0.0],
    "yellow bowl": [0.62, -0.02, 0.0],
    "drawer": [0.45, 0.38, 0.0],
}
# Two bowls apart, a block clear of both: the scene the skill tests and the predicate use.
SCENE = SceneSpec(
    objects=(
        make_bowl("blue", (0.45, -0.25)),
        make_bowl("red", (0.62, 0.18)),
        make_block("green", (0.65, -0.05)),
    )
)


def _plan(text: str) -> str:
    return GrammarPlanner().plan(text, PlanContext(object_names=list(POS), positions=POS)).source


@pytest.mark.parametrize(
    ("text", "upper", "lower"),
    [
        ("put the blue bowl on the red bowl", "blue bowl", "red bowl"),
        ("stack the green bowl on top of the yellow bowl", "green bowl", "yellow bowl"),
        ("place the red bowl in the blue bowl", "red bowl", "blue bowl"),
    ],
)
def test_stacking_phrasings_plan_a_put_checked_by_on(text, upper, lower):
    source = _plan(text)
    assert f"put_first_on_second('{upper}', '{lower}')" in source
    # Same-size bowls cannot nest: "in" the other bowl is on its rim, so the check is `on`.
    assert f"expect='on({upper}, {lower})'" in source


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("put the blue bowl on the red block", "not on or in the red block"),
        ("put the green bowl in the drawer", "not on or in the drawer"),
    ],
)
def test_a_bowl_anywhere_but_on_a_bowl_or_the_table_is_refused_with_a_reason(text, why):
    with pytest.raises(ParseError, match=why):
        _plan(text)


def test_blocks_still_go_in_bowls():
    assert "expect='in(red block, blue bowl)'" in _plan("put the red block on the blue bowl")
    assert "bowl" not in kind_names(graspable=True)  # the families' movers are unchanged
    assert "bowl" in kind_names(pickable=True)


def _state(upper_xyz: list[float], lower_xyz: list[float]) -> WorldState:
    return WorldState(
        scene=SCENE,
        positions={
            "blue bowl": np.asarray(upper_xyz, dtype=float),
            "red bowl": np.asarray(lower_xyz, dtype=float),
            "green block": np.array([0.65, -0.05, 0.02]),
        },
        articulations={},
    )


@pytest.mark.parametrize(
    ("upper", "holds"),
    [
        ([0.605, 0.18, BOWL_HEIGHT], True),  # on its rim, 1.5 cm off centre
        ([0.45, 0.18, 0.0], False),  # beside it on the table
        ([0.62, 0.18, 0.20], False),  # held high above it
        ([0.66, 0.18, BOWL_HEIGHT], False),  # 4 cm off centre: sliding off the rim
    ],
    ids=["on_rim", "beside", "held_above", "off_centre"],
)
def test_on_predicate_for_bowls_reads_centres_and_heights(upper, holds):
    predicate = parse_predicate("on(blue bowl, red bowl)", SCENE)
    result, why = predicate.evaluate(_state(upper, [0.62, 0.18, 0.0]))
    assert result is holds, why
    assert "off the red bowl's centre" in why[0]


def test_on_is_false_for_bowls_standing_side_by_side_in_real_physics():
    env = TabletopEnv("mujoco", obs_mode="state", scene=SCENE)
    try:
        env.reset(seed=0)
        holds, why = parse_predicate("on(blue bowl, red bowl)", env.scene).evaluate(
            env.world_state()
        )
        assert not holds, why
    finally:
        env.close()


def _tilt_deg(quat: np.ndarray) -> float:
    """The angle between a body's z axis and the vertical (quaternion w, x, y, z)."""
    _, x, y, _ = quat
    return float(np.degrees(np.arccos(np.clip(1 - 2 * (x * x + y * y), -1.0, 1.0))))


def test_rim_grasp_lifts_a_bowl_and_sets_it_on_another(engine):
    env = TabletopEnv(engine, obs_mode="state", scene=SCENE)
    try:
        env.reset(seed=0)
        skills = SkillLibrary(env)
        with pytest.raises(SkillError, match="not on the green block"):
            skills.put_first_on_second("blue bowl", "green block")  # refused before moving
        picked = skills.pick("blue bowl")
        assert picked.success, picked.message
        pos, quat = env.backend.object_poses()["blue bowl"]
        assert pos[2] > 0.10 and _tilt_deg(quat) < 10.0  # lifted, hanging nearly level
        assert skills.arm.holding() == "blue bowl"
        placed = skills.place("blue bowl", "red bowl")
        assert placed.success, placed.message
        skills.go_home()
        skills.arm.wait(0.5)
        pos, quat = env.backend.object_poses()["blue bowl"]
        assert _tilt_deg(quat) < 2.0  # resting flat on the lower rim, not tipped into it
        holds, why = parse_predicate("on(blue bowl, red bowl)", env.scene).evaluate(
            env.world_state()
        )
        assert holds, why
    finally:
        env.close()


def test_grammar_program_stacks_a_bowl_through_the_session(engine):
    # The cap_classes episode "bowl-on-bowl" (seed 5004): camera perception, as in the suite.
    layout = LayoutConfig(
        objects=[
            ObjectRequest(kind="block", color="green"),
            ObjectRequest(kind="block", color="yellow"),
            ObjectRequest(kind="bowl", color="blue"),
            ObjectRequest(kind="bowl", color="red"),
        ],
        include_drawer=True,
    )
    with Session(SessionConfig(engine=engine, seed=5004), layout=layout) as session:
        session.reset()
        result = session.run("put the blue bowl on the red bowl", expect="on(blue bowl, red bowl)")
        assert result.expect_holds, result.expect_details
