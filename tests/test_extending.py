"""Adding a skill and a kind of object touches only their declarations.

The test declares a new skill, `tap` (a `SkillSpec` and its implementation, in this file), and a
new kind of object, `ball` (an `ObjectKind` and its geometry factory, in this file), and then
uses them through the whole stack without any other change: the scene lays balls out, the
language and the grammar planner understand "tap the red sphere", the robot API exposes
`tap(obj)` to programs and documents it to LLM planners, the sandbox runs the program in real
MuJoCo physics, and a typed correction ("tap it a bit lower") changes the new skill's declared
parameter through the skill-neutral name "height".
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from corrigible.memory.effects import SkillParamChange
from corrigible.policies.robot_api import api_doc, api_names
from corrigible.policies.skills.library import SkillLibrary, SkillResult
from corrigible.policies.skills.specs import (
    SKILLS,
    ArgSpec,
    ParamSpec,
    SkillSpec,
    default_params,
    generic_params,
    register_skill,
    skill_of_words,
)
from corrigible.robots.arm import Pose
from corrigible.session import Session, SessionConfig
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.objects import BLOCK_EDGES
from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.scene_spec import GeomSpec, ObjectSpec
from corrigible.sim_envs.vocabulary import OBJECT_KINDS, ObjectKind, object_name, register_kind


# -- the declarations: all a new skill and a new kind need ---------------------------------------
def make_ball(
    color: str,
    pos_xy: tuple[float, float],
    *,
    size_class: str = "medium",
    mass: float = 0.05,
    friction: float = 0.8,
    name: str | None = None,
) -> ObjectSpec:
    """A ball as wide as a block of the same size class."""
    radius = BLOCK_EDGES[size_class] / 2
    return ObjectSpec(
        name=name or object_name(color, "ball"),
        kind="ball",
        color=color,
        geoms=(GeomSpec(type="sphere", size=(radius, 0.0, 0.0), rgba=COLORS[color]),),
        pos=(pos_xy[0], pos_xy[1], radius),
        mass=mass,
        friction=friction,
        size_class=size_class,
        shape="sphere",
    )


BALL = ObjectKind(
    name="ball",
    nouns=("ball", "sphere"),
    shape="sphere",
    graspable=True,
    pushable=True,
    factory=make_ball,
    sized=True,
)

TAP = SkillSpec(
    name="tap",
    doc="touch the top of an object with the closed fingers",
    args=(ArgSpec(name="obj", kind="object"),),
    params=(
        ParamSpec(
            name="touch_height",
            default=0.02,
            unit="m",
            bounds=(-0.02, 0.10),
            doc="above the object's top where the fingertips stop",
            generic="height",
        ),
        ParamSpec(
            name="speed",
            default=0.2,
            unit="m/s",
            bounds=(0.01, 1.0),
            doc="while moving",
            generic="speed",
        ),
    ),
    verbs="tap|tapping|poke|touch",
    command_verbs=("tap", "poke"),
)


def tap(library: SkillLibrary, obj: str, **overrides: float) -> SkillResult:
    """Moves above `obj`, down to `touch_height` above its top, and back up."""
    library.check_object(obj)
    p = library.params_for("tap", overrides)

    def body() -> tuple[bool, str]:
        pos, _ = library.locator.pose(obj)
        top = float(pos[2]) + library.world().half_height(obj)
        above = Pose([pos[0], pos[1], top + 0.10], 0.0)
        library.arm.move_to(above, speed=p.speed)
        touch = library.arm.move_to(
            Pose([pos[0], pos[1], top + p.touch_height], 0.0), speed=p.speed
        )
        library.arm.move_to(above, speed=p.speed)
        return touch.reached, f"touched {obj!r} from {p.touch_height * 100:.1f} cm above its top"

    return library.execute("tap", {"obj": obj}, p, (obj,), body)


@pytest.fixture
def extended():
    register_kind(BALL)
    register_skill(replace(TAP, run=tap))
    try:
        yield
    finally:
        SKILLS.unregister("tap")
        OBJECT_KINDS.unregister("ball")


# -- what follows from them ----------------------------------------------------------------------
def test_the_declarations_reach_the_api_its_documentation_and_the_interpreter(extended):
    assert "tap" in api_names()
    assert api_doc()["tap(obj)"] == TAP.doc
    assert generic_params()["height"]["tap"] == "touch_height"
    assert generic_params()["speed"]["tap"] == "speed"
    assert skill_of_words("tap it a bit lower") == "tap"
    change = SkillParamChange(skill="tap", param="touch_height", delta=-0.5)
    lowered = change.apply(default_params()["tap"], "tap")
    assert lowered.touch_height == -0.02  # clipped to the declared bound


def test_a_new_skill_on_a_new_kind_runs_and_is_corrected_in_physics(extended):
    layout = LayoutConfig(
        objects=[ObjectRequest(kind="ball", color="red"), ObjectRequest(kind="bowl", color="blue")]
    )
    config = SessionConfig(perception="privileged", corrections=["tap it a bit lower"])
    replies = []
    with Session(config, layout=layout) as session:
        session.subscribe(
            lambda e: replies.append(e.data) if e.kind == "correction.reply" else None
        )
        result = session.run("tap the red sphere")
        assert session.env is not None
        used = [e["params"] for e in session.env.trace.of_kind("skill") if e["skill"] == "tap"]
    (step,) = result.steps
    assert step["status"] == "ok", step["message"]
    assert "tap('red ball')" in step["program"]
    assert [s["skill"] for s in step["skills"]] == ["tap"]
    assert step["skills"][0]["success"], step["skills"][0]["message"]
    (reply,) = replies
    assert reply["status"] == "applied" and "tap touch_height" in reply["reply"], reply
    (params,) = used
    assert params["touch_height"] < TAP.params[0].default  # "a bit lower" took effect
