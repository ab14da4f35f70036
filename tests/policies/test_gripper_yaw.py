"""The gripper-yaw parameter: declared once, default = no change, physically turns the block."""

import math

import numpy as np
import pytest

from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.errors import ParseError
from corrigible.memory.effects import SkillParamChange
from corrigible.policies.perception import _yaw_of_quat
from corrigible.policies.skills import SkillLibrary, skill_spec
from corrigible.policies.skills.specs import YAW_BOUNDS, default_params, generic_params
from corrigible.sim_envs import TabletopEnv
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest

ONE_BLOCK = LayoutConfig(objects=[ObjectRequest(kind="block", color="red")], include_drawer=False)


def test_yaw_is_declared_once_for_grasp_and_place():
    for skill, name in (("pick", "grasp_yaw"), ("place", "place_yaw")):
        param = skill_spec(skill).param(name)
        assert (param.unit, param.bounds, param.default) == ("rad", YAW_BOUNDS, 0.0)
        assert default_params()[skill].to_dict()[name] == 0.0
    assert generic_params()["yaw"] == {"pick": "grasp_yaw", "place": "place_yaw"}
    assert skill_spec("pick").param("grasp_yaw").clip(3.0) == pytest.approx(math.pi / 2)


def _turn_after_place(engine: str, **params: float) -> float:
    """How far (rad) the block's body turned between its start and after pick + place."""
    env = TabletopEnv(engine, obs_mode="state", layout=ONE_BLOCK)
    env.reset(seed=3)
    try:
        skills = SkillLibrary(env)
        before = _yaw_of_quat(env.backend.object_poses()["red block"][1])
        grasp = {k: v for k, v in params.items() if k == "grasp_yaw"}
        place = {k: v for k, v in params.items() if k == "place_yaw"}
        assert skills.pick("red block", **grasp).success
        result = skills.place("red block", "middle", **place)
        assert result.success, result.message
        assert result.params["place_yaw"] == place.get("place_yaw", 0.0)
        after = _yaw_of_quat(env.backend.object_poses()["red block"][1])
        return float((after - before + np.pi) % (2 * np.pi) - np.pi)
    finally:
        env.close()


# Measured (seed 3, one red block): MuJoCo turns 1.569 for a quarter turn, PyBullet 1.816 (the
# block slips a little in PyBullet's grip while the wrist turns).
@pytest.mark.parametrize("engine", ["mujoco", "pybullet"])
def test_place_yaw_turns_the_block_by_about_that_angle(engine):
    assert abs(_turn_after_place(engine)) < 0.05  # not set: the block keeps its yaw
    assert _turn_after_place(engine, place_yaw=math.pi / 2) == pytest.approx(math.pi / 2, abs=0.3)
    assert _turn_after_place(engine, place_yaw=-0.4) == pytest.approx(-0.4, abs=0.1)


@pytest.mark.parametrize(
    "engine",
    [
        "mujoco",
        pytest.param(
            "pybullet",
            marks=pytest.mark.xfail(
                strict=True,
                reason="measured: PyBullet's fingers pinch the block at its edges when they close "
                "0.4 rad off its faces and it does not turn into line with them (0.001 rad), "
                "so a turned grasp alone leaves the block's yaw unchanged; place_yaw turns it",
            ),
        ),
    ],
)
def test_grasp_yaw_turns_the_block_by_about_that_angle(engine):
    """Fingers closing 0.4 rad off the faces turn the block into line with them."""
    assert _turn_after_place(engine, grasp_yaw=0.4) == pytest.approx(0.4, abs=0.1)


# -- corrections that turn the hand ---------------------------------------------------------
PLACING = InterpretContext(current_skill="place", current_object="red block")
PICKING = InterpretContext(current_skill="pick", current_object="red block")


@pytest.mark.parametrize(
    ("text", "ctx", "skill", "param", "rad"),
    [
        ("turn the gripper 90 degrees", PICKING, "pick", "grasp_yaw", math.pi / 2),
        ("turn the gripper 90 degrees", PLACING, "place", "place_yaw", math.pi / 2),
        ("rotate your hand a bit when you grab it", PLACING, "pick", "grasp_yaw", 0.2618),
        ("twist it a quarter turn before you put it down", PICKING, "place", "place_yaw", 1.5708),
        ("rotate it 30 degrees clockwise", PICKING, "pick", "grasp_yaw", -0.5236),
        ("spin the wrist 1.2 rad counterclockwise", PICKING, "pick", "grasp_yaw", 1.2),
        ("turn it 270 degrees", PLACING, "place", "place_yaw", math.pi / 2),  # = a quarter turn
        ("you turned it too much", PLACING, "place", "place_yaw", -0.5236),
    ],
)
def test_turn_corrections_change_the_yaw(text, ctx, skill, param, rad):
    (change,) = interpret(text, "skill", ctx).effects
    assert isinstance(change, SkillParamChange)
    assert (change.skill, change.param, change.factor) == (skill, param, None)
    assert change.delta == pytest.approx(rad, abs=1e-4)


def test_a_turn_without_an_amount_to_line_up_is_refused():
    with pytest.raises(ParseError, match="not how far"):
        interpret("twist the gripper to line up with the block", "skill", PICKING)


def test_a_correction_turns_the_placed_block_in_physics():
    """'twist it a quarter turn before you put it down' -> place_yaw -> the block turns ~90 deg."""
    (change,) = interpret(
        "twist it a quarter turn before you put it down", "skill", PICKING
    ).effects
    place = change.apply(default_params()["place"], "place")
    env = TabletopEnv("mujoco", obs_mode="state", layout=ONE_BLOCK)
    env.reset(seed=3)
    try:
        skills = SkillLibrary(env, params={"place": place})
        before = _yaw_of_quat(env.backend.object_poses()["red block"][1])
        assert skills.put_first_on_second("red block", "middle").success
        after = _yaw_of_quat(env.backend.object_poses()["red block"][1])
    finally:
        env.close()
    turned = (after - before + np.pi) % (2 * np.pi) - np.pi
    assert turned == pytest.approx(math.pi / 2, abs=0.3)
