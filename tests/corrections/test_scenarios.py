"""Scenario files: the built-ins load, and a bad field is named with its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from corrigible.corrections.scenarios import load_scenarios
from corrigible.errors import ConfigError

_GOOD = """\
version: 1
name: tiny
objects:
  - {kind: block, color: red}
rounds:
  - - instruction: put the red block in the top left corner
      expect: "at(red block, top left corner)"
      seed: 1
"""


def test_builtin_scenarios_load() -> None:
    scenarios = load_scenarios()
    names = {s.name for s in scenarios}
    assert {
        "slippery_cylinder",
        "slippery_lookalike",
        "camera_bias",
        "camera_bias_left",
        "red_in_blue",
        "purple_in_green",
        "stiff_drawer",
        "offcentre_handle",
    } <= names
    assert {s.persona for s in scenarios} == {"plain", "terse", "polite"}
    assert {"preference", "hidden_property", "camera_bias", "lookalike"} <= {
        s.family for s in scenarios
    }


def test_builtin_full_run_size() -> None:
    """The issue's scale: >= 30 task instances per round, >= 2 rounds, controls in each."""
    scenarios = load_scenarios()
    n_rounds = min(len(s.rounds) for s in scenarios)
    assert n_rounds >= 2
    for r in range(n_rounds):
        tasks = [t for s in scenarios for t in s.rounds[r]]
        assert len(tasks) >= 30 and sum(t.control for t in tasks) >= 4
    for s in scenarios:  # later rounds are new instances (new layout seeds)
        seen = {t.seed for t in s.rounds[0]}
        assert all(t.seed not in seen for rnd in s.rounds[1:] for t in rnd), s.name


def test_drawer_mechanics_reach_the_layout() -> None:
    by_name = {s.name: s for s in load_scenarios()}
    stiff = by_name["stiff_drawer"]
    handle = by_name["offcentre_handle"]
    assert stiff.layout(stiff.rounds[0][0]).drawer_damping == 3000.0
    assert handle.layout(handle.rounds[0][0]).drawer_handle_offset_y == 0.06


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        ("color: red}", "objects[0].color"),
        ("seed: 1", "rounds[0][0].seed"),
        ("version: 1", "version"),
        ("name: tiny", "persona"),
    ],
    ids=["bad-colour", "bad-seed", "bad-version", "bad-persona"],
)
def test_invalid_field_is_named(tmp_path: Path, replace: str, field: str) -> None:
    bad = {
        "color: red}": "color: rde}",
        "seed: 1": "seed: -3",
        "version: 1": "version: 7",
        "name: tiny": "name: tiny\npersona: rude",
    }[replace]
    path = tmp_path / "broken.yaml"
    path.write_text(_GOOD.replace(replace, bad))
    with pytest.raises(ConfigError) as info:
        load_scenarios(tmp_path)
    assert "broken.yaml" in str(info.value) and field in str(info.value)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text(_GOOD + "surprise: 1\n")
    with pytest.raises(ConfigError, match="extra.yaml.*surprise"):
        load_scenarios(tmp_path)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no scenario files"):
        load_scenarios(tmp_path)


_TWO_TASKS = """\
version: 1
name: tiny
objects:
  - {kind: block, color: red}
  - {kind: bowl, color: blue}
rounds:
  - - {instruction: put the red block in the blue bowl, expect: "in(red block, blue bowl)", seed: 1}
    - {instruction: put the red block in the blue bowl, expect: "in(red block, blue bowl)", seed: 2}
"""


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            'blue bowl)", seed: 2}',
            'purple bowl)", seed: 2}',
            ("round 1, task 2", "rounds[0][1].expect", "unknown object 'purple bowl'"),
        ),
        (
            "  - {kind: bowl, color: blue}\n",
            "  - {kind: bowl, color: blue}\n  - {kind: block, color: red, size: small}\n",
            ("round 1, task 1", "the scenario's objects", "two objects named 'red block'"),
        ),
        (
            "  - {kind: bowl, color: blue}\n",
            "".join(
                f"  - {{kind: bowl, color: {c}}}\n"
                for c in ("blue", "green", "yellow", "purple", "orange", "pink", "gray", "red")
            ),
            ("round 1, task 1", "cover", "fewer objects"),
        ),
        (
            "rounds:",
            "preferences: [{color: red, target: green bowl}]\nrounds:",
            ("preferences[0]",),
        ),
    ],
    ids=["expect-names-a-missing-object", "duplicate-objects", "overcrowded", "preference-target"],
)
def test_every_task_is_checked_at_load(tmp_path: Path, old: str, new: str, needles) -> None:
    """Each task's layout is drawn and its predicate parsed when the file is read."""
    (tmp_path / "tasks.yaml").write_text(_TWO_TASKS.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_scenarios(tmp_path)
    assert "tasks.yaml" in str(info.value)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize("bias", [".nan", ".inf", "-.inf", "1.0e+9", "0.2"])
def test_camera_bias_must_be_finite_and_small(tmp_path: Path, bias: str) -> None:
    (tmp_path / "bias.yaml").write_text(_TWO_TASKS + f"camera_bias: [0.0, {bias}, 0.0]\n")
    with pytest.raises(ConfigError, match=r"bias.yaml: field camera_bias\[1\]"):
        load_scenarios(tmp_path)


def test_a_file_that_is_not_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(
        _TWO_TASKS.encode().replace(b"name: tiny", b"name: t\xefny")
    )
    with pytest.raises(ConfigError, match=r"latin1.yaml: .*not UTF-8.*byte offset 18 \(line 2"):
        load_scenarios(tmp_path)
