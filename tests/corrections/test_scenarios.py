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
