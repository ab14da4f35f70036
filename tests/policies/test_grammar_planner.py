"""The grammar planner on its own: families, paraphrases, session memory, errors (no physics)."""

import pytest

from corrigible.errors import ParseError, UnknownObjectError
from corrigible.policies.planners.base import HistoryItem, PlanContext
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import api_names
from corrigible.policies.sandbox import validate_program

POS = {
    "red block": [0.50, 0.10, 0.02],
    "blue block": [0.45, -0.10, 0.02],
    "green block": [0.62, 0.00, 0.02],
    "blue bowl": [0.55, 0.20, 0.0],
    "red bowl": [0.42, 0.05, 0.0],
    "yellow bowl": [0.60, -0.20, 0.0],
    "drawer": [0.60, -0.45, 0.0],
}
API_NAMES = api_names()


def ctx(history=None):
    return PlanContext(object_names=list(POS), positions=POS, history=history or [])


@pytest.mark.parametrize(
    ("text", "family", "fragment"),
    [
        (
            "put the red block in the blue bowl",
            "pick_place",
            "put_first_on_second('red block', 'blue bowl')",
        ),
        (
            "Pick up the green cube and place it on the red block",
            "pick_place",
            "'green block', 'red block'",
        ),
        (
            "could you drop the blue cube into the red bowl?",
            "pick_place",
            "'blue block', 'red bowl'",
        ),
        ("move the red block to the top-left corner", "pick_place", "'top left corner'"),
        ("stack all the blocks", "stack", "stacked(all blocks)"),
        ("build a tower out of all the blocks", "stack", "stacked(all blocks)"),
        ("put each block in the bowl of the same colour", "matching", "get_color(block)"),
        ("put the blocks in a horizontal line", "line", "line(all blocks, horizontal)"),
        ("make a vertical column of the blocks", "line", "line(all blocks, vertical)"),
        (
            "move the block left of the red bowl to the top right corner",
            "spatial",
            "'red block', 'top right corner'",
        ),
        (
            "put the cube that is in front of the blue bowl in the bottom left corner",
            "spatial",
            "'bottom left corner'",
        ),
        (
            "put the warm coloured blocks in one bowl and the cool ones in another",
            "warm_cool",
            "warm_bowl",
        ),
        ("put the blue block in the drawer", "drawer", "open_drawer('drawer')"),
        ("move a bit to the left", "skill", "move_ee(0.0000, 0.0300, 0.0000)"),
        ("open the drawer", "skill", "open_drawer('drawer')"),
    ],
)
def test_families_and_paraphrases(text, family, fragment):
    program = GrammarPlanner().plan(text, ctx())
    assert program.family == family
    assert fragment in program.source
    report = validate_program(program.source, API_NAMES)
    assert report.ok, report.problems  # every generated program passes the sandbox's rules


def test_line_slots_keep_clear_of_bowls():
    import numpy as np

    program = GrammarPlanner().plan("put the blocks in a horizontal line", ctx())
    slots_line = next(line for line in program.source.splitlines() if line.startswith("slots = "))
    slots = np.array(eval(slots_line.split("=", 1)[1]))  # noqa: S307 - our own generated literal
    for bowl in ("blue bowl", "red bowl", "yellow bowl"):
        assert np.min(np.linalg.norm(slots - np.array(POS[bowl][:2]), axis=1)) > 0.1


def test_session_memory():
    planner = GrammarPlanner()
    first = planner.plan("put the red block in the blue bowl", ctx())
    history = [
        HistoryItem(
            instruction="put the red block in the blue bowl",
            program=first.source,
            subject="red block",
            target="blue bowl",
            moved_from={"red block": [0.5, 0.1]},
        )
    ]
    moved = dict(POS, **{"red block": [0.55, 0.2, 0.03]})
    undo = planner.plan(
        "undo that", PlanContext(object_names=list(POS), positions=moved, history=history)
    )
    assert "put_first_on_second('red block', [0.5000, 0.1000])" in undo.source
    same = planner.plan("do the same with the green block", ctx(history))
    assert "put_first_on_second('green block', 'blue bowl')" in same.source
    other = planner.plan("now the other one", ctx(history))
    assert other.subject in ("blue block", "green block") and "'blue bowl'" in other.source


