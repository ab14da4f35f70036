"""Regenerates the built-in suite files (run: python -m corrigible.policies.suites.make_builtin).

`tabletop.yaml`: seven instruction families after Code as Policies, 20 episodes each; the first
10 of a family use canonical phrasings and one set of colours ("train"), the last 10 use
paraphrases and colour combinations the train split never shows ("heldout"). Success predicates
are written here from the layout, never from a planner; spatial episodes keep only layouts where
exactly one block stands in the named relation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout
from corrigible.sim_envs.palette import COOL_COLORS, WARM_COLORS

TRAIN_COLORS = ["red", "blue", "green", "yellow", "purple"]
HELDOUT_COLORS = ["orange", "pink", "cyan", "brown", "gray"]
CORNERS = ["top left corner", "top right corner", "bottom left corner", "bottom right corner"]

PHRASES = {
    "pick_place": (
        ["put the {a} block in the {b} bowl"],
        [
            "Could you place the {a} cube into the {b} bowl?",
            "pick up the {a} block and put it in the {b} bowl",
            "drop the {a} block in the {b} bowl",
            "move the {a} block into the {b} bowl please",
            "take the {a} cube and place it in the {b} bowl",
        ],
    ),
    "stack": (
        ["stack all the blocks"],
        [
            "build a tower out of all the blocks",
            "stack the blocks on top of each other",
            "pile all the cubes up",
            "make a stack of the cubes",
        ],
    ),
    "matching": (
        ["put all the blocks in the matching bowls"],
        [
            "put each block in the bowl of the same colour",
            "sort the blocks into the bowls with the same color",
            "place every cube in its matching bowl",
            "put the blocks into the bowls that match their colours",
        ],
    ),
    "line_h": (
        ["put the blocks in a horizontal line"],
        [
            "arrange the cubes in a row",
            "line up the blocks from left to right",
            "put the cubes in a straight horizontal line",
        ],
    ),
    "line_v": (
        ["put the blocks in a vertical line"],
        [
            "make a vertical column of the blocks",
            "place the blocks in a line going front to back",
            "arrange the cubes vertically in a line",
        ],
    ),
    "spatial": (
        ["move the block {rel} the {b} bowl to the {corner}"],
        [
            "put the cube that is {rel} the {b} bowl in the {corner}",
            "move the block which is {rel} the {b} bowl into the {corner}",
            "take the block {rel} the {b} bowl to the {corner}",
        ],
    ),
    "warm_cool": (
        ["put the warm coloured blocks in one bowl and the cool ones in another"],
        [
            "sort the blocks into warm and cool colours, one bowl each",
            "put warm colored cubes in one bowl and cool colored cubes in the other",
            "separate the warm blocks from the cool blocks using the two bowls",
        ],
    ),
    "drawer": (
        ["put the {a} block in the drawer"],
        [
            "place the {a} cube inside the drawer",
            "drop the {a} cube into the drawer",
            "could you put the {a} block in the drawer",
        ],
    ),
}
_REL_WORDS = {"left": "left of", "right": "right of", "front": "in front of", "behind": "behind"}


def _obj(kind: str, color: str) -> dict:
    return {"kind": kind, "color": color}


def _phrase(family: str, i: int, heldout: bool) -> str:
    canon, para = PHRASES[family]
    return para[i % len(para)] if heldout else canon[i % len(canon)]


def _colors(rng: np.random.Generator, heldout: bool, n: int) -> list[str]:
    pool = HELDOUT_COLORS + TRAIN_COLORS if heldout else TRAIN_COLORS
    first = [str(rng.choice(HELDOUT_COLORS))] if heldout else []
    rest = [c for c in rng.permutation(pool) if c not in first]
    return (first + [str(c) for c in rest])[:n]


def episodes_for(family: str, n: int = 20) -> list[dict]:
    """Generates `n` seeded episodes of one family; the second half are held out."""
    out = []
    rng = np.random.default_rng(sum(map(ord, family)))
    seed = 100 * (list(PHRASES).index(family) + 1) if family in PHRASES else 1000
    i = 0
    while len(out) < n:
        heldout = len(out) >= n // 2
        split = "heldout" if heldout else "train"
        seed += 1
        if family == "pick_place":
            a, b, c, d = _colors(rng, heldout, 4)
            objects = [_obj("block", a), _obj("block", c), _obj("bowl", b), _obj("bowl", d)]
            instr, expect = _phrase(family, i, heldout).format(a=a, b=b), f"in({a} block, {b} bowl)"
        elif family == "stack":
            cs = _colors(rng, heldout, 5)
            objects = [_obj("block", c) for c in cs[:3]] + [_obj("bowl", c) for c in cs[3:]]
            instr, expect = _phrase(family, i, heldout), "stacked(all blocks)"
        elif family == "matching":
            cs = _colors(rng, heldout, 3)
            objects = [_obj("block", c) for c in cs] + [_obj("bowl", c) for c in cs]
            instr = _phrase(family, i, heldout)
            expect = " and ".join(f"in({c} block, {c} bowl)" for c in cs)
        elif family in ("line_h", "line_v"):
            cs = _colors(rng, heldout, 5)
            objects = [_obj("block", c) for c in cs[:3]] + [_obj("bowl", c) for c in cs[3:]]
            instr = _phrase(family, i, heldout)
            expect = f"line(all blocks, {'horizontal' if family == 'line_h' else 'vertical'})"
        elif family == "spatial":
            cs = _colors(rng, heldout, 5)
            objects = [_obj("block", c) for c in cs[:3]] + [_obj("bowl", c) for c in cs[3:]]
            rel = ["left", "right", "front", "behind"][i % 4]
            bowl = cs[3]
            scene = sample_layout(seed, LayoutConfig(objects=[ObjectRequest(**o) for o in objects]))
            ref = np.array(scene.object(f"{bowl} bowl").pos[:2])
            tests = {
                "left": lambda p, ref=ref: p[1] > ref[1] + 0.03,
                "right": lambda p, ref=ref: p[1] < ref[1] - 0.03,
                "front": lambda p, ref=ref: p[0] < ref[0] - 0.03,
                "behind": lambda p, ref=ref: p[0] > ref[0] + 0.03,
            }
            hits = [
                f"{c} block"
                for c in cs[:3]
                if tests[rel](np.array(scene.object(f"{c} block").pos[:2]))
            ]
            if len(hits) != 1:
                continue  # ambiguous or impossible: not a fair test
            corner = CORNERS[i % 4]
            instr = _phrase(family, i, heldout).format(rel=_REL_WORDS[rel], b=bowl, corner=corner)
            expect = f"at({hits[0]}, {corner})"
        elif family == "warm_cool":
            pool = HELDOUT_COLORS + TRAIN_COLORS if heldout else TRAIN_COLORS + ["orange", "cyan"]
            warm = [str(c) for c in rng.permutation([c for c in pool if c in WARM_COLORS])][:3]
            cool = [str(c) for c in rng.permutation([c for c in pool if c in COOL_COLORS])][:3]
            objects = [_obj("block", c) for c in warm[:2] + cool[:2]] + [
                _obj("bowl", warm[2]),
                _obj("bowl", cool[2]),
            ]
            instr = _phrase(family, i, heldout)
            expect = (
                f"together({warm[0]} block, {warm[1]} block) and "
                f"together({cool[0]} block, {cool[1]} block) and "
                f"apart({warm[0]} block, {cool[0]} block)"
            )
        elif family == "drawer":
            a, c, b = _colors(rng, heldout, 3)
            objects = [_obj("block", a), _obj("block", c), _obj("bowl", b)]
            instr, expect = _phrase(family, i, heldout).format(a=a), f"in({a} block, drawer)"
        else:
            raise ValueError(family)
        name = "line" if family.startswith("line") else family
        out.append(
            {
                "id": f"{family}-{len(out):03d}",
                "family": name,
                "split": split,
                "instruction": instr,
                "expect": expect,
                "seed": seed,
                "objects": objects,
            }
        )
        i += 1
    return out


def main() -> None:
    """Regenerates the built-in `tabletop.yaml` suite next to this file."""
    episodes = []
    for family in ("pick_place", "stack", "matching", "spatial", "warm_cool", "drawer"):
        episodes += episodes_for(family)
    episodes += episodes_for("line_h", 10) + episodes_for("line_v", 10)
    suite = {
        "name": "tabletop",
        "version": 1,
        "description": (
            "Code-as-Policies tabletop families; 20 episodes per family, "
            "last 10 of each held out (paraphrases, unseen colours)."
        ),
        "episodes": episodes,
    }
    path = Path(__file__).with_name("tabletop.yaml")
    path.write_text(
        "# Generated by make_builtin.py; edit that, not this.\n"
        + yaml.safe_dump(suite, sort_keys=False, width=120)
    )
    smoke = {
        **suite,
        "name": "smoke",
        "description": "One train and one held-out episode per family, for CI.",
        "episodes": [e for e in episodes if e["id"].endswith(("-000", "-010"))],
    }
    path.with_name("smoke.yaml").write_text(
        "# Generated by make_builtin.py; edit that, not this.\n"
        + yaml.safe_dump(smoke, sort_keys=False, width=120)
    )


if __name__ == "__main__":
    main()
