"""Writes the hostile-input corpus: bad scenario, suite and correction files and CLI options.

Run from anywhere: `python tests/hostile_inputs/make_corpus.py`. It rewrites every file of the
corpus, `expected.json` (path -> exit status, the words the message must contain, why) and the
table in `README.md`, all from `CASES` below, so the files, what they test and what they must
give stay one list. `tests/launch/test_hostile_inputs.py` runs each file through the real CLI.

A case's `needles` are words its error message (stderr) must contain; `{name}` stands for the
file's own name. Options cases are a JSON list of arguments (`{tmp}` is a scratch folder the
test makes, holding a plain file named `file`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The command each folder's files are given to; FILE is the case's path, TMP a scratch folder.
COMMANDS: dict[str, list[str]] = {
    "scenarios": ["demo", "--scenarios", "FILE", "--workers", "1", "--out", "TMP/demo.json"],
    "suites": ["eval", "--suite", "FILE", "--out", "TMP/eval.json"],
    "corrections": ["route", "--file", "FILE"],
    "options": [],  # the file holds the whole argument list
}


@dataclass(frozen=True)
class Case:
    """One corpus file and what the CLI must answer."""

    path: str  # relative to this folder: "<class>/<name>"
    data: bytes  # the file's bytes
    why: str  # what is hostile about it
    needles: tuple[str, ...] = ()  # words the message must contain ({name}: the file name)
    exit: int = 2  # expected exit status
    tags: tuple[str, ...] = field(default=())  # "subprocess": also run as a real process


# -------------------------------------------------------------------------- scenario files
_SCENARIO = """\
version: 1
name: hostile
objects:
  - {kind: block, color: red}
  - {kind: bowl, color: blue}
rounds:
  - - {instruction: put the red block in the blue bowl, expect: "in(red block, blue bowl)", seed: 1}
    - {instruction: put the red block in the blue bowl, expect: "in(red block, blue bowl)", seed: 2}
