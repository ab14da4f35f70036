"""Development phrasings of skill-parameter corrections, each with the effect it should have.

Used to fix the interpreter's parameter part (corrections/interpret.py) against how people
phrase corrections; never the frozen evaluation set. Two parts:

- `pool_cases()`: every phrasing the simulated corrector can say about a skill problem
  (corrections/corrector_phrases.yaml), with the effect the situation calls for;
- `EXTRA_CASES`: phrasings written separately, not in the pools (the issue's examples among
  them), so the interpreter is not fixed for the pools' wording alone.

An expected effect is (skill, parameter, sign): the parameter the change must land on and
whether it must go up (+1: a larger value, a factor above 1) or down (-1).
"""

from __future__ import annotations

from typing import NamedTuple

from corrigible.corrections.corrector import fill, in_persona, phrase_pools


class ParamCase(NamedTuple):
    """One phrasing, the skill running when it was said, and the expected effect."""

    text: str
    current_skill: str
    skill: str
    param: str
    sign: int


_SIDE = {"left": +1, "right": -1}
_REACH = {"forward": +1, "back": -1}
# pool -> (running skill, changed skill, parameter, sign; None: the sign comes from {d})
_POOL_EFFECTS: dict[str, tuple[str, str, str, int | None]] = {
    "lift_slip": ("pick", "pick", "speed", -1),
    "lift_slip_again": ("pick", "pick", "speed", -1),
    "lift_slip_badly": ("pick", "pick", "speed", -1),
    "carry_drop": ("place", "place", "speed", -1),
    "carry_drop_again": ("place", "place", "speed", -1),
    "carry_drop_badly": ("place", "place", "speed", -1),
    "grasp_miss_side": ("pick", "pick", "grasp_offset_y", None),
    "grasp_overshoot_side": ("pick", "pick", "grasp_offset_y", None),
    "grasp_miss_reach": ("pick", "pick", "grasp_offset_x", None),
    "handle_miss": ("open_drawer", "open_drawer", "grasp_offset_y", None),
    "handle_overshoot": ("open_drawer", "open_drawer", "grasp_offset_y", None),
    "drawer_short": ("open_drawer", "open_drawer", "pull_distance", +1),
    "too_slow": ("pick", "pick", "speed", +1),
}


def pool_cases(persona: str = "plain") -> list[ParamCase]:
    """Every skill-problem phrasing of the corrector's pools, with its expected effect."""
    cases: list[ParamCase] = []
    for key, (running, skill, param, sign) in _POOL_EFFECTS.items():
        pool = phrase_pools()[key]
        groups = pool.items() if isinstance(pool, dict) else [(None, pool)]
        for way_group, entries in groups:
            for template in entries:
                if way_group is not None:
                    ways: tuple[str | None, ...] = (way_group,)
                elif "{d}" in template or "{opp}" in template:
                    ways = tuple(_SIDE)
                else:
                    ways = (None,)
                for way in ways:
                    text = in_persona(fill(template, way, 2), persona)
                    s = sign if sign is not None else (_SIDE | _REACH)[way or ""]
                    cases.append(ParamCase(text, running, skill, param, s))
    return cases


