"""A simulated person who watches the robot with privileged knowledge and corrects it.

`SimulatedCorrector` knows what the robot cannot see (the scenario's hidden frictions, the
camera's bias, the user's preferences) and, when a skill fails or a placement is about to break
a preference, says ONE correction for that problem, in words drawn from its own phrase pools.
The pools never repeat a phrase from the router's tuning examples or the frozen evaluation set
(tests/corrections/test_corrector.py checks), so the loop is not graded on memorised text.
The policy is the same in every condition: it only reacts to what the robot does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrigible.corrections.correction import Correction
from corrigible.corrections.scenarios.schema import Scenario
from corrigible.policies.robot_api import RobotAPI

# Each pool holds phrasings of one problem. `{d}` is a direction, `{color}`/`{target}` names.
SLIP_PHRASES: tuple[str, ...] = (
    "lift it more slowly",
    "careful, go slower when you lift",
    "much slower, it keeps dropping",
    "take it up way more gently",
    "it slipped, lift it more slowly",
    "gently now, a lot slower on the way up",
)
# Carrying a heavy, slippery object: only strong slow-downs (x0.25) are in this pool, since
# the slippery cylinder scenario drops the object at half speed too (MuJoCo, seeds 1-2).
CARRY_PHRASES: tuple[str, ...] = (
    "you dropped it, move much slower with it",
    "go way slower when you move it over",
    "careful, a lot slower on the way across",
)
# Offsets: y (left/right) and x (forward/back) in separate pools; magnitudes 2-3 cm.
OFFSET_Y_PHRASES: tuple[str, ...] = (
    "you missed, just a bit more to the {d}",
    "aim slightly more to the {d}",
    "a little further to the {d}, you're off",
    "shift a bit to the {d} when you grab it",
)
OFFSET_X_PHRASES: dict[str, tuple[str, ...]] = {
    "forward": ("you missed, a bit further forward", "aim slightly further away from me"),
    "back": ("you missed, a bit closer to me", "aim slightly further back towards me"),
}
PREFERENCE_PHRASES: tuple[str, ...] = (
    "I like the {color} things in the {target}",
    "I'd rather the {color} ones went in the {target}",
    "no, in the {target} please",
    "wrong bowl, use the {target}",
)
DRAWER_PHRASES: tuple[str, ...] = (
    "pull it further",
    "pull it out more, it's stuck",
    "the drawer needs pulling further",
    "pull the handle out further please",
)


PERSONAS: tuple[str, ...] = ("plain", "terse", "polite")
# Leading remarks a terse person leaves out; what follows the comma carries the correction.
_REMARKS = frozenset({"you missed", "careful", "it slipped", "gently now", "no", "wrong bowl"})


def in_persona(text: str, persona: str) -> str:
    """The same correction in a persona's style.

    "plain" says it as written; "terse" drops a leading remark ("you missed, a bit more to the
    left" -> "a bit more to the left"); "polite" adds "please". The content words, and so the
    route and the effect, stay the same (tests/corrections/test_corrector.py checks).
    """
    head, _, tail = text.partition(", ")
    if persona == "terse" and tail and head in _REMARKS:
        return tail
    if persona == "polite" and "please" not in text:
        return f"{text} please"
    return text


def all_phrases() -> list[str]:
    """Every phrasing the corrector can say, templates filled, in every persona."""
    out = list(SLIP_PHRASES) + list(CARRY_PHRASES) + list(DRAWER_PHRASES)
    out += [p.format(d=d) for p in OFFSET_Y_PHRASES for d in ("left", "right")]
    out += [p for pool in OFFSET_X_PHRASES.values() for p in pool]
    out += [p.format(color="red", target="blue bowl") for p in PREFERENCE_PHRASES]
    return list(dict.fromkeys(in_persona(p, persona) for persona in PERSONAS for p in out))


@dataclass(kw_only=True)
class Problem:
    """What the corrector saw go wrong (privileged diagnosis)."""

    kind: str  # slip | dropped | missed_grasp | wrong_target | drawer_stuck | missed_handle
    skill: str
    obj: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class SimulatedCorrector:
    """Says one correction per problem, with varied phrasings.

    Args:
        scenario: the hidden truth (preferences, camera bias) the person knows.
        rng: the only source of randomness (phrase choice).
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.rng = rng
        self.problems: list[Problem] = []
        self.watched: list[tuple[str, dict[str, Any]]] = []  # API calls seen through hooks

    def watch(self, api: RobotAPI) -> None:
        """Follows the running program through the API's before-call hooks."""
        api.hooks.append(lambda name, call: self.watched.append((name, call)))

    def _pick(self, pool: tuple[str, ...]) -> str:
        return pool[int(self.rng.integers(len(pool)))]

    def _say(self, text: str, problem: Problem, episode: str, api: RobotAPI) -> Correction:
        self.problems.append(problem)
        return Correction(
            text=in_persona(text, self.scenario.persona),
            time=float(api.env.backend.time),
            episode=episode,
            source="scripted",
        )

    # -- reacting to failures --------------------------------------------------------------
    def on_failure(
        self,
        skill: str,
        obj: str | None,
        message: str,
        api: RobotAPI,
        *,
        episode: str,
        target: Any = None,
    ) -> Correction | None:
        """A correction for a failed skill, or None when the person has nothing to say."""
        if skill == "pick" and "slipped" in message:
            problem = Problem(kind="slip", skill=skill, obj=obj)
            return self._say(self._pick(SLIP_PHRASES), problem, episode, api)
        if skill == "pick" and "grasp missed" in message and obj is not None:
            return self._missed(obj, api, episode)
        if skill == "place" and obj is not None and self._dropped(obj, target, api):
            problem = Problem(kind="dropped", skill=skill, obj=obj)
            return self._say(self._pick(CARRY_PHRASES), problem, episode, api)
        if skill == "open_drawer":
            return self._drawer(api, episode, obj)
        return None

    def _drawer(self, api: RobotAPI, episode: str, obj: str | None) -> Correction:
        """A missed handle gets a sideways nudge; a drawer that moved too little, "further"."""
        hidden = self.scenario.drawer.handle_offset_y if self.scenario.drawer else 0.0
        used = api.skill_results[-1].params.get("grasp_offset_y", 0.0) if api.skill_results else 0.0
        err = hidden - float(used)  # + = the handle's middle is further to the robot's left
        if abs(err) > 0.035:  # the fingers closed beside the bar or on a post
            problem = Problem(
                kind="missed_handle", skill="open_drawer", obj=obj, details={"err_y": err}
            )
            # No grasp verb: "grab" would send the change to `pick`, not to the drawer skill.
            pool = tuple(p for p in OFFSET_Y_PHRASES if "grab" not in p)
            text = self._pick(pool).format(d="left" if err > 0 else "right")
            return self._say(text, problem, episode, api)
        problem = Problem(kind="drawer_stuck", skill="open_drawer", obj=obj)
        return self._say(self._pick(DRAWER_PHRASES), problem, episode, api)

    @staticmethod
    def _dropped(obj: str, target: Any, api: RobotAPI) -> bool:
        """The object fell on the way: it lies more than 7 cm from the target it was taken to."""
        poses = api.env.backend.object_poses()
        if api.env.arm.holding() is not None or not isinstance(target, str) or target not in poses:
            return False
        return float(np.linalg.norm(poses[obj][0][:2] - poses[target][0][:2])) > 0.07

    def _missed(self, obj: str, api: RobotAPI, episode: str) -> Correction | None:
        true_xy = api.env.backend.object_poses()[obj][0][:2]
        seen_xy = api.locator.pose(obj)[0][:2]
        err = true_xy - seen_xy  # where the grasp should move (world x forward, y left)
        if float(np.max(np.abs(err))) < 0.005:
            return None  # not a perception error this person can see
        problem = Problem(kind="missed_grasp", skill="pick", obj=obj, details={"err": err.tolist()})
        if abs(err[1]) >= abs(err[0]):
            text = self._pick(OFFSET_Y_PHRASES).format(d="left" if err[1] > 0 else "right")
        else:
            text = self._pick(OFFSET_X_PHRASES["forward" if err[0] > 0 else "back"])
        return self._say(text, problem, episode, api)

    # -- watching a placement before it happens ---------------------------------------------
    def before_place(
        self, obj: str, target: Any, api: RobotAPI, *, episode: str
    ) -> Correction | None:
        """Objects to a placement that breaks a stated preference (before the arm moves)."""
        spec = api.env.scene.object(obj)
        for pref in self.scenario.preferences:
            if pref.matches(spec.color, spec.shape) and target != pref.target:
                problem = Problem(
                    kind="wrong_target", skill="place", obj=obj, details={"target": target}
                )
                text = self._pick(PREFERENCE_PHRASES).format(color=spec.color, target=pref.target)
                return self._say(text, problem, episode, api)
        return None
