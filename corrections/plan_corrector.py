"""What the simulated person says about plan-level problems.

Rules by any attribute, places never to use, and a step the plan left out.

`corrections.corrector.SimulatedCorrector` asks this module before its own skill-level
judgement. Everything here is judged from what a person sees and wants: the object's colour,
shape and size, where the robot is about to put it, and whether the drawer it is putting
something into stands closed. Colour-only wishes stay with the corrector's own pool ("I like
the red things in the blue bowl"); a wish about shape or size, or a place to avoid, is said as
the standing rule it is ("the cylinders go in the pink bowl", "never use the green bowl"),
since a one-off "no, in the pink bowl" would teach the robot the wrong class of objects.

The phrasings were written from how people state house rules, before checking them against
the interpreter (tests/corrections/test_plan_rules.py routes and interprets every one); like the
corrector's own pools, none repeats a phrase of the router's examples or labelled sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from corrigible.memory.effects import describe_attributes

if TYPE_CHECKING:
    from corrigible.corrections.scenarios.schema import PreferenceModel
    from corrigible.policies.robot_api import RobotAPI

# "{things}" is the class of objects ("cylinders", "small red blocks"), "{target}" the place.
RULE_PHRASES: tuple[str, ...] = (
    "the {things} go in the {target}",
    "always put {things} in the {target}",
    "from now on, {things} go in the {target}",
    "{things} belong in the {target}",
)
AVOID_PHRASES: tuple[str, ...] = (
    "never use the {target}",
    "keep everything out of the {target} from now on",
    "never put anything in the {target}",
)
AVOID_SOME_PHRASES: tuple[str, ...] = (
    "never put {things} in the {target}",
    "{things} never go in the {target}",
)
OPEN_FIRST_PHRASES: tuple[str, ...] = (
    "open up the drawer first",
    "you need to open the drawer before that",
    "the drawer has to be opened first",
    "it's shut, open the drawer first",
)


def is_plan_level(pref: PreferenceModel) -> bool:
    """Whether a scenario wish is said as a standing rule here (not as a colour preference)."""
    return bool(pref.avoid or pref.shape or pref.size)


def _attributes(pref: PreferenceModel) -> dict[str, str]:
    attrs = {"color": pref.color, "shape": pref.shape, "size_class": pref.size}
    return {k: v for k, v in attrs.items() if v}


def _pick(pool: tuple[str, ...], rng: np.random.Generator) -> str:
    return pool[int(rng.integers(len(pool)))]


def objection(
    prefs: tuple[PreferenceModel, ...],
    obj: str,
    api: RobotAPI,
    target: Any,
    rng: np.random.Generator,
) -> str | None:
    """The rule a person states before a placement that breaks a plan-level wish, or None."""
    spec = api.env.scene.object(obj)
    for pref in prefs:
        if not is_plan_level(pref) or not pref.matches(spec.color, spec.shape, spec.size_class):
            continue
        attrs = _attributes(pref)
        if pref.avoid and target == pref.target:
            pool = AVOID_SOME_PHRASES if attrs else AVOID_PHRASES
            return _pick(pool, rng).format(things=describe_attributes(attrs), target=pref.target)
        if not pref.avoid and target != pref.target:
            return _pick(RULE_PHRASES, rng).format(
                things=describe_attributes(attrs), target=pref.target
            )
    return None


def missing_step(api: RobotAPI, target: Any, rng: np.random.Generator) -> str | None:
    """The missing step a person names when the robot puts something into a closed drawer."""
    from corrigible.sim_envs.objects import DRAWER_TRAVEL
    from corrigible.sim_envs.vocabulary import kind_of_name

    if not isinstance(target, str) or kind_of_name(target) != "drawer":
        return None
    opening = api.skills.world().articulations.get(target)
    if opening is None or opening >= 0.6 * DRAWER_TRAVEL:
        return None  # open enough: whatever went wrong, it was not a missing step
    return _pick(OPEN_FIRST_PHRASES, rng)


def all_plan_phrases() -> list[str]:
    """Every phrasing, filled with example names (for routing and interpretation tests)."""
    things = ("cylinders", "small red blocks", "blocks")
    out = [p.format(things=t, target="pink bowl") for p in RULE_PHRASES for t in things]
    out += [p.format(target="green bowl") for p in AVOID_PHRASES]
    out += [p.format(things="red things", target="green bowl") for p in AVOID_SOME_PHRASES]
    return out + list(OPEN_FIRST_PHRASES)


__all__ = [
    "AVOID_PHRASES",
    "AVOID_SOME_PHRASES",
    "OPEN_FIRST_PHRASES",
    "RULE_PHRASES",
    "all_plan_phrases",
    "is_plan_level",
    "missing_step",
    "objection",
]
