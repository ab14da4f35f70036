import pytest

from corrigible.errors import ParseError, UnknownObjectError
from corrigible.policies.language import parse_magnitude, parse_skill_command

NAMES = ["red block", "blue block", "blue bowl", "green bowl", "red cylinder", "drawer"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pick up the red block", "pick(obj='red block')"),
        ("grab the blue cube", "pick(obj='blue block')"),
        ("Could you lift the red cylinder?", "pick(obj='red cylinder')"),
        (
            "put the red block in the blue bowl",
            "put_first_on_second(obj='red block', target='blue bowl')",
        ),
        (
            "place the blue block on top of the red block",
            "put_first_on_second(obj='blue block', target='red block')",
        ),
        (
            "drop the blue cube into the green bowl",
            "put_first_on_second(obj='blue block', target='green bowl')",
        ),
        (
            "put the red block in the top-left corner",
            "put_first_on_second(obj='red block', target='top left corner')",
        ),
        ("open the drawer", "open_drawer(drawer='drawer')"),
        ("shut the drawer", "close_drawer(drawer='drawer')"),
        ("go home", "go_home()"),
        (
            "push the blue block to the left by 5 cm",
            "push(obj='blue block', direction='left', distance=0.05)",
        ),
    ],
)
def test_paraphrases(text, expected):
    assert [str(c) for c in parse_skill_command(text, NAMES)] == [expected]


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("move a bit to the left", [0.0, 0.03, 0.0]),
        ("go up slightly", [0.0, 0.0, 0.02]),
        ("a lot lower", [0.0, 0.0, -0.10]),
        ("move 4 cm forward", [0.04, 0.0, 0.0]),
        ("a tiny bit to the right", [0.0, -0.01, 0.0]),
        ("higher", [0.0, 0.0, 0.05]),
    ],
)
def test_nudges_map_vague_magnitudes_to_metres(text, delta):
    (call,) = parse_skill_command(text, NAMES)
    assert call.skill == "move_ee"
    assert call.args["delta"] == pytest.approx(delta)


def test_magnitudes_are_ordered():
    small, _ = parse_magnitude("a tiny bit")
    medium, _ = parse_magnitude("a bit")
    large, _ = parse_magnitude("a lot")
    assert small < medium < large


@pytest.mark.parametrize("text", ["dance a jig", "move left blah", "", "fly to the moon"])
def test_unknown_phrasings_name_what_was_not_understood(text):
    with pytest.raises(ParseError) as info:
        parse_skill_command(text, NAMES)
    if "blah" in text:
        assert "blah" in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("pick up the yellow block", "yellow block"),
        ("grab the red thing", "ambiguous"),
        ("put the red block in the pink bowl", "pink"),
    ],
)
def test_unknown_objects_are_named(text, fragment):
    with pytest.raises(UnknownObjectError, match=fragment):
        parse_skill_command(text, NAMES)