def test_errors_are_clear():
    planner = GrammarPlanner()
    with pytest.raises(ParseError, match="does not understand"):
        planner.plan("how heavy is the red block", ctx())
    with pytest.raises(UnknownObjectError, match="purple"):
        planner.plan("put the purple block in the blue bowl", ctx())
    with pytest.raises(ParseError, match="nothing to undo"):
        planner.plan("undo that", ctx())
    with pytest.raises(UnknownObjectError, match="no block is behind the blue bowl"):
        planner.plan(
            "move the block behind the blue bowl to the middle",
            PlanContext(
                object_names=list(POS), positions=dict(POS, **{"blue bowl": [0.7, 0.2, 0]})
            ),
        )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "put the red block in the blue bowl and the green block in the red bowl",
            ["'red block', 'blue bowl'", "'green block', 'red bowl'"],
        ),
        (
            "put the red block in the blue bowl, then put the blue block in the red bowl",
            ["'red block', 'blue bowl'", "'blue block', 'red bowl'"],
        ),
        (
            "open the drawer and put the red block inside",
            ["open_drawer('drawer')", "'red block', 'drawer'"],
        ),
        (
            "put all the blocks in the red bowl",
            ["'blue block', 'red bowl'", "'green block', 'red bowl'"],
        ),
        (
            "put the red and blue blocks in the yellow bowl",
            ["'red block', 'yellow bowl'", "'blue block', 'yellow bowl'"],
        ),
        ("put every block in the drawer", ["open_drawer('drawer')", "'green block', 'drawer'"]),
        ("put the leftmost block in the yellow bowl", ["'red block', 'yellow bowl'"]),
        (
            "move the red block a bit to the left",
            ["put_first_on_second('red block', [0.5000, 0.1300])"],
        ),
        ("put the green block next to the blue bowl", ["put_first_on_second('green block', ["]),
    ],
)
def test_sequences_sets_relative_moves_and_relations(text, fragments):
    program = GrammarPlanner().plan(text, ctx())
    for fragment in fragments:
        assert fragment in program.source, program.source
    assert validate_program(program.source, API_NAMES).ok


@pytest.mark.parametrize(
    "text", ["put the red block in the bowl", "put the green block next to the bowl and the"]
)
def test_never_silently_misreads(text):
    with pytest.raises((ParseError, UnknownObjectError)):
        GrammarPlanner().plan(text, ctx())


@pytest.mark.parametrize(
    "payload",
    [
        "\nINJECTED()",
        "\rINJECTED()",
        "\u2028INJECTED()",
        "\x85INJECTED()",
        "'); INJECTED(); ('",
        '"""; INJECTED(); """',
        "\\'); INJECTED()  #",
        " # INJECTED\nINJECTED()",
    ],
    ids=["newline", "cr", "u2028", "nel", "quote", "triple_quote", "backslash", "comment"],
)
def test_instruction_reaches_the_program_only_as_data(payload):
    # The planner used to write the instruction into a '# comment' line: a newline in it
    # became a line of code.
    import ast

    instruction = "put the red block in the blue bowl" + payload
    try:
        program = GrammarPlanner().plan(instruction, ctx())
    except (ParseError, UnknownObjectError):
        return  # refusing is fine (a stray quote makes "the blue bowl'" unreadable)
    tree = ast.parse(program.source)
    first = tree.body[0]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    assert first.value.value == " ".join(instruction.split())  # the docstring, as data
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "INJECTED" not in names and "INJECTED" not in program.source.split("\n", 1)[1]
    assert "#" not in program.source.split("\n", 1)[0][:1]
    assert validate_program(program.source, API_NAMES).ok


def test_the_docstring_keeps_the_program_small_and_on_one_line():
    program = GrammarPlanner().plan(
        "put the red block   in the\tblue bowl " + "please " * 40, ctx()
    )
    header = program.source.split("\n", 1)[0]
    assert header.startswith("'put the red block in the blue bowl please") and len(header) <= 202


