"""Regenerates `cap_verbatim.yaml` (run: python -m corrigible.policies.suites.cap_make).

Instructions quoted verbatim from Code as Policies' public material: the tabletop prompt and
the "supported commands" / "example commands" of its interactive demo notebook (Apache-2.0,
google-research/code_as_policies), and the SayCan pick-and-place few-shot prompt it builds on.
Only instructions the scene can express are kept (blocks and bowls, the nine named spots, the
predicates of `sim_envs.predicates`); questions, shapes, moves relative to the start, bowls on
bowls, "in between" and bowl moves are left out. The objects are those of the prompt's own
`objects = [...]` line where it has one ("white" is not in the palette: gray stands in).

Predicates are written here from the layout (the seed's object positions), never from a
planner: "left most" is the largest y, "top most" the largest x, "closest"/"farthest" the
Euclidean distance in the table plane; a seed is kept only when the answer wins by at least
`_MARGIN_M`, so a perception error of a centimetre cannot change the right answer. What a
predicate cannot check is said in the entry's comment (e.g. which block of a stack is at the
bottom).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout
from corrigible.sim_envs.locations import location_xy
from corrigible.sim_envs.scene_spec import SceneSpec

_MARGIN_M = 0.04  # the right answer must beat the runner-up by this much
_CORNERS = ["top left corner", "top right corner", "bottom left corner", "bottom right corner"]
_OUT = Path(__file__).with_name("cap_verbatim.yaml")

Objects = list[tuple[str, str]]  # (kind, colour)


def _objects(blocks: list[str], bowls: list[str]) -> Objects:
    return [("block", c) for c in blocks] + [("bowl", c) for c in bowls]


def _scene(seed: int, objects: Objects) -> SceneSpec:
    reqs = [ObjectRequest(kind=k, color=c) for k, c in objects]
    return sample_layout(seed, LayoutConfig(objects=reqs, include_drawer=True))


def _xy(scene: SceneSpec, name: str) -> np.ndarray:
    return np.asarray(scene.object(name).pos[:2])


def _names(scene: SceneSpec, kind: str) -> list[str]:
    return [o.name for o in scene.objects if o.kind == kind]


def _pick(scores: dict[str, float]) -> str | None:
    """The key with the highest score, if it beats the runner-up by the margin."""
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < _MARGIN_M:
        return None
    return ranked[0][0]


def _leftmost_block(scene: SceneSpec) -> str | None:
    return _pick({b: _xy(scene, b)[1] for b in _names(scene, "block")})


def _topmost_block(scene: SceneSpec) -> str | None:
    return _pick({b: _xy(scene, b)[0] for b in _names(scene, "block")})


def _bottommost_block(scene: SceneSpec) -> str | None:
    return _pick({b: -_xy(scene, b)[0] for b in _names(scene, "block")})


def _bottommost_bowl(scene: SceneSpec) -> str | None:
    return _pick({b: -_xy(scene, b)[0] for b in _names(scene, "bowl")})


def _closest_corner(xy: np.ndarray) -> str | None:
    return _pick({c: -float(np.linalg.norm(location_xy(c) - xy)) for c in _CORNERS})


def _bowl_by_distance(scene: SceneSpec, block: str, sign: float) -> str | None:
    here = _xy(scene, block)
    return _pick(
        {b: sign * float(np.linalg.norm(_xy(scene, b) - here)) for b in _names(scene, "bowl")}
    )


def _block_closest_to(scene: SceneSpec, location: str) -> str | None:
    target = location_xy(location)
    return _pick(
        {b: -float(np.linalg.norm(_xy(scene, b) - target)) for b in _names(scene, "block")}
    )


def _all_at(scene: SceneSpec, location: str) -> str:
    return " and ".join(f"at({b}, {location})" for b in _names(scene, "block"))


def _all_in(scene: SceneSpec, bowl: str) -> str:
    return " and ".join(f"in({b}, {bowl})" for b in _names(scene, "block"))


def _matching(scene: SceneSpec) -> str:
    bowls = set(_names(scene, "bowl"))
    pairs = [(b, b.replace(" block", " bowl")) for b in _names(scene, "block")]
    return " and ".join(f"in({b}, {w})" for b, w in pairs if w in bowls)


def _fixed(expect: str) -> Callable[[SceneSpec], str | None]:
    return lambda _scene: expect


def _top_to_corner(scene: SceneSpec) -> str | None:
    top, bottom = _topmost_block(scene), _bottommost_block(scene)
    if top is None or bottom is None or top == bottom:
        return None
    corner = _closest_corner(_xy(scene, bottom))
    return None if corner is None else f"at({top}, {corner})"


def _optional(fn: Callable[[SceneSpec], str | None], fmt: str) -> Callable[[SceneSpec], str | None]:
    def expect(scene: SceneSpec) -> str | None:
        found = fn(scene)
        return None if found is None else fmt.format(found)

    return expect


# (id, family, source, instruction(s), objects, expect-from-layout). Sources: "prompt" = CaP's
# tabletop prompt, "demo" = the interactive demo notebook's command lists, "saycan" = the SayCan
# prompt CaP builds on.
ENTRIES: list[tuple[str, str, str, str | list[str], Objects, Callable[[SceneSpec], str | None]]] = [
    (
        "demo-put-blue-on-yellow",
        "pick_place",
        "demo",
        "put the blue block on the yellow bowl",
        _objects(["blue", "red", "green"], ["yellow", "blue", "green"]),
        _fixed("in(blue block, yellow bowl)"),
    ),
    (
        "prompt-no-verb",
        "pick_place",
        "prompt",
        "the yellow block on the yellow bowl",
        _objects(["yellow", "green", "blue"], ["yellow", "blue", "green"]),
        _fixed("in(yellow block, yellow bowl)"),
    ),
    (
        "saycan-yellow-one",
        "pick_place",
        "saycan",
        "put the yellow one the green thing",
        _objects(["red", "yellow", "blue"], ["green"]),
        _fixed("in(yellow block, green bowl)"),
    ),
    (
        "prompt-corresponding-bowl",
        "matching",
        "prompt",
        "move the cyan block into its corresponding bowl",
        _objects(["cyan", "gray", "blue"], ["cyan", "blue", "gray"]),
        _fixed("in(cyan block, cyan bowl)"),
    ),
    (
        "saycan-group-blue",
        "matching",
        "saycan",
        "group the blue objects together",
        _objects(["red", "blue", "yellow", "green"], ["green", "blue"]),
        _fixed("in(blue block, blue bowl)"),
    ),
    (
        "demo-matching-bowls",
        "matching",
        "demo",
        "put blocks in matching bowls",
        _objects(["red", "blue", "green"], ["red", "blue", "green"]),
        _matching,
    ),
    (
        "saycan-sort-matching",
        "matching",
        "saycan",
        "sort all the blocks into their matching color bowls",
        _objects(["green", "red", "yellow"], ["green", "red", "yellow"]),
        _matching,
    ),
    (
        "demo-forest-ocean",
        "colour_association",
        "demo",
        "put the forest-colored block on the ocean-colored bowl",
        _objects(["green", "red", "yellow"], ["blue", "yellow", "red"]),
        _fixed("in(green block, blue bowl)"),
    ),
    (
        "prompt-pinkish-bottom-side",
        "colour_association",
        "prompt",
        "move the pinkish colored block on the bottom side",
        _objects(["pink", "gray", "orange"], []),
        _fixed("at(pink block, bottom side)"),
    ),
    (
        "saycan-light-colored-middle",
        "colour_association",
        "saycan",
        "move the light colored block to the middle",
        _objects(["yellow", "blue", "red"], []),
        _fixed("at(yellow block, middle)"),
    ),
    (
        "demo-sun-colored-closest-bowl",
        "colour_association",
        "demo",
        "put the sun-colored block on the bowl closest to it",
        _objects(["yellow", "red", "blue"], ["green", "purple", "pink"]),
        _optional(lambda s: _bowl_by_distance(s, "yellow block", -1.0), "in(yellow block, {})"),
    ),
    (
        "prompt-green-top-right",
        "location",
        "prompt",
        "move the green block to the top right corner",
        _objects(["yellow", "green", "blue"], ["yellow", "blue", "green"]),
        _fixed("at(green block, top right corner)"),
    ),
    (
        "demo-closest-to-top-left",
        "spatial",
        "demo",
        "pick up the block closest to the top left corner and place it on the bottom right corner",
        _objects(["red", "blue", "green"], ["yellow", "purple"]),
        _optional(lambda s: _block_closest_to(s, "top left corner"), "at({}, bottom right corner)"),
    ),
    (
        "prompt-left-most-block",
        "spatial",
        "prompt",
        "move the left most block to the green bowl",
        _objects(["pink", "green", "blue"], ["pink", "blue", "green"]),
        _optional(_leftmost_block, "in({}, green bowl)"),
    ),
    (
        "prompt-top-most-to-corner",
        "spatial",
        "prompt",
        "place the top most block to the corner closest to the bottom most block",
        _objects(["green", "brown", "blue"], ["brown", "green", "blue"]),
        _top_to_corner,
    ),
    (
        "prompt-farthest-bowl",
        "spatial",
        "prompt",
        "put the red block on the farthest bowl",
        _objects(["red", "brown", "pink"], ["brown", "red", "pink"]),
        _optional(lambda s: _bowl_by_distance(s, "red block", 1.0), "in(red block, {})"),
    ),
    (
        "saycan-stack",
        "stack",
        "saycan",
        "stack the blocks",
        _objects(["blue", "red", "green"], ["green", "yellow"]),
        _fixed("stacked(all blocks)"),
    ),
    (
        "demo-stack-bottom-right",
        "stack",
        "demo",
        "stack blocks on the bottom right corner",
        _objects(["red", "blue", "green"], ["yellow", "purple"]),
        lambda s: "stacked(all blocks) and " + _all_at(s, "bottom right corner"),
    ),
    (
        # Which block ends at the bottom is not checked (no predicate orders a stack by name).
        "prompt-stack-right-gray-bottom",
        "stack",
        "prompt",
        "stack the blocks on the right side with the gray one on the bottom",
        _objects(["yellow", "green", "gray"], ["yellow", "gray", "green"]),
        lambda s: "stacked(all blocks) and " + _all_at(s, "right side"),
    ),
    (
        "demo-stack-bottom-most-bowl",
        "stack",
        "demo",
        "stack the blocks on the bottom most bowl",
        _objects(["red", "blue", "green"], ["yellow", "purple", "pink"]),
        lambda s: (
            None
            if (bowl := _bottommost_bowl(s)) is None
            else "stacked(all blocks) and " + _all_in(s, bowl)
        ),
    ),
    (
        "prompt-biomes-grasslands",
        "imagined_mapping",
        "prompt",
        [
            "imagine that the bowls are different biomes on earth and imagine that the blocks "
            "are parts of a building",
            "now build a tower in the grasslands",
        ],
        _objects(["yellow", "green", "blue"], ["yellow", "blue", "green"]),
        lambda s: "stacked(all blocks) and " + _all_in(s, "green bowl"),
    ),
    (
        # The line's side of the table is not checked: `at` takes one object, and the blocks of
        # a 30 cm line on the right side are up to 15 cm from its midpoint.
        "prompt-line-right-side",
        "line",
        "prompt",
        "make a line of blocks on the right side",
        _objects(["cyan", "gray", "blue"], ["cyan", "blue", "gray"]),
        _fixed("line(all blocks, vertical)"),
    ),
    (
        "demo-do-the-same",
        "context",
        "demo+prompt",
        ["move the cyan block into its corresponding bowl", "do the same with the blue block"],
        _objects(["cyan", "gray", "blue"], ["cyan", "blue", "gray"]),
        _fixed("in(cyan block, cyan bowl) and in(blue block, blue bowl)"),
    ),
    (
        "prompt-empty-bowl",
        "context",
        "demo+prompt",
        ["put blocks in matching bowls", "place the blue block in the empty bowl"],
        _objects(["green", "brown", "blue"], ["brown", "green", "yellow"]),
        _fixed(
            "in(green block, green bowl) and in(brown block, brown bowl) "
            "and in(blue block, yellow bowl)"
        ),
    ),
]

_FIRST_SEED = 1500


def build_episodes(
    entries: list[tuple[str, str, str | list[str], Objects, Callable[[SceneSpec], str | None]]],
    first_seed: int,
) -> list[dict]:
    """Suite episodes, each entry at the first seed of its block of 100 that answers clearly.

    An entry is (id, family, instruction, objects, expect_of); `expect_of` returns None for a
    layout whose answer is not clear.
    """
    episodes = []
    for i, (entry_id, family, instruction, objects, expect_of) in enumerate(entries):
        for seed in range(first_seed + 100 * i, first_seed + 100 * i + 100):
            expect = expect_of(_scene(seed, objects))
            if expect is not None:
                break
        else:
            raise RuntimeError(f"{entry_id}: no seed gives a clear answer")
        episodes.append(
            {
                "id": entry_id,
                "family": family,
                "split": "heldout",
                "instruction": instruction,
                "expect": expect,
                "seed": seed,
                "objects": [{"kind": k, "color": c} for k, c in objects],
            }
        )
    return episodes


def build() -> dict:
    """The suite as a mapping, each entry at the first seed whose layout answers clearly."""
    entries = [(e_id, fam, ins, objs, exp) for e_id, fam, _source, ins, objs, exp in ENTRIES]
    return {
        "name": "cap_verbatim",
        "version": 1,
        "description": (
            "Instructions quoted verbatim from Code as Policies' tabletop prompt and demo "
            "(and the SayCan prompt it builds on) that the scene can express; predicates "
            "written from each layout (policies/suites/cap_make.py)."
        ),
        "episodes": build_episodes(entries, _FIRST_SEED),
    }


def main() -> None:
    """Writes cap_verbatim.yaml next to this file."""
    text = yaml.safe_dump(build(), sort_keys=False, width=100)
    _OUT.write_text("# Generated by cap_make.py; edit that, not this.\n" + text)
    print(f"wrote {_OUT}")


if __name__ == "__main__":
    main()
