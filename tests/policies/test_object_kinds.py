"""Object kinds come from `sim_envs.vocabulary` alone: its nouns reach every consumer, and a new
registered kind (one `ObjectKind` plus its factory) is laid out, named, understood, planned and
judged without touching language, the planner, layouts or predicates (no physics here)."""

from __future__ import annotations

import pytest

from corrigible.errors import ConfigError
from corrigible.policies.language import mentioned_objects, parse_skill_command
from corrigible.policies.planners.base import PlanContext
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.suites.schema import SuiteObject
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout
from corrigible.sim_envs.objects import BLOCK_EDGES
from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.predicates import parse_predicate
from corrigible.sim_envs.scene_spec import GeomSpec, ObjectSpec
from corrigible.sim_envs.vocabulary import (
    OBJECT_KINDS,
    ObjectKind,
    kind_nouns,
    kind_of_name,
    object_name,
    register_kind,
    requestable_kind,
)


def _context(scene) -> PlanContext:
    names = [o.name for o in scene.objects]
    return PlanContext(object_names=names, positions={o.name: list(o.pos) for o in scene.objects})


def _plan(text: str, scene) -> str:
    return GrammarPlanner().plan(text, _context(scene)).source


# -- built-in kinds: every noun the vocabulary declares --------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("put the red box in the blue dish", [("block", "red"), ("bowl", "blue")]),
        ("grab the yellow can", [("cylinder", "yellow")]),
        ("stack the grey bricks", [("block", "gray")]),
        ("put both green dishes away", [("bowl", "green")]),
        ("can you open the drawer", []),  # "can" is a noun only after a colour
        ("the brown drawer", []),  # furniture is never requested
    ],
    ids=["box-dish", "can", "plural-synonym", "plural-es", "verb-can", "furniture"],
)
def test_mentioned_objects_use_every_noun(text, expected):
    assert [(r.kind, r.color) for r in mentioned_objects(text)] == expected


def test_skill_commands_read_plural_and_synonym_nouns():
    names = ["red block", "blue bowl", "yellow cylinder", "drawer"]
    (call,) = parse_skill_command("put the red brick in the blue dish", names)
    assert call.args == {"obj": "red block", "target": "blue bowl"}
    (call,) = parse_skill_command("pick up the yellow can", names)
    assert call.args == {"obj": "yellow cylinder"}


def test_planner_puts_every_box_in_a_dish():
    scene = sample_layout(
        5,
        LayoutConfig(
            objects=[
                ObjectRequest(kind="block", color="red"),
                ObjectRequest(kind="block", color="green"),
                ObjectRequest(kind="bowl", color="gray"),
            ]
        ),
    )
    source = _plan("put all the boxes in the gray dish", scene)
    assert "put_first_on_second('red block', 'gray bowl')" in source
    assert "in(red block, gray bowl) and in(green block, gray bowl)" in source


def test_predicates_take_any_noun_of_a_kind():
    scene = sample_layout(
        0,
        LayoutConfig(
            objects=[
                ObjectRequest(kind="block", color="red"),
                ObjectRequest(kind="block", color="blue"),
                ObjectRequest(kind="bowl", color="yellow"),
            ]
        ),
    )
    pred = parse_predicate("in(red cube, yellow dish) and stacked(all boxes)", scene)
    assert [str(a) for a in pred.atoms] == [
        "in(red block, yellow bowl)",
        "stacked(red block, blue block)",
    ]


def test_unknown_kinds_are_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match="Did you mean 'bowl'"):
        requestable_kind("bwol")
    with pytest.raises(ConfigError, match="ObjectRequest.kind.*'drawer'"):
        ObjectRequest(kind="drawer", color="red")  # furniture is built by the layout itself
    with pytest.raises(ValueError, match="Did you mean 'cylinder'"):
        SuiteObject(kind="cylindre", color="red")


def test_scenario_objects_and_preferences_check_the_vocabulary():
    from corrigible.corrections.scenarios.schema import ObjectModel, PreferenceModel

    assert ObjectModel(kind="cylinder", color="red").request().kind == "cylinder"
    with pytest.raises(ValueError, match="Did you mean 'block'"):
        ObjectModel(kind="blok", color="red")
    assert PreferenceModel(shape="cube", target="blue bowl").matches("red", "cube")
    with pytest.raises(ValueError, match="graspable kind"):
        PreferenceModel(shape="bowl", target="blue bowl")


# -- a new kind --------------------------------------------------------------------------------
def make_ball(
    color: str,
    pos_xy: tuple[float, float],
    *,
    size_class: str = "medium",
    mass: float = 0.05,
    friction: float = 0.8,
    name: str | None = None,
) -> ObjectSpec:
    """A ball as big as a block of the same size class."""
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


@pytest.fixture
def ball():
    kind = register_kind(
        ObjectKind(
            name="ball",
            nouns=("ball", "sphere"),
            shape="sphere",
            graspable=True,
            pushable=True,
            factory=make_ball,
            sized=True,
        )
    )
    try:
        yield kind
    finally:
        OBJECT_KINDS.unregister("ball")


@pytest.fixture
def ball_scene(ball):
    text = "put the red sphere in the blue bowl"
    required = mentioned_objects(text, "in(green ball, blue bowl)")
    assert [(r.kind, r.color) for r in required] == [
        ("ball", "red"),
        ("bowl", "blue"),
        ("ball", "green"),
    ]
    return sample_layout(1, LayoutConfig(objects=required, include_drawer=True))


def test_new_kind_is_laid_out_with_its_factory(ball_scene):
    red = ball_scene.object("red ball")
    assert (red.kind, red.shape, red.geoms[0].type) == ("ball", "sphere", "sphere")
    assert kind_of_name("red ball") == "ball"
    assert "spheres" in kind_nouns(graspable=True, plural=True)


def test_new_kind_is_understood_and_planned(ball_scene):
    names = [o.name for o in ball_scene.objects]
    (call,) = parse_skill_command("pick up the green sphere", names)
    assert call.args == {"obj": "green ball"}
    source = _plan("put the red sphere in the blue bowl", ball_scene)
    assert "put_first_on_second('red ball', 'blue bowl')" in source
    assert "expect='in(red ball, blue bowl)'" in source
    source = _plan("put all the balls in the blue bowl", ball_scene)
    assert "in(red ball, blue bowl) and in(green ball, blue bowl)" in source
    source = _plan("put the red and green balls in the drawer", ball_scene)
    assert "put_first_on_second('green ball', 'drawer')" in source


def test_new_kind_is_judged_by_predicates(ball_scene):
    pred = parse_predicate("in(red sphere, blue bowl) and together(all balls)", ball_scene)
    assert [str(a) for a in pred.atoms] == [
        "in(red ball, blue bowl)",
        "together(red ball, green ball)",
    ]


def test_new_kind_is_a_suite_object(ball):
    request = SuiteObject(kind="ball", color="red", size="small")
    assert request.kind == "ball"
