from __future__ import annotations

import pytest

from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.errors import ConfigError, ParseError, UnknownNameError, UnknownObjectError
from corrigible.memory.effects import (
    AddedPrecondition,
    ControlCommand,
    ObjectSubstitution,
    Ordering,
    PreferenceMapping,
    SkillParamChange,
    TargetSubstitution,
)
from corrigible.policies.skills import default_params

PICK, PLACE = default_params()["pick"], default_params()["place"]


def _one(text, label, ctx):
    effects = interpret(text, label, ctx).effects
    assert len(effects) == 1, effects
    return effects[0]


@pytest.mark.parametrize(
    ("text", "skill", "param", "delta"),
    [
        ("a bit more to the left", "place", "offset_y", 0.03),
        ("a little more to the right", "place", "offset_y", -0.02),
        ("you're too far right", "place", "offset_y", 0.05),
        ("it's slightly off to the right", "place", "offset_y", 0.02),
        ("move it 2 cm back", "place", "offset_x", -0.02),
        ("a bit forward", "place", "offset_x", 0.03),
        ("grasp it lower", "pick", "grasp_height", -0.01),
        ("grab it a bit higher", "pick", "grasp_height", 0.01),
        ("grab it a bit more to the left", "pick", "grasp_offset_y", 0.03),
        ("release it lower", "place", "release_height", -0.01),
        ("go higher before you move", "place", "approach_height", 0.05),
        ("carry it higher", "place", "approach_height", 0.05),
        ("lift it higher", "pick", "lift_height", 0.05),
        ("don't lift so high", "pick", "lift_height", -0.05),
        ("pull the drawer further", "open_drawer", "pull_distance", 0.05),
        ("pull it out another 5 cm", "open_drawer", "pull_distance", 0.05),
        ("pull the drawer a bit further", "open_drawer", "pull_distance", 0.03),
        ("push it further", "push", "distance", 0.05),
    ],
)
def test_skill_deltas(ctx, text, skill, param, delta):
    change = _one(text, "skill", ctx)
    assert isinstance(change, SkillParamChange)
    assert (change.skill, change.param) == (skill, param)
    assert change.delta == pytest.approx(delta) and change.factor is None


@pytest.mark.parametrize(
    ("text", "param", "factor"),
    [
        ("slower", "speed", 0.5),
        ("a bit slower", "speed", 0.75),
        ("way too fast", "speed", 0.25),
        ("faster", "speed", 1.5),
        ("come down more slowly", "descend_speed", 0.5),
    ],
)
def test_speed_factors(ctx, text, param, factor):
    change = _one(text, "skill", ctx)
    assert change.param == param and change.factor == pytest.approx(factor)


def test_skill_without_context_is_generic_and_applies_to_any_skill():
    change = _one("a bit more to the left", "skill", InterpretContext())
    assert change.skill is None and change.param == "offset_y"
    assert change.apply(PICK, "pick").grasp_offset_y == pytest.approx(0.03)
    assert change.apply(PLACE, "place").offset_y == pytest.approx(0.03)
    slower = _one("slower", "skill", InterpretContext())
    assert slower.apply(PICK, "pick").speed == pytest.approx(0.125)


def test_imperative_clause_wins_over_description(ctx):
    change = _one("the grasp is off to the left, move right", "skill", ctx)
    assert (change.skill, change.param, change.delta) == ("pick", "grasp_offset_y", -0.05)


def test_skill_param_change_validation():
    with pytest.raises(ConfigError, match="exactly one"):
        SkillParamChange(skill="pick", param="speed")
    with pytest.raises(UnknownNameError, match="grasp_height"):
        SkillParamChange(skill="pick", param="grasp_hieght", delta=0.01)
    with pytest.raises(UnknownNameError):
        SkillParamChange(skill="pik", param="speed", factor=0.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no, the blue bowl", TargetSubstitution(new_target="blue bowl")),
        ("put it in the drawer instead", TargetSubstitution(new_target="drawer")),
        (
            "actually put it on the top left corner",
            TargetSubstitution(new_target="top left corner"),
        ),
        ("no, the block goes in the green bowl", TargetSubstitution(new_target="green bowl")),
        ("no, the centre of the table", TargetSubstitution(new_target="middle")),
        ("no the bleu block", ObjectSubstitution(new_object="blue block", excluded="red block")),
        (
            "not the red block, the green block",
            ObjectSubstitution(new_object="green block", excluded="red block"),
        ),
        (
            "take the cylindr instead",
            ObjectSubstitution(new_object="yellow cylinder", excluded="red block"),
        ),
        (
            "not that one, the other block",
            ObjectSubstitution(new_object=None, excluded="red block"),
        ),
        ("wrong one", ObjectSubstitution(new_object=None, excluded="red block")),
        ("other bowl please", TargetSubstitution(new_target=None, excluded="red bowl")),
        ("open the drawer first", AddedPrecondition(skill="open_drawer", obj="drawer")),
        ("you forgot to open the drawer", AddedPrecondition(skill="open_drawer", obj="drawer")),
        ("close the drawer first", AddedPrecondition(skill="close_drawer", obj="drawer")),
        ("do the blue block first", Ordering(first="blue block")),
        (
            "start with the green block, then the blue one",
            Ordering(first="green block", last="blue block"),
        ),
    ],
)
def test_plan_effects(ctx, text, expected):
    assert _one(text, "plan", ctx) == expected