"""
_TASK = '{instruction: put the red block in the blue bowl, expect: "in(red block, blue bowl)"'


def _scenario(old: str = "", new: str = "", extra: str = "") -> bytes:
    assert old in _SCENARIO
    return (_SCENARIO.replace(old, new, 1) + extra).encode()


def _deep_yaml(levels: int) -> bytes:
    return ("name: deep\nobjects: " + "[" * levels + "]" * levels + "\n").encode()


def _laughs() -> bytes:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


_COLORS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "gray")
_CROWD = "".join(f"  - {{kind: bowl, color: {c}}}\n" for c in _COLORS)

SCENARIOS = [
    Case(
        "scenarios/not_utf8.yaml",
        _scenario("name: hostile", "name: hostile\ndescription: caf\xe9").replace(
            b"caf\xc3\xa9", b"caf\xe9"
        ),
        "a Latin-1 byte (0xe9) in a description",
        ("{name}", "not UTF-8", "byte offset"),
        tags=("subprocess",),
    ),
    Case(
        "scenarios/utf16.yaml",
        _SCENARIO.encode("utf-16"),
        "the whole file in UTF-16 (with its byte-order mark)",
        ("{name}", "not UTF-8", "byte offset 0"),
    ),
    Case(
        "scenarios/not_yaml.yaml",
        b"name: hostile\nobjects: [{kind: block, color: red}\nrounds: [[\n",
        "an unclosed flow sequence",
        ("{name}", "not valid YAML", "line"),
    ),
    Case(
        "scenarios/tab_indent.yaml",
        _scenario("  - {kind: bowl", "\t- {kind: bowl"),
        "a tab used for indentation",
        ("{name}", "not valid YAML", "line 5"),
    ),
    Case(
        "scenarios/deep_nesting.yaml",
        _deep_yaml(5000),
        "5000 nested lists (a recursion bomb for a recursive parser)",
        ("{name}", "nested deeper than"),
    ),
    Case(
        "scenarios/billion_laughs.yaml",
        _laughs(),
        "nine aliases of nine aliases ... (9^9 values once expanded)",
        ("{name}", "more than", "alias"),
    ),
    Case(
        "scenarios/self_alias.yaml",
        b"name: loop\nobjects: &o [*o]\n",
        "a list that contains itself through an alias",
        ("{name}", "nested deeper than"),
    ),
    Case("scenarios/empty.yaml", b"", "an empty file", ("{name}", "empty")),
    Case(
        "scenarios/top_level_list.yaml",
        b"- name: hostile\n",
        "a list where a mapping belongs",
        ("{name}", "must be a mapping", "list"),
    ),
    Case(
        "scenarios/expect_unknown_object.yaml",
        _scenario(
            'expect: "in(red block, blue bowl)", seed: 2}',
            'expect: "in(red block, purple bowl)", seed: 2}',
        ),
        "an expect naming an object that is not in that task's layout",
        ("{name}", "round 1, task 2", "rounds[0][1].expect", "purple bowl"),
        tags=("subprocess",),
    ),
    Case(
        "scenarios/expect_unknown_predicate.yaml",
        _scenario(
            'expect: "in(red block, blue bowl)", seed: 1}', 'expect: "inn(red block)", seed: 1}'
        ),
        "an unknown predicate name",
        ("{name}", "round 1, task 1", "expect", "Did you mean 'in'"),
    ),
    Case(
        "scenarios/expect_unparsable.yaml",
        _scenario(
            'expect: "in(red block, blue bowl)", seed: 1}', 'expect: "red block, blue", seed: 1}'
        ),
        "a predicate that is no name(args)",
        ("{name}", "round 1, task 1", "expect", "cannot read predicate"),
    ),
    Case(
        "scenarios/expect_wrong_arity.yaml",
        _scenario(
            'expect: "in(red block, blue bowl)", seed: 1}', 'expect: "in(red block)", seed: 1}'
        ),
        "a predicate with too few arguments",
        ("{name}", "round 1, task 1", "takes 2 argument"),
    ),
    Case(
        "scenarios/task_objects_lack_expect.yaml",
        _scenario(
            extra="  - - instruction: put the red block in the blue bowl\n"
            '      expect: "in(red block, blue bowl)"\n'
            "      seed: 11\n"
            "      objects: [{kind: block, color: red}, {kind: bowl, color: green}]\n"
        ),
        "round 2 replaces the objects with a layout that has no blue bowl",
        ("{name}", "round 2, task 1", "rounds[1][0].expect", "blue bowl"),
    ),
    Case(
        "scenarios/duplicate_objects.yaml",
        _scenario(
            "  - {kind: bowl, color: blue}",
            "  - {kind: bowl, color: blue}\n" + "  - {kind: block, color: red, size: small}",
        ),
        "two objects that would both be called 'red block'",
        ("{name}", "round 1, task 1", "two objects named 'red block'"),
    ),
    Case(
        "scenarios/overcrowded.yaml",
        _scenario("  - {kind: bowl, color: blue}\n", _CROWD),
        "eight bowls and a block: more than the table can hold",
        ("{name}", "round 1, task 1", "cover", "fewer objects"),
    ),
    Case(
        "scenarios/camera_bias_nan.yaml",
        _scenario(extra="camera_bias: [0.0, .nan, 0.0]\n"),
        "a camera bias of NaN",
        ("{name}", "camera_bias[1]", "finite"),
        tags=("subprocess",),
    ),
    Case(
        "scenarios/camera_bias_inf.yaml",
        _scenario(extra="camera_bias: [-.inf, 0.0, 0.0]\n"),
        "a camera bias of -infinity",
        ("{name}", "camera_bias[0]", "finite"),
    ),
    Case(
        "scenarios/camera_bias_huge.yaml",
        _scenario(extra="camera_bias: [0.0, 0.0, 1.0e+9]\n"),
        "a camera bias of 1e9 m",
        ("{name}", "camera_bias[2]", "0.1"),
    ),
    Case(
        "scenarios/camera_bias_two.yaml",
        _scenario(extra="camera_bias: [0.01, 0.01]\n"),
        "a camera bias with two components",
        ("{name}", "camera_bias"),
    ),
    Case(
        "scenarios/friction_nan.yaml",
        _scenario("{kind: block, color: red}", "{kind: block, color: red, friction: .nan}"),
        "an object friction of NaN",
        ("{name}", "objects[0].friction"),
    ),
    Case(
        "scenarios/mass_negative.yaml",
        _scenario("{kind: block, color: red}", "{kind: block, color: red, mass: -1}"),
        "a negative mass",
        ("{name}", "objects[0].mass"),
    ),
    Case(
        "scenarios/drawer_damping_inf.yaml",
        _scenario(extra="drawer: {damping: .inf}\n"),
        "an infinite drawer damping",
        ("{name}", "drawer.damping"),
    ),
    Case(
        "scenarios/seed_negative.yaml",
        _scenario("seed: 1}", "seed: -5}"),
        "a negative layout seed",
        ("{name}", "rounds[0][0].seed"),
    ),
    Case(
        "scenarios/seed_huge.yaml",
        _scenario("seed: 1}", "seed: 1180591620717411303424}"),
        "a layout seed of 2^70",
        ("{name}", "rounds[0][0].seed"),
    ),
    Case(
        "scenarios/seed_5000_digits.yaml",
        _scenario("seed: 1}", "seed: " + "9" * 5000 + "}"),
        "an integer too long for Python to convert (more than 4300 digits)",
        ("{name}", "cannot be read", "4300 digits"),
    ),
    Case(
        "scenarios/bad_date.yaml",
        _scenario(extra="description: 2024-13-45\n"),
        "a date YAML recognises but no calendar has",
        ("{name}", "cannot be read", "month"),
    ),
    Case(
        "scenarios/unknown_kind.yaml",
        _scenario("{kind: block, color: red}", "{kind: blok, color: red}"),
        "a misspelt object kind",
        ("{name}", "objects[0].kind", "Did you mean 'block'"),
    ),
    Case(
        "scenarios/unknown_field.yaml",
        _scenario(extra="surprise: 1\n"),
        "a field the format does not have",
        ("{name}", "surprise"),
    ),
    Case(
        "scenarios/rounds_not_a_list.yaml",
        _scenario(
            "rounds:\n" + "  - - " + _TASK + ", seed: 1}\n" + "    - " + _TASK + ", seed: 2}\n",
            "rounds: all of them\n",
        ),
        "a string where the rounds belong",
        ("{name}", "rounds"),
    ),
    Case(
        "scenarios/blank_instruction.yaml",
        _scenario("{instruction: put the red block in the blue bowl,", "{instruction: '   ',"),
        "an instruction of spaces only",
        ("{name}", "rounds[0][0].instruction", "blank"),
    ),
    Case(
        "scenarios/preference_target_unknown.yaml",
        _scenario(extra="preferences: [{color: red, target: purple bowl}]\n"),
        "a preference whose target is no object of the scenario",
        ("{name}", "preferences[0].target", "purple bowl"),
    ),
    Case(
        "scenarios/empty_round.yaml",
        _scenario(extra="  - []\n"),
        "a round without tasks (once a run that measured nothing)",
        ("{name}", "rounds[1]", "at least 1"),
    ),
    Case(
        "scenarios/preference_colour_unknown.yaml",
        _scenario(extra="preferences: [{color: redd, target: blue bowl}]\n"),
        "a preference for a colour that is not in the palette (it would never match)",
        ("{name}", "preferences[0].color", "Did you mean 'red'"),
    ),
    Case(
        "scenarios/expect_drawer_without_drawer.yaml",
        _scenario(
            'expect: "in(red block, blue bowl)", seed: 1}', 'expect: "open(drawer)", seed: 1}'
        ),
        "a drawer predicate in a scenario without a cabinet",
        ("{name}", "round 1, task 1", "drawer"),
    ),
    Case(
        "scenarios/python_tag.yaml",
        _scenario("name: hostile", "name: !!python/object/apply:os.system [echo pwned]"),
        "a YAML tag that would run code under an unsafe loader",
        ("{name}", "not valid YAML", "python/object/apply"),
    ),
    Case(
        "scenarios/ansi_in_name.yaml",
        _scenario("name: hostile", 'name: "\\e[31mred\\a\\r"'),
        "ANSI escape, bell and carriage return in a field that is echoed back",
        ("{name}", "name", "\\x1b[31mred\\x07\\r"),
    ),
]

# -------------------------------------------------------------------------- suite files
_SUITE = """\
name: hostile
version: 1
episodes:
  - id: a
    family: pick_place
    instruction: put the red block in the blue bowl
    expect: in(red block, blue bowl)
    seed: 1
    objects: [{kind: block, color: red}, {kind: bowl, color: blue}]
  - id: b
    family: pick_place
    instruction: put the red block in the blue bowl
    expect: in(red block, blue bowl)
    seed: 2
