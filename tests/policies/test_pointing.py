"""Pointing the gripper at an object (Code as Policies' "point the gripper at ..."):
the phrasings, the `pointing_at` predicate, and real episodes in both engines."""

from __future__ import annotations

import numpy as np
import pytest

from corrigible.errors import UnknownObjectError
from corrigible.policies.planners.base import PlanContext
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.session import Session, SessionConfig
from corrigible.sim_envs.predicates import WorldState, parse_predicate
from corrigible.sim_envs.tabletop_env import TabletopEnv

POS = {
    "red block": [0.50, 0.10, 0.02],
    "green block": [0.62, 0.00, 0.02],
    "blue bowl": [0.55, 0.20, 0.0],
}


@pytest.mark.parametrize(
    ("text", "obj"),
    [
        ("point the gripper at the red block", "red block"),
        ("point at the blue bowl", "blue bowl"),
        ("aim your gripper at the green cube", "green block"),
        ("Hover over the red block.", "red block"),
        ("point the arm towards the blue bowl", "blue bowl"),
    ],
)
def test_pointing_phrasings_plan_point_at_with_a_checkpoint(text, obj):
    program = GrammarPlanner().plan(text, PlanContext(object_names=list(POS), positions=POS))
    assert f"point_at('{obj}')" in program.source
    assert f"pointing_at({obj})" in program.source


def test_pointing_at_an_absent_object_is_refused_by_name():
    with pytest.raises(UnknownObjectError, match="purple block"):
        GrammarPlanner().plan(
            "point the gripper at the purple block",
            PlanContext(object_names=list(POS), positions=POS),
        )


def test_pointing_at_predicate_reads_the_gripper_position():
    env = TabletopEnv("mujoco", obs_mode="state")
    try:
        env.reset(seed=0)
        obj = next(o.name for o in env.scene.objects if o.kind == "block")
        predicate = parse_predicate(f"pointing_at({obj})", env.scene)
        state = env.world_state()
        pos = state.positions[obj]
        top = pos[2] + env.scene.object(obj).top_above_origin()

        def at(ee):
            return WorldState(state.scene, state.positions, state.articulations, ee)

        over, aside = at(np.r_[pos[:2], top + 0.1]), at(np.r_[pos[:2] + 0.05, top + 0.1])
        touching, unknown = at(np.r_[pos[:2], top]), at(None)
        assert predicate.evaluate(over)[0]
        assert not predicate.evaluate(aside)[0]
        assert not predicate.evaluate(touching)[0]
        holds, why = predicate.evaluate(unknown)
        assert not holds and "not in this snapshot" in why[0]
    finally:
        env.close()


@pytest.mark.parametrize("engine", ["mujoco", "pybullet"])
def test_the_arm_stays_pointing_after_the_program(engine):
    with Session(SessionConfig(engine=engine, seed=0)) as session:
        session.reset(mention=["pink block"])
        target = next(o.name for o in session.env.scene.objects if o.kind == "bowl")
        result = session.run(f"point the gripper at the {target}", expect=f"pointing_at({target})")
        assert result.expect_holds, result.expect_details
        # A later instruction starts from the pointing pose and still works.
        result = session.run("point at the pink block", expect="pointing_at(pink block)")
        assert result.expect_holds, result.expect_details