def test_other_resolves_when_unique():
    ctx = InterpretContext(
        visible_objects=("red block", "blue block", "red bowl"), current_object="red block"
    )
    effect = _one("not that one, the other block", "plan", ctx)
    assert effect == ObjectSubstitution(new_object="blue block", excluded="red block")


def test_plan_unknown_object_names_it(ctx):
    with pytest.raises(UnknownObjectError, match="purple"):
        interpret("no, the purple bowl", "plan", ctx)


def test_plan_ambiguous_object(ctx):
    with pytest.raises(UnknownObjectError, match="ambiguous"):
        interpret("stack it on the block instead", "plan", ctx)


def test_plan_with_no_visible_objects():
    with pytest.raises(UnknownObjectError, match="no visible objects"):
        interpret("no, the blue bowl", "plan", InterpretContext())


@pytest.mark.parametrize(
    ("text", "attributes", "target", "negative"),
    [
        ("I like the red things in the left bowl", {"color": "red"}, "left bowl", False),
        ("always put cubes in the drawer", {"shape": "cube"}, "drawer", False),
        (
            "I prefer the blue bowl for green blocks",
            {"color": "green", "shape": "cube"},
            "blue bowl",
            False,
        ),
        ("never put blocks in the drawer", {"shape": "cube"}, "drawer", True),
        ("from now on red stuff goes in the purple bowl", {"color": "red"}, "purple bowl", False),
        ("my rule is warm colours in the left bowl", {"color_group": "warm"}, "left bowl", False),
    ],
)
def test_preferences(ctx, text, attributes, target, negative):
    mapping = _one(text, "preference", ctx)
    assert isinstance(mapping, PreferenceMapping)
    assert (mapping.attributes, mapping.target, mapping.is_negative) == (
        attributes,
        target,
        negative,
    )


def test_preference_pattern_and_multiple_clauses(ctx):
    effects = interpret(
        "my preference: blocks in bowls, cylinders in the drawer", "preference", ctx
    )
    assert [e.pattern for e in effects.effects] == ["shape=cube", "shape=cylinder"]
    assert effects.effects[1].target == "drawer"


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("stop!", "stop"),
        ("hold on", "pause"),
        ("wait a second", "pause"),
        ("ok continue", "resume"),
        ("never mind, carry on", "resume"),
        ("cancel that", "stop"),
        ("wait... ok, go on", "resume"),
    ],
)
def test_control(text, command):
    assert _one(text, "control", InterpretContext()) == ControlCommand(command=command)


@pytest.mark.parametrize(
    ("text", "label", "needle"),
    [
        ("hmm interesting", "skill", "hmm interesting"),
        ("do better", "plan", "do better"),
        ("I like it", "preference", "I like it"),
        ("banana", "control", "banana"),
        ("   ", "skill", "empty"),
    ],
)
def test_unparseable_is_a_parse_error_naming_the_words(ctx, text, label, needle):
    with pytest.raises(ParseError, match=needle):
        interpret(text, label, ctx)


def test_unknown_label(ctx):
    with pytest.raises(UnknownNameError, match="skill"):
        interpret("slower", "skil", ctx)


def test_to_dict_is_json_able(ctx):
    import json

    for text, label in [("slower", "skill"), ("no, the blue bowl", "plan"), ("stop", "control")]:
        json.dumps(interpret(text, label, ctx).to_dict())


def _param_cases():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from dev_param_phrasings import EXTRA_CASES

    return EXTRA_CASES


@pytest.mark.parametrize("case", _param_cases(), ids=lambda c: c.text)
def test_how_people_phrase_parameter_corrections(case):
    """Direction words scoped to the grasp or handle, lift/carry speed, a longer pull.

    "grab the handle further right" moves the grip along the handle (not the pull); "ease up
    when you lift it" / "don't rush the lift" slow the lift; "open it wider" / "give the drawer a
    harder pull" pull further (the issue's examples, and others written apart from the pools).
    """
    ctx = InterpretContext(
        visible_objects=("red cylinder", "blue bowl", "drawer"), current_skill=case.current_skill
    )
    change = _one(case.text, "skill", ctx)
    assert isinstance(change, SkillParamChange)
    skill = change.skill or case.current_skill
    value = change.factor - 1.0 if change.factor is not None else change.delta
    assert (skill, change.param_for(skill)) == (case.skill, case.param)
    assert (value > 0) == (case.sign > 0)


def test_one_speed_change_said_twice_applies_once_at_its_strongest():
    ctx = InterpretContext(visible_objects=("red cylinder",), current_skill="pick")
    (change,) = interpret("gently now, a lot slower on the way up", "skill", ctx).effects
    assert isinstance(change, SkillParamChange)
    assert (change.param_for("pick"), change.factor) == ("speed", 0.25)
    (again,) = interpret("still too fast, lift even slower", "skill", ctx).effects
    assert isinstance(again, SkillParamChange) and again.factor == 0.5


def test_a_slow_down_while_picking_slows_the_carry_too_unless_the_lift_is_named() -> None:
    """'much more gently, it barely left the table' is about handling the object, carry too."""
    ctx = InterpretContext(visible_objects=("red cylinder", "blue bowl"), current_skill="pick")
    both = interpret("much more gently, it barely left the table", "skill", ctx).effects
    assert [(e.skill, e.param) for e in both] == [("pick", "speed"), ("place", "speed")]
    assert all(e.factor == both[0].factor < 1 for e in both)
    lift = interpret("lift it more slowly", "skill", ctx).effects
    assert [(e.skill, e.param) for e in lift] == [("pick", "speed")]
    faster = interpret("you can go faster", "skill", ctx).effects
    assert len(faster) == 1