"""


def _suite(old: str = "", new: str = "", extra: str = "") -> bytes:
    assert old in _SUITE
    return (_SUITE.replace(old, new, 1) + extra).encode()


SUITES = [
    Case(
        "suites/not_utf8.yaml",
        _SUITE.replace("name: hostile", "name: hostile\ndescription: x").encode() + b"# \xff\xfe\n",
        "bytes 0xff 0xfe in a comment at the end",
        ("{name}", "not UTF-8", "byte offset"),
        tags=("subprocess",),
    ),
    Case(
        "suites/not_yaml.yaml",
        b"name: hostile\nversion: 1\nepisodes: {id: a\n",
        "an unclosed flow mapping",
        ("{name}", "not valid YAML", "line"),
    ),
    Case(
        "suites/deep_nesting.yaml",
        (
            "name: deep\nversion: 1\nepisodes:\n"
            + "".join("  " * i + "- \n" for i in range(1, 100))
        ).encode(),
        "99 nested block lists",
        ("{name}", "nested deeper than"),
        tags=("subprocess",),
    ),
    Case("suites/billion_laughs.yaml", _laughs(), "an alias bomb", ("{name}", "more than")),
    Case("suites/empty.yaml", b"\n", "an empty file", ("{name}", "empty")),
    Case(
        "suites/scalar.yaml",
        b"just a sentence\n",
        "a plain string where a mapping belongs",
        ("{name}", "must be a mapping", "str"),
    ),
    Case(
        "suites/expect_unknown_object.yaml",
        _suite(
            "expect: in(red block, blue bowl)\n    seed: 1",
            "expect: in(red block, purple bowl)\n    seed: 1",
        ),
        "an expect naming an object that is not in the episode's objects",
        ("{name}", "episodes.0", "id 'a'", "expect", "purple bowl"),
        tags=("subprocess",),
    ),
    Case(
        "suites/expect_unknown_object_random.yaml",
        _suite(
            "expect: in(red block, blue bowl)\n    seed: 2",
            "expect: in(red block, green plate)\n    seed: 2",
        ),
        "a random layout cannot hold a 'green plate' (no such kind)",
        ("{name}", "episodes.1", "id 'b'", "green plate"),
    ),
    Case(
        "suites/expect_no_members.yaml",
        _suite(
            "expect: in(red block, blue bowl)\n    seed: 1",
            "expect: stacked(all cylinders)\n    seed: 1",
        ),
        "a group ('all cylinders') with no member in the layout",
        ("{name}", "episodes.0", "matches nothing"),
    ),
    Case(
        "suites/duplicate_objects.yaml",
        _suite(
            "[{kind: block, color: red}, {kind: bowl",
            "[{kind: block, color: red}, {kind: block, color: red, size: large}, {kind: bowl",
        ),
        "two objects that would both be called 'red block'",
        ("{name}", "episodes.0", "two objects named 'red block'"),
    ),
    Case(
        "suites/overcrowded.yaml",
        _suite(
            "[{kind: block, color: red}, {kind: bowl, color: blue}]",
            "[{kind: block, color: red}, "
            + ", ".join(f"{{kind: bowl, color: {c}}}" for c in _COLORS[1:])
            + "]",
        ),
        "seven bowls and a block: more than the table can hold",
        ("{name}", "episodes.0", "cover"),
    ),
    Case(
        "suites/duplicate_ids.yaml",
        _suite("  - id: b", "  - id: a"),
        "two episodes with one id",
        ("{name}", "unique", "'a'"),
    ),
    Case(
        "suites/bad_version.yaml",
        _suite("version: 1", "version: 99"),
        "a schema version this corrigible does not read",
        ("{name}", "version", "99"),
    ),
    Case(
        "suites/seed_negative.yaml",
        _suite("seed: 2", "seed: -2"),
        "a negative layout seed",
        ("{name}", "episodes.1.seed", "id 'b'"),
    ),
    Case(
        "suites/friction_inf.yaml",
        _suite("{kind: block, color: red}", "{kind: block, color: red, friction: .inf}"),
        "an infinite friction",
        ("{name}", "episodes.0.objects.0.friction"),
    ),
    Case(
        "suites/unknown_colour.yaml",
        _suite("{kind: bowl, color: blue}", "{kind: bowl, color: bleu}"),
        "a misspelt colour",
        ("{name}", "episodes.0.objects.1.color", "Did you mean 'blue'"),
    ),
    Case(
        "suites/empty_expect.yaml",
        _suite("expect: in(red block, blue bowl)\n    seed: 2", "expect: ''\n    seed: 2"),
        "an empty predicate",
        ("{name}", "episodes.1.expect"),
    ),
    Case(
        "suites/blank_instruction_in_list.yaml",
        _suite(
            extra="  - id: c\n"
            "    family: pick_place\n"
            "    instruction: [put the red block in the blue bowl, '  ']\n"
            "    expect: in(red block, blue bowl)\n"
        ),
        "a blank instruction inside a list of instructions",
        ("{name}", "episodes.2.instruction", "id 'c'", "empty"),
    ),
    Case(
        "suites/ansi_in_id.yaml",
        _suite("  - id: b", '  - id: "\\e]0;pwned\\a"').replace(
            b"expect: in(red block, blue bowl)\n    seed: 2",
            b"expect: in(red block, green plate)\n    seed: 2",
        ),
        "an OSC escape and a bell in an episode id that the error names",
        ("{name}", "episodes.1", "\\x1b]0;pwned\\x07"),
    ),
]

# -------------------------------------------------------------------------- correction files
_GOOD_LINE = '{"text": "stop", "label": "control"}'


def _jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


CORRECTIONS = [
    Case(
        "corrections/not_utf8.jsonl",
        _jsonl(_GOOD_LINE) + b'{"text": "caf\xe9 please", "label": "plan"}\n',
        "a Latin-1 byte on line 2",
        ("{name}", "not UTF-8", "byte offset 50", "line 2"),
        tags=("subprocess",),
    ),
    Case(
        "corrections/deep_nesting.jsonl",
        _jsonl(
            _GOOD_LINE,
            '{"text": "stop", "label": "control", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        ),
        "5000 nested arrays on line 2 (past the JSON parser's recursion limit)",
        ("{name}:2", "nested"),
        tags=("subprocess",),
    ),
    Case(
        "corrections/nested_too_deep.jsonl",
        _jsonl('{"text": "stop", "label": "control", "x": ' + "[" * 40 + "]" * 40 + "}"),
        "40 nested arrays (parses, but deeper than the limit)",
        ("{name}:1", "nested deeper than"),
    ),
    Case("corrections/empty.jsonl", b"", "an empty file", ("{name}", "no labelled lines")),
    Case(
        "corrections/blank_lines.jsonl",
        b"\n  \n\t\n",
        "blank lines only",
        ("{name}", "no labelled lines"),
    ),
    Case(
        "corrections/array_line.jsonl",
        _jsonl(_GOOD_LINE, '["stop", "control"]'),
        "a line that is a JSON array",
        ("{name}:2", "JSON object", "list"),
    ),
    Case(
        "corrections/string_line.jsonl",
        _jsonl('"stop"'),
        "a line that is a JSON string",
        ("{name}:1", "JSON object", "str"),
    ),
    Case(
        "corrections/number_line.jsonl",
        _jsonl(_GOOD_LINE, _GOOD_LINE, "42"),
        "a line that is a number",
        ("{name}:3", "JSON object", "int"),
    ),
    Case(
        "corrections/malformed.jsonl",
        _jsonl(_GOOD_LINE, '{"text": "oops"'),
        "a line cut short",
        ("{name}:2", "not valid JSON"),
    ),
    Case(
        "corrections/number_5000_digits.jsonl",
        _jsonl('{"text": "stop", "label": "control", "n": ' + "9" * 5000 + "}"),
        "an integer too long for Python to convert",
        ("{name}:1", "not valid JSON", "4300 digits"),
    ),
    Case(
        "corrections/unknown_label.jsonl",
        _jsonl('{"text": "go left", "label": "ctrl"}'),
        "a label outside plan/skill/preference/control",
        ("{name}:1", "unknown label", "'ctrl'"),
    ),
    Case(
        "corrections/ansi_label.jsonl",
        _jsonl('{"text": "stop", "label": "\\u001b[2J\\u001b[31mcontrol\\u0007"}'),
        "ANSI clear-screen, colour and bell in the label the error names",
        ("{name}:1", "unknown label", "\\x1b[2J"),
    ),
    Case(
        "corrections/text_not_string.jsonl",
        _jsonl('{"text": 5, "label": "plan"}'),
        "a number where the text belongs",
        ("{name}:1", '"text"', "5"),
    ),
    Case(
        "corrections/empty_text.jsonl",
        _jsonl('{"text": "   ", "label": "plan"}'),
        "a text of spaces only",
        ("{name}:1", '"text"', "non-empty"),
    ),
    Case(
        "corrections/nan_constant.jsonl",
        _jsonl('{"text": "stop", "label": "control", "weight": NaN}'),
        "NaN, which is not JSON",
        ("{name}:1", "NaN"),
    ),
    Case(
        "corrections/raw_control_character.jsonl",
        _jsonl('{"text": "st\x1b[31mop", "label": "control"}'),
        "a raw ESC inside a JSON string (JSON forbids raw control characters)",
        ("{name}:1", "not valid JSON", "control character"),
    ),
    Case(
        "corrections/u2028_in_string.jsonl",
        _jsonl(
            '{"text": "stop\u2028now", "label": "control"}',
            '{"text": "halt\u2029", "label": "control"}',
        ),
        "raw U+2028 / U+2029 inside JSON strings: valid JSON, accepted (not split as lines)",
        exit=0,
    ),
    Case(
        "corrections/crlf.jsonl",
        (_GOOD_LINE + "\r\n" + '{"text": "freeze", "label": "control"}' + "\r\n").encode(),
        "CRLF line endings: accepted",
        exit=0,
    ),
    Case(
        "corrections/bom.jsonl",
        b"\xef\xbb\xbf" + _jsonl(_GOOD_LINE),
        "a UTF-8 byte-order mark: accepted",
        exit=0,
    ),
]

# -------------------------------------------------------------------------- CLI options
_PUT = "put the red block in the blue bowl"


def _argv(*args: str) -> bytes:
    return (json.dumps(list(args)) + "\n").encode()


OPTIONS = [
    Case(
        "options/demo_workers_zero.json",
        _argv("demo", "--workers", "0"),
        "no worker",
        ("--workers",),
    ),
    Case(
        "options/demo_workers_huge.json",
        _argv("demo", "--workers", "100000"),
        "a hundred thousand processes",
        ("--workers", "64"),
        tags=("subprocess",),
    ),
    Case(
        "options/demo_rounds_zero.json",
        _argv("demo", "--rounds", "0"),
        "zero rounds",
        ("--rounds",),
    ),
    Case(
        "options/demo_rounds_nan.json",
        _argv("demo", "--rounds", "nan"),
        "NaN rounds",
        ("--rounds",),
    ),
    Case(
        "options/demo_episodes_negative.json",
        _argv("demo", "--suite", "pickplace", "--episodes", "-3"),
        "negative episodes",
        ("--episodes",),
    ),
    Case(
        "options/demo_conditions_ansi.json",
        _argv("demo", "--conditions", "\x1b[31mtext\x07"),
        "an ANSI colour and a bell in a condition name",
        ("conditions", "\\x1b[31mtext\\x07"),
    ),
    Case(
        "options/demo_sim_unknown.json",
        _argv("demo", "--sim", "bullet"),
        "an unknown engine",
        ("--sim", "bullet"),
    ),
    Case(
        "options/demo_out_under_a_file.json",
        _argv("demo", "--out", "{tmp}/file/demo.json"),
        "an output path below a plain file (found at the start, not after the run)",
        ("--out", "is a file"),
    ),
    Case(
        "options/demo_out_a_directory.json",
        _argv("demo", "--out", "{tmp}"),
        "an output path that is a directory",
        ("--out", "is a directory"),
    ),
    Case(
        "options/learn_rounds_zero.json",
        _argv("learn", "--rounds", "0"),
        "zero rounds",
        ("rounds",),
    ),
    Case(
        "options/learn_workers_negative.json",
        _argv("learn", "--workers", "-2"),
        "negative workers",
        ("--workers",),
    ),
    Case(
        "options/run_correction_timeout_nan.json",
        _argv("run", _PUT, "--correct", "stop", "--correction-timeout", "nan"),
        "a NaN timeout",
        ("--correction-timeout", "nan"),
        tags=("subprocess",),
    ),
    Case(
        "options/run_correction_timeout_inf.json",
        _argv("run", _PUT, "--correct", "stop", "--correction-timeout", "inf"),
        "an infinite timeout",
        ("--correction-timeout", "finite"),
    ),
    Case(
        "options/run_correction_timeout_negative.json",
        _argv("run", _PUT, "--correct", "stop", "--correction-timeout", "-1"),
        "a negative timeout",
        ("--correction-timeout",),
    ),
    Case(
        "options/run_seed_negative.json",
        _argv("run", _PUT, "--seed", "-1"),
        "a negative seed",
        ("--seed",),
    ),
    Case(
        "options/run_seed_nan.json", _argv("run", _PUT, "--seed", "nan"), "a NaN seed", ("--seed",)
    ),
    Case(
        "options/run_sim_ansi.json",
        _argv("run", _PUT, "--sim", "\x1b[2Jmujoco"),
        "an ANSI clear-screen in the engine name",
        ("--sim", "\\x1b[2Jmujoco"),
    ),
    Case(
        "options/run_perception_bell.json",
        _argv("run", _PUT, "--perception", "camera\x07\r"),
        "a bell and a carriage return in the perception mode",
        ("--perception", "camera\\x07\\r"),
    ),
    Case(
        "options/run_out_under_a_file.json",
        _argv("run", _PUT, "--out", "{tmp}/file/run.json"),
        "a result path below a plain file (found before the episode, not after it)",
        ("--out", "is a file"),
    ),
    Case(
        "options/run_trace_a_directory.json",
        _argv("run", _PUT, "--trace", "{tmp}"),
        "a trace path that is a directory",
        ("--trace", "is a directory"),
    ),
    Case(
        "options/eval_planner_empty.json",
        _argv("eval", "--suite", "smoke", "--planner", " "),
        "an empty planner (once every episode failed, exit 0)",
        ("--planner", "empty"),
    ),
    Case(
        "options/eval_limit_zero.json",
        _argv("eval", "--suite", "smoke", "--limit", "0"),
        "zero episodes",
        ("--limit",),
    ),
    Case(
        "options/eval_limit_negative.json",
        _argv("eval", "--suite", "smoke", "--limit", "-1"),
        "a negative limit (once a silent 'all but the last')",
        ("--limit",),
        tags=("subprocess",),
    ),
    Case(
        "options/eval_limit_inf.json",
        _argv("eval", "--suite", "smoke", "--limit", "inf"),
        "an infinite limit",
        ("--limit",),
    ),
    Case(
        "options/eval_family_unknown.json",
        _argv("eval", "--suite", "smoke", "--family", "pick_plase"),
        "a family the suite does not have (once a silent empty run)",
        ("--family", "Did you mean"),
    ),
    Case(
        "options/eval_suite_a_directory.json",
        _argv("eval", "--suite", "{tmp}"),
        "a directory given as the suite",
        ("suite", "not a file"),
    ),
    Case(
        "options/eval_out_under_a_file.json",
        _argv("eval", "--suite", "smoke", "--out", "{tmp}/file/eval.json"),
        "an output path below a plain file",
        ("--out", "is a file"),
    ),
    Case(
        "options/route_text_empty.json",
        _argv("route", "--text", "  "),
        "an empty correction",
        ("--text", "empty"),
    ),
    Case(
        "options/route_file_missing.json",
        _argv("route", "--file", "{tmp}/missing.jsonl"),
        "a file that does not exist",
        ("missing.jsonl", "cannot read"),
    ),
    Case(
        "options/route_file_a_directory.json",
        _argv("route", "--file", "{tmp}"),
        "a directory given as the labelled file",
        ("is a directory",),
    ),
    Case(
        "options/route_out_a_directory.json",
        _argv("route", "--text", "stop", "--out", "{tmp}"),
        "an output path that is a directory",
        ("--out", "is a directory"),
    ),
    Case(
        "options/trace_show_ansi.json",
        _argv("trace", "show", "\x1b[31mno-such-run\x1b[0m"),
        "ANSI colours in a run name that the error repeats",
        ("no trace", "\\x1b[31mno-such-run"),
    ),
]

CASES = SCENARIOS + SUITES + CORRECTIONS + OPTIONS


def _readme(cases: list[Case]) -> str:
    counts = {folder: sum(c.path.startswith(folder + "/") for c in cases) for folder in COMMANDS}
    lines = [
        "# Hostile inputs",
        "",
        "Bad files and options a user (or an attacker) can hand to the CLI. Each one must give a",
        "clear error naming the file, line or field, exit status 2 and never a traceback; terminal",
        "output must show control characters escaped (`\\x1b`), never raw. The few marked exit 0",
        "are valid inputs that were once refused. `tests/launch/test_hostile_inputs.py` runs every",
        "file through the CLI (in-process, and the ones marked `subprocess` as real processes).",
        "",
        "Generated with `python tests/hostile_inputs/make_corpus.py` (edit `CASES` there, not the",
        "files); `expected.json` holds the same table for the test.",
        "",
        "| folder | files | given to |",
        "|-|-|-|",
    ]
    for folder, command in COMMANDS.items():
        given = "`corrigible " + " ".join(command) + "`" if command else "the JSON argument list"
        lines.append(f"| `{folder}/` | {counts[folder]} | {given} |")
    lines += ["", "| file | exit | the message names | why |", "|-|-|-|-|"]
    for case in cases:
        needles = ", ".join(f"`{n}`" for n in case.needles).replace("|", "\\|")
        lines.append(f"| `{case.path}` | {case.exit} | {needles} | {case.why} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Rewrites every corpus file, expected.json and README.md."""
    for case in CASES:
        path = HERE / case.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.data)
    expected = {
        case.path: {
            "exit": case.exit,
            "needles": list(case.needles),
            "why": case.why,
            "subprocess": "subprocess" in case.tags,
        }
        for case in CASES
    }
    (HERE / "expected.json").write_text(
        json.dumps({"commands": COMMANDS, "cases": expected}, indent=1, ensure_ascii=True) + "\n"
    )
    (HERE / "README.md").write_text(_readme(CASES), encoding="utf-8")
    print(f"wrote {len(CASES)} cases under {HERE}")


if __name__ == "__main__":
    main()
