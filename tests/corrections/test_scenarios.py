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
    names = {s.name for s in load_scenarios()}
    assert {"slippery_cylinder", "camera_bias", "red_in_blue"} <= names


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        ("color: red}", "objects[0].color"),
        ("seed: 1", "rounds[0][0].seed"),
        ("version: 1", "version"),
    ],
    ids=["bad-colour", "bad-seed", "bad-version"],
)
def test_invalid_field_is_named(tmp_path: Path, replace: str, field: str) -> None:
    bad = {
        "color: red}": "color: rde}",
        "seed: 1": "seed: -3",
        "version: 1": "version: 7",
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