EXTRA_CASES: list[ParamCase] = [
    # The examples.
    ParamCase("grab the handle further right", "open_drawer", "open_drawer", "grasp_offset_y", -1),
    ParamCase("ease up when you lift it", "pick", "pick", "speed", -1),
    ParamCase("don't rush the lift", "pick", "pick", "speed", -1),
    ParamCase("open it wider", "open_drawer", "open_drawer", "pull_distance", +1),
    ParamCase("give the drawer a harder pull", "open_drawer", "open_drawer", "pull_distance", +1),
    # Written apart from the pools.
    ParamCase(
        "shift your grip on the handle to the left",
        "open_drawer",
        "open_drawer",
        "grasp_offset_y",
        +1,
    ),
    ParamCase(
        "hold the handle more on the right side", "open_drawer", "open_drawer", "grasp_offset_y", -1
    ),
    ParamCase("take it slower on the way up", "pick", "pick", "speed", -1),
    ParamCase("lift more gently", "pick", "pick", "speed", -1),
    ParamCase("no rushing when you pick it up", "pick", "pick", "speed", -1),
    ParamCase("easy on the lift", "pick", "pick", "speed", -1),
    ParamCase("you moved too fast and it fell", "place", "place", "speed", -1),
    ParamCase("slow down while you carry it", "place", "place", "speed", -1),
    ParamCase("pull the drawer open further", "open_drawer", "open_drawer", "pull_distance", +1),
    ParamCase("the drawer is barely open", "open_drawer", "open_drawer", "pull_distance", +1),
    ParamCase("pull it all the way out", "open_drawer", "open_drawer", "pull_distance", +1),
    ParamCase("reach a little further", "pick", "pick", "grasp_offset_x", +1),
    ParamCase("you fell short of it", "pick", "pick", "grasp_offset_x", +1),
    ParamCase("you're too far to the left", "pick", "pick", "grasp_offset_y", -1),
    ParamCase("the block is 3 cm to your right", "pick", "pick", "grasp_offset_y", -1),
    ParamCase("grab it a little more to the left", "pick", "pick", "grasp_offset_y", +1),
    ParamCase("you went too far right, come back left", "pick", "pick", "grasp_offset_y", +1),
    ParamCase("a bit less to the left", "pick", "pick", "grasp_offset_y", -1),
    ParamCase("speed up, you're crawling", "pick", "pick", "speed", +1),
    # Drawer context must not swallow other parameters into the pull.
    ParamCase("grip the handle a bit lower", "open_drawer", "open_drawer", "grasp_height", -1),
    ParamCase("a bit more down", "open_drawer", "open_drawer", "grasp_height", -1),
    ParamCase("a bit more to the left", "open_drawer", "open_drawer", "grasp_offset_y", +1),
    ParamCase("pull the drawer further", "place", "open_drawer", "pull_distance", +1),
]

# Written after the interpreter was fixed for the cases above, and only measured (never tuned
# against): how the fixes hold on wording they were not made for.
HELDOUT_CASES: list[ParamCase] = [
    ParamCase("whoa, way too fast on the lift", "pick", "pick", "speed", -1),
    ParamCase("it keeps sliding out when you lift", "pick", "pick", "speed", -1),
    ParamCase("could you raise it a little more carefully", "pick", "pick", "speed", -1),
    ParamCase("you let it drop halfway there", "place", "place", "speed", -1),
    ParamCase("gentler when carrying", "place", "place", "speed", -1),
    ParamCase("you were too quick moving it over", "place", "place", "speed", -1),
    ParamCase(
        "move your hand left on the handle", "open_drawer", "open_drawer", "grasp_offset_y", +1
    ),
    ParamCase(
        "the handle's middle is further right", "open_drawer", "open_drawer", "grasp_offset_y", -1
    ),
    ParamCase("pull the drawer a good bit more", "open_drawer", "open_drawer", "pull_distance", +1),
    ParamCase(
        "it's still mostly shut, pull harder", "open_drawer", "open_drawer", "pull_distance", +1
    ),
    ParamCase("drawer needs to open more", "open_drawer", "open_drawer", "pull_distance", +1),
    ParamCase("you grabbed left of it", "pick", "pick", "grasp_offset_y", -1),
    ParamCase("3 cm further from me", "pick", "pick", "grasp_offset_x", +1),
    ParamCase("try 1 cm closer to yourself", "pick", "pick", "grasp_offset_x", -1),
    ParamCase("go a touch right", "pick", "pick", "grasp_offset_y", -1),
    ParamCase("you overshot to the right", "pick", "pick", "grasp_offset_y", +1),
    ParamCase("you can speed up now", "pick", "pick", "speed", +1),
    ParamCase("way too slow, go quicker", "pick", "pick", "speed", +1),
]
