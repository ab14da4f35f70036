"""Regenerates `cap_classes.yaml` (run: python -m corrigible.policies.suites.cap_classes_make).

Code as Policies' instruction classes beyond the tabletop suite's families, in the wording of
its demo where it has one: targets "in between" two things, shapes (circle, triangle,
square), one block per corner, bowls of non-matching colours, moves of every block relative to
where it starts, pointing the gripper at an object, a bowl stacked on another. Questions ("how
many blocks are there?") are answered with `say()` and have no predicate on the world, so they
are tested in tests/policies, not scored here.

Predicates are written from the layout and the geometry the instruction asks for, never from
a planner: `between` is the midpoint of the two named things as laid out; a shape is checked
on the final centres (`sim_envs.predicates._shape`); "different corners" is `at` for every
block at the corner nearest to it when those corners are all different (a seed is kept only
then, so "different corners" has one clear answer); "non-matching" is `in` some bowl and not
its own colour's: `apart` (each in a bowl, all different) and `not_in` per block; pointing
is `pointing_at` (the gripper's tip over the object, judged where the arm stays); a bowl on
a bowl is `on(upper, lower)` (`sim_envs.predicates._on_container`: centres within 3 cm, the
upper base above the lower), on a layout where nothing stands within reach of the lower bowl's
rim, so resting on the rim is the one answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from corrigible.policies.suites.cap_make import Objects, _objects, _xy, build_episodes
from corrigible.sim_envs.locations import location_xy
from corrigible.sim_envs.objects import BOWL_RADIUS
from corrigible.sim_envs.scene_spec import SceneSpec

_OUT = Path(__file__).with_name("cap_classes.yaml")
_CORNERS = ["top left corner", "top right corner", "bottom left corner", "bottom right corner"]
_FIRST_SEED = 4000


def _fixed(expect: str) -> Callable[[SceneSpec], str | None]:
    return lambda _scene: expect


def _between_clear(obj: str, first: str, second: str) -> Callable[[SceneSpec], str | None]:
    """`between`, on a layout where the midpoint is a free spot on the table.

    Halfway between a bowl and a block can fall on the bowl's rim, where no block stands; a
    seed is kept when the midpoint is clear of every bowl's rim and every other object.
    """

    def expect(scene: SceneSpec) -> str | None:
        def xy(name: str) -> np.ndarray:
            return location_xy(name) if name == "middle" else _xy(scene, name)

        mid = (xy(first) + xy(second)) / 2
        for o in scene.objects:
            if o.name == obj or o.fixed:
                continue
            clearance = 0.115 if o.kind == "bowl" else 0.07
            if float(np.linalg.norm(_xy(scene, o.name) - mid)) < clearance:
                return None
        return f"between({obj}, {first}, {second})"

    return expect


def _corners_each(scene: SceneSpec) -> str | None:
    """Every block at its nearest corner, when no two blocks share a nearest corner."""
    blocks = [o.name for o in scene.objects if o.kind == "block"]
    nearest = {
        b: min(_CORNERS, key=lambda c: float(np.linalg.norm(location_xy(c) - _xy(scene, b))))
        for b in blocks
    }
    if len(set(nearest.values())) != len(blocks):
        return None
    return " and ".join(f"at({b}, {c})" for b, c in nearest.items())


def _bowl_on_empty(upper: str, lower: str) -> Callable[[SceneSpec], str | None]:
    """`on(upper, lower)`, on a layout where nothing else lies in or beside the lower bowl.

    With the lower bowl empty and nothing within a bowl's width of its rim, the upper bowl can
    only rest on that rim, so the predicate has one clear answer.
    """

    def expect(scene: SceneSpec) -> str | None:
        centre = _xy(scene, lower)
        for o in scene.objects:
            if o.name in (upper, lower) or o.fixed:
                continue
            if float(np.linalg.norm(_xy(scene, o.name) - centre)) < 2 * BOWL_RADIUS + 0.03:
                return None
        return f"on({upper}, {lower})"

    return expect


def _not_own_bowl(scene: SceneSpec) -> str | None:
    """Each block in a bowl of another colour, no two in one bowl (`apart`)."""
    blocks = [o.name for o in scene.objects if o.kind == "block"]
    bowls = [o.name for o in scene.objects if o.kind == "bowl"]
    others = {b: [w for w in bowls if w.split()[0] != b.split()[0]] for b in blocks}
    if len(bowls) < len(blocks) or any(not o for o in others.values()):
        return None
    own = [f"not_in({b}, {b.split()[0]} bowl)" for b in blocks if f"{b.split()[0]} bowl" in bowls]
    return " and ".join([f"apart({', '.join(blocks)})", *own])


ENTRIES: list[tuple[str, str, str | list[str], Objects, Callable[[SceneSpec], str | None]]] = [
    (
        "between-bowl-and-block",
        "between",
        "place the red block between the blue bowl and the green block",
        _objects(["red", "green", "yellow"], ["blue", "pink"]),
        _between_clear("red block", "blue bowl", "green block"),
    ),
    (
        "in-between-two-bowls",
        "between",
        "move the yellow block in between the two bowls",
        _objects(["yellow", "cyan"], ["brown", "gray"]),
        _between_clear("yellow block", "brown bowl", "gray bowl"),
    ),
    (
        "between-block-and-middle",
        "between",
        "put the purple block halfway between the orange block and the middle",
        _objects(["purple", "orange", "blue"], ["green"]),
        _between_clear("purple block", "orange block", "middle"),
    ),
    (
        "circle",
        "shape",
        "arrange the blocks in a circle",
        _objects(["red", "green", "blue", "yellow"], []),
        _fixed("shape(all blocks, circle)"),
    ),
    (
        "triangle",
        "shape",
        "put the blocks in a triangle",
        _objects(["red", "green", "blue"], ["pink"]),
        _fixed("shape(all blocks, triangle)"),
    ),
    (
        "square",
        "shape",
        "make a square with the blocks",
        _objects(["cyan", "orange", "purple", "gray"], []),
        _fixed("shape(all blocks, square)"),
    ),
    (
        "different-corners",
        "location",
        "put all the blocks in different corners",
        _objects(["red", "blue", "green"], ["yellow"]),
        _corners_each,
    ),
    (
        "non-matching",
        "matching",
        "put the blocks in the bowls with non-matching colors",
        _objects(["red", "blue", "green"], ["red", "blue", "green"]),
        _not_own_bowl,
    ),
    (
        "point-at-block",
        "pointing",
        "point the gripper at the green block",
        _objects(["red", "green", "blue"], ["yellow"]),
        _fixed("pointing_at(green block)"),
    ),
    (
        "point-at-bowl",
        "pointing",
        "aim your gripper at the pink bowl",
        _objects(["orange", "cyan"], ["pink", "gray"]),
        _fixed("pointing_at(pink bowl)"),
    ),
    (
        "bowl-on-bowl",
        "stack_bowls",
        "put the blue bowl on the red bowl",
        _objects(["green", "yellow"], ["blue", "red"]),
        _bowl_on_empty("blue bowl", "red bowl"),
    ),
    (
        "bowl-on-top-of-bowl",
        "stack_bowls",
        "stack the green bowl on top of the yellow bowl",
        _objects(["red", "blue"], ["green", "yellow", "pink"]),
        _bowl_on_empty("green bowl", "yellow bowl"),
    ),
    (
        "bowl-in-bowl",
        "stack_bowls",
        "place the red bowl in the blue bowl",
        _objects(["orange"], ["red", "blue"]),
        _bowl_on_empty("red bowl", "blue bowl"),
    ),
]


def build() -> dict:
    """The suite as a mapping, each entry at the first seed whose layout answers clearly."""
    return {
        "name": "cap_classes",
        "version": 1,
        "description": (
            "Code as Policies' instruction classes beyond the tabletop families: in between, "
            "shapes, one block per corner, non-matching bowls, pointing, a bowl on a bowl; "
            "predicates written from each layout (policies/suites/cap_classes_make.py)."
        ),
        "episodes": build_episodes(ENTRIES, _FIRST_SEED),
    }


def main() -> None:
    """Writes cap_classes.yaml next to this file."""
    text = yaml.safe_dump(build(), sort_keys=False, width=100)
    _OUT.write_text("# Generated by cap_classes_make.py; edit that, not this.\n" + text)
    print(f"wrote {_OUT}")


if __name__ == "__main__":
    main()
