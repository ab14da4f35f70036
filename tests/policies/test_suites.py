"""Suite files: the shipped ones load; every episode's layout and predicate are checked at load."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corrigible.errors import ConfigError
from corrigible.policies.suites.schema import builtin_suites, load_suite

_SUITE = """\
name: tiny
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


def test_shipped_suites_load_and_check_quickly() -> None:
    start = time.perf_counter()
    sizes = {name: len(load_suite(name).episodes) for name in builtin_suites()}
    assert sizes["tabletop"] >= 100 and sizes["smoke"] >= 10
    assert time.perf_counter() - start < 15  # every episode's layout drawn and predicate parsed


@pytest.mark.parametrize(
    ("old", "new", "needles"),
    [
        (
            "expect: in(red block, blue bowl)\n    seed: 1",
            "expect: in(red block, purple bowl)\n    seed: 1",
            ("episodes.0 (id 'a').expect", "unknown object 'purple bowl'"),
        ),
        (
            "expect: in(red block, blue bowl)\n    seed: 2",
            "expect: in(red block, green plate)\n    seed: 2",
            ("episodes.1 (id 'b').expect", "green plate"),
        ),
        (
            "{kind: bowl, color: blue}]",
            "{kind: bowl, color: blue}, {kind: block, color: red, size: large}]",
            ("episodes.0 (id 'a').objects", "two objects named 'red block'"),
        ),
        ("seed: 2", "seed: -2", ("episodes.1.seed (id 'b')",)),
    ],
    ids=["expect-names-a-missing-object", "random-layout-lacks-it", "duplicate-objects", "seed"],
)
def test_every_episode_is_checked_at_load(tmp_path: Path, old: str, new: str, needles) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(_SUITE.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_suite(str(path))
    assert "tiny.yaml" in str(info.value)
    for needle in needles:
        assert needle in str(info.value)


def test_a_suite_that_is_not_utf8_or_too_deep_is_a_clear_error(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(_SUITE.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml: .*not UTF-8.*byte offset"):
        load_suite(str(latin))
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\nversion: 1\nepisodes: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="deep.yaml: line 3.*nested deeper than"):
        load_suite(str(deep))