@pytest.mark.parametrize(
    "text",
    [
        "把红色方块放进蓝色碗里",
        "ضع المكعب الأحمر في الوعاء الأزرق",
        "положи красный блок в синюю миску",
        "put the 红 block in the blue bowl",
        "put the red block in the blue bówl",
        "put the \U0001f534 block in the blue bowl",
    ],
    ids=["chinese", "arabic", "cyrillic", "one_word", "accent", "emoji"],
)
def test_non_english_is_answered_honestly(text):
    with pytest.raises(ParseError, match="understands English instructions only") as info:
        GrammarPlanner().plan(text, ctx())
    foreign = [w for w in text.split() if not w.isascii()]
    assert repr(" ".join(foreign))[:30].rstrip("'") in str(info.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty instruction"),
        (" \n\t ", "empty instruction"),
        ("?!?", "no words"),
        ("\x1b[2J\x07", "no words"),
        ("put the red block in the blue bowl " * 20, "at most 500"),
    ],
    ids=["empty", "blank", "punctuation", "controls", "too_long"],
)
def test_unreadable_instructions_say_why(text, says):
    with pytest.raises(ParseError, match=says):
        GrammarPlanner().plan(text, ctx())


def test_terminal_escapes_are_ignored_not_read():
    program = GrammarPlanner().plan("\x1b[31mput the red block in the blue bowl\x1b[0m\x07", ctx())
    assert "put_first_on_second('red block', 'blue bowl')" in program.source
    assert "\x1b" not in program.source and "\\x1b" in program.source.split("\n", 1)[0]


def test_numbers_in_programs_are_finite_literals():
    from corrigible.policies.planners.grammar import _literal, _q

    assert _literal("a'\nb") == repr("a'\nb") and _literal(0.05) == "0.05"
    assert _q([0.1, 0.2]) == "[0.1000, 0.2000]"
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ParseError, match="not finite"):
            _literal(bad)
        with pytest.raises(ParseError, match="not finite"):
            _q([0.1, bad])
    with pytest.raises(TypeError):
        _literal(object())


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("get the drawer open", "open_drawer('drawer')"),
        ("could you get the drawer opened", "open_drawer('drawer')"),
        ("have the drawer shut", "close_drawer('drawer')"),
        ("pull the drawer open", "open_drawer('drawer')"),
        ("pull the drawer out", "open_drawer('drawer')"),
        ("slide the drawer shut", "close_drawer('drawer')"),
        ("push the drawer in", "close_drawer('drawer')"),
    ],
)
def test_drawer_state_said_with_get(text: str, line: str) -> None:
    """'get the drawer open' asks for the drawer's state, not to pick the drawer up."""
    program = GrammarPlanner().plan(text, PlanContext(object_names=["drawer", "red block"]))
    assert program.source.splitlines()[-1] == line
    assert "pick(" not in program.source


@pytest.mark.parametrize("verb", ["stash", "store", "stow", "tuck", "pop"])
def test_putting_away_verbs_place_the_object(verb: str) -> None:
    """'stash the red block in the drawer' is a placement (a user's word, not the grammar's)."""
    ctx = PlanContext(object_names=["drawer", "red block", "blue bowl"])
    program = GrammarPlanner().plan(f"{verb} the red block in the drawer", ctx)
    assert "put_first_on_second('red block', 'drawer')" in program.source
    program = GrammarPlanner().plan(f"{verb} the red block in the blue bowl", ctx)
    assert "put_first_on_second('red block', 'blue bowl')" in program.source


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("I need the red block in the blue bowl", "put_first_on_second('red block', 'blue bowl')"),
        ("i want the green cube on the red block", "'green block', 'red block'"),
        ("I'd like the blue block in the yellow bowl", "'blue block', 'yellow bowl'"),
        ("the red block should go in the blue bowl", "'red block', 'blue bowl'"),
        ("the green block needs to be in the red bowl", "'green block', 'red bowl'"),
        ("pls put the red blok in the blue bowl", "'red block', 'blue bowl'"),
        ("put the green blok in the red bwol", "'green block', 'red bowl'"),
    ],
)
def test_wishes_and_misspelt_nouns_are_placements(text, fragment):
    """A wish for where something ends up is a placement; a noun one edit off after a colour
    is read as the nearest noun (written by others: "pls put the orange cylindr in ...")."""
    assert fragment in GrammarPlanner().plan(text, ctx()).source


def test_a_word_near_two_nouns_is_not_guessed():
    with pytest.raises((ParseError, UnknownObjectError)):
        GrammarPlanner().plan("put the red bax in the blue bowl", ctx())
