"""A simulated person who watches the robot and corrects it from what they can see.

`SimulatedCorrector` knows only what a bystander knows: how a skill ended (the object slipped
out, fell on the way, the fingers closed beside it, the drawer came out too little), where
things visibly are (the object, the handle bar, the gripper when it closed), how fast the arm
moved, what the robot said it was using, and its own wishes (the scenario's preferences and
the person's style). It never reads the scenario's hidden properties (frictions, the handle's
offset, the camera's bias): those only show through what the robot does.

After a failure it says ONE correction with a direction and a rough size estimated from what
it saw ("the gripper closed 2.5 cm right of the handle" -> "a bit more to the left"), and it
notices when an adjustment the robot applied already went too far ("too far, back a little to
the right"). The decision is a pure function of a `Sighting` (`SimulatedCorrector.decide`), so
tests can feed it fake observations; `on_failure` builds the sighting from the running world.

Phrasings come from `corrector_phrases.yaml`, written from how people talk, not from what the
interpreter accepts. They never repeat a phrase of the router's tuning examples or the frozen
evaluation set (tests/corrections/test_corrector.py checks). The policy is the same in every
memory condition: it only reacts to what the robot does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from corrigible.boundary import load_yaml
from corrigible.corrections import plan_corrector
from corrigible.corrections.correction import Correction
from corrigible.corrections.scenarios.schema import PreferenceModel, Scenario
from corrigible.errors import ConfigError
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.skills.specs import skill_spec

PHRASES_PATH = Path(__file__).parent / "corrector_phrases.yaml"
PERSONAS: tuple[str, ...] = ("plain", "terse", "polite")
# Leading remarks a terse person leaves out; what follows the comma carries the correction.
_REMARKS = frozenset(
    {
        "you missed",
        "now you overshot",
        "overdid it",
        "that's too much",
        "it slipped again",
        "it still fell",
        "you still dropped it",
        "you came up short",
    }
)
_DIRECTIONS = ("left", "right", "forward", "back")
_OPPOSITE = {"left": "right", "right": "left", "forward": "back", "back": "forward"}

# What a person can tell by eye (m, m/s). Below `_VISIBLE_MISS` a miss is not seen as a
# placement error. A grip more than `_OFF_HANDLE` from the handle bar's middle is on or past a
# post (posts at +-3.5 cm, 5 mm thick): "you missed the handle", not "pull further". An arm
# that moved with the object at under `_ALREADY_SLOW` was already being careful ("even slower").
_VISIBLE_MISS = 0.005
_OUT_OF_REACH = 0.15  # m: further off than any grasp offset may go (the skills' bound)
_OFF_HANDLE = 0.03
_ALREADY_SLOW = 0.12
_DROPPED_FROM_TARGET = 0.07  # the object lies this far from where it was taken: it fell
_FULL_PULL_SLACK = 0.005  # m: a pull this close to the slide's travel went the whole way out
_TOO_SLOW = 0.02  # m/s: crawling; only a person who speaks up about slowness says so
_BARELY = 0.35  # it followed less of the lift than this: "it barely came up" (much slower)
# Still between the fingers but it followed less of the lift than this: it slid down in the
# grip, a slip a bystander sees as plainly as a drop (the pick skill fails at the same share).
_SAGGED = 0.5
_LOOK_EVERY = 5  # control ticks between looks at a lifted or carried object
_CAME_AWAY = 0.06  # m between the hand and the object it carried: it fell out
_EARLY = 0.5  # it fell before this share of the carry: "it fell straight away" (much slower)


@functools.cache
def phrase_pools() -> dict[str, Any]:
    """The pools of `corrector_phrases.yaml` (one per thing seen; the reach pool by way)."""
    data = load_yaml(PHRASES_PATH, what="corrector phrases file")
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{PHRASES_PATH.name}: expected a mapping of pool name to phrases")
    return data


def _pool(key: str, way: str | None = None) -> tuple[str, ...]:
    pool = phrase_pools()[key]
    if isinstance(pool, dict):
        pool = pool[way]
    return tuple(pool)


def in_persona(text: str, persona: str) -> str:
    """The same correction in a persona's style.

    "plain" says it as written; "terse" drops a leading remark ("you missed, it's about 2 cm
    to the left" -> "it's about 2 cm to the left"); "polite" adds "please". The content words,
    and so the route and the effect, stay the same (tests/corrections/test_corrector.py).
    """
    head, _, tail = text.partition(", ")
    if persona == "terse" and tail and head in _REMARKS:
        return tail
    if persona == "polite" and "please" not in text:
        return f"{text.rstrip('?')} please"
    return text


def fill(template: str, way: str | None = None, cm: int = 2, **names: str) -> str:
    """A pool entry with its placeholders filled.

    {d} is the way to move, {opp} the side the robot was off to, {cm} a rough distance,
    {color}/{target} names.
    """
    values: dict[str, Any] = {"cm": cm, **names}
    if way is not None:
        values |= {"d": way, "opp": _OPPOSITE[way]}
    return template.format(**values)


def all_phrases() -> list[str]:
    """Every phrasing the corrector can say, templates filled, in every persona."""
    out: list[str] = []
    for key, pool in phrase_pools().items():
        entries = [e for es in pool.values() for e in es] if isinstance(pool, dict) else pool
        for template in entries:
            ways = _DIRECTIONS if "{d}" in template or "{opp}" in template else (None,)
            for way in ways:
                if way in ("forward", "back") and key != "grasp_miss_reach":
                    continue  # sideways pools are said with left/right only
                out.append(fill(template, way, color="red", target="blue bowl"))
    return list(dict.fromkeys(in_persona(p, persona) for persona in PERSONAS for p in out))


Outcome = Literal["missed", "slipped", "dropped", "drawer_short", "held", "other"]


@dataclass(kw_only=True)
class Sighting:
    """What a bystander saw of one skill attempt (world frame: x away from the robot, y left).

    Attributes:
        skill: the skill the robot was doing.
        obj: the object it acted on (None for a drawer addressed by default).
        outcome: how it visibly ended.
        miss: where the fingers should have closed minus where they closed (m, x and y), seen
            from the object's or the handle bar's visible middle and the gripper; None when the
            fingers did not close near anything to compare.
        speed_holding: the fastest the arm moved while holding the object during the skill.
        drawer_open, drawer_travel: how far the drawer came out and how far it can (m).
        announced: the robot's adjustments it said it used (parameter -> change from its
            default), e.g. from recalled knowledge or earlier corrections.
        on_handle: the miss was measured against a drawer handle.
        carried: the share of the carry the object stayed in the hand (0: it fell at once).
        followed: how much of the hand's lift the object followed before it slipped (0: it
            stayed on the table, 1: all the way); None when nothing was lifted.
        fallen_over: the object lies on its side (a tipped-over cylinder): no grasp offset
            stands it up again, so a person does not suggest one.
    """

    skill: str
    obj: str | None = None
    outcome: Outcome = "other"
    miss: tuple[float, float] | None = None
    speed_holding: float | None = None
    drawer_open: float | None = None
    drawer_travel: float | None = None
    announced: dict[str, float] = field(default_factory=dict)
    on_handle: bool = False
    followed: float | None = None
    carried: float | None = None
    fallen_over: bool = False


@dataclass(kw_only=True)
class Problem:
    """What the corrector saw go wrong and the size it estimated."""

    kind: str  # slip | dropped | missed_grasp | overshoot | missed_handle | drawer_stuck | ...
    skill: str
    obj: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Remark:
    """One decided correction before its words are chosen: the pool and how to fill it."""

    problem: Problem
    pool: str
    way: str | None = None  # the way to move, for the reach pool the sub-pool too
    cm: int = 2


class _Eyes:
    """Follows the running world the way a bystander does: the gripper closing, the motion.

    Subscribes to the episode trace (grasp/release and skill events) and the arm's control
    ticks; re-attaches when the environment is reset (a reset makes a new trace and arm).
    """

    def __init__(self) -> None:
        self.trace: Any = None
        self.arm: Any = None
        self.grip_xy: np.ndarray | None = None  # where the fingers last closed
        self.grip_target: np.ndarray | None = None  # the visible middle of what they went for
        # Where the object lay when the attempt began: the fingers may knock it when closing.
        self.obj_before: np.ndarray | None = None
        self.grip_on_handle = False
        self.grip_held = False
        self.holding = False
        self.speed_holding = 0.0  # the fastest motion with the object so far in this skill
        self.speed_of: dict[str, float] = {}  # skill -> its fastest motion with the object
        self.lift_from: tuple[str, float, float] | None = None  # obj, hand z, obj z at grasp
        self.lift = (0.0, 0.0)  # the hand's highest rise since the grasp, the object's then
        self._ticks = 0
        # A carry: the object, where the hand set off from and where it was when the object
        # fell (None while it holds on); `carried` is the share of the way it held on.
        self.carry: tuple[str, np.ndarray, np.ndarray | None] | None = None
        self.carried: float | None = None
        self.last_params: dict[str, dict[str, float]] = {}  # skill -> the params it reported
        self.api: RobotAPI | None = None
        self.current: tuple[str, str | None] = ("", None)

    def follow(self, api: RobotAPI) -> None:
        self.api = api
        env = api.env
        if env.trace is not self.trace:
            self.trace = env.trace
            self.trace.subscribe(self._event)
        if env.arm is not self.arm:
            self.arm = env.arm
            self.arm.add_tick_hook(self._tick)

    def _tick(self, arm: Any) -> None:
        if self.holding:
            self.speed_holding = max(self.speed_holding, float(arm.measured_speed))
            self._ticks += 1
            if self._ticks % _LOOK_EVERY == 0:
                if self.lift_from is not None:
                    self._look_at_lift(arm)
                if self.carry is not None and self.carry[2] is None:
                    self._look_at_carry(arm)

    def _look_at_carry(self, arm: Any) -> None:
        """Notes where the hand was when the carried object came away from it."""
        assert self.api is not None and self.carry is not None
        obj, start, _ = self.carry
        pose = self.api.env.backend.object_poses().get(obj)
        hand = np.asarray(arm.ee_pose().pos, dtype=np.float64)
        if pose is not None and float(np.linalg.norm(np.asarray(pose[0]) - hand)) > _CAME_AWAY:
            self.carry = (obj, start, hand[:2].copy())

    def _look_at_lift(self, arm: Any) -> None:
        """How high the hand and the object it holds have risen since the grasp."""
        assert self.api is not None and self.lift_from is not None
        obj, hand_z0, obj_z0 = self.lift_from
        pose = self.api.env.backend.object_poses().get(obj)
        if pose is None:
            return
        hand = float(arm.ee_pose().pos[2]) - hand_z0
        if hand > self.lift[0]:
            self.lift = (hand, max(self.lift[1], float(pose[0][2]) - obj_z0))

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "skill.start":
            args = event.get("args") or []
            name = str(event.get("skill", ""))
            obj = args[0] if args and isinstance(args[0], str) else None
            self.current = (name, obj if obj is not None or "drawer" not in name else "drawer")
            self.speed_holding = 0.0
            self.grip_xy = None
            self.speed_of.clear()
            self._note_object()
        elif kind == "arm.grasp":
            self._saw_grasp(event.get("holding"))
        elif kind == "arm.release":
            self.holding = False
        elif kind in ("correction.applied", "correction.refused"):
            self._note_object()  # the robot tries again from here
        elif kind == "skill":
            # A skill ended: what it did with the object is its own; the arm moving home
            # afterwards with an empty hand is not "carrying it".
            skill = str(event.get("skill"))
            self.last_params[skill] = dict(event.get("params") or {})
            self.lift_from = None  # what the lift showed is kept in `lift`
            self.speed_of[skill] = self.speed_holding
            self.speed_holding = 0.0
            held = None if self.arm is None else self.arm.holding()
            self.holding = held is not None
            hand = None if self.arm is None else np.asarray(self.arm.ee_pose().pos[:2])
            if skill == "place" and self.carry is not None and hand is not None:
                _, start, fell = self.carry
                whole = float(np.linalg.norm(hand - start))
                part = whole if fell is None else float(np.linalg.norm(fell - start))
                self.carried = 1.0 if whole < 1e-3 else min(1.0, part / whole)
                self.carry = None
            elif skill == "pick" and isinstance(held, str) and hand is not None:
                self.carry, self.carried = (held, hand.copy(), None), None

    def _note_object(self) -> None:
        obj = self.current[1]
        poses = {} if self.api is None else self.api.env.backend.object_poses()
        self.obj_before = None if obj not in poses else np.asarray(poses[obj][0][:2], dtype=float)

    def _saw_grasp(self, holding: Any) -> None:
        assert self.arm is not None and self.api is not None
        self.grip_xy = np.asarray(self.arm.ee_pose().pos[:2], dtype=np.float64)
        self.grip_held = holding is not None
        self.holding = holding is not None
        self.lift_from, self.lift = None, (0.0, 0.0)
        if isinstance(holding, str):
            poses = self.api.env.backend.object_poses()
            if holding in poses:
                hand_z = float(self.arm.ee_pose().pos[2])
                self.lift_from = (holding, hand_z, float(poses[holding][0][2]))
        name, obj = self.current
        self.grip_on_handle = "drawer" in name
        self.grip_target = None
        if obj is None:
            return
        if self.grip_on_handle:
            self.grip_target = handle_middle(self.api, obj)
        elif self.obj_before is not None:
            self.grip_target = self.obj_before.copy()
        elif obj in (poses := self.api.env.backend.object_poses()):
            self.grip_target = np.asarray(poses[obj][0][:2], dtype=np.float64)


def _lies_on_its_side(obj: str, api: RobotAPI) -> bool:
    """A round object tipped more than 45 degrees, as anyone looking at the table sees it.

    Blocks are left out: a block on another face still looks and grasps like a block.
    """
    pose = api.env.backend.object_poses().get(obj)
    if pose is None:
        return False
    try:
        if api.env.scene.object(obj).kind == "block":
            return False
    except Exception:  # noqa: BLE001 - not a scene object: judge by the pose alone
        pass
    _, x, y, _ = (float(v) for v in pose[1])
    return 1.0 - 2.0 * (x * x + y * y) < 0.7071  # the body's up axis, projected on world z


def handle_middle(api: RobotAPI, drawer: str) -> np.ndarray | None:
    """The visible middle of a drawer's handle bar (world x, y), where a person looks.

    The bar is the frontmost part of the drawer's moving link (its geometry, as built in both
    engines), carried out with the drawer's opening.
    """
    try:
        spec = api.env.scene.object(drawer)
    except Exception:  # noqa: BLE001 - no such drawer: nothing to look at
        return None
    if spec.joint is None or not spec.link_geoms:
        return None
    bar = min(spec.link_geoms, key=lambda g: g.pos[0] - g.size[0])
    opening = float(api.env.backend.articulation_positions().get(drawer, 0.0))
    pos = np.asarray(spec.pos) + np.asarray(bar.pos) + np.asarray(spec.joint.axis) * opening
    return pos[:2].astype(np.float64)


class SimulatedCorrector:
    """Says one correction per problem it sees, with varied phrasings.

    Args:
        scenario: only the person's own side is taken from it: their preferences and their
            style (`persona`). Its hidden properties are not kept.
        rng: the only source of randomness (phrase choice).
        speaks_up_when_slow: also tell a robot that crawls with an object it holds fine to go
            faster (off by default: a person watching a task succeed usually says nothing).
    """

    def __init__(
        self, scenario: Scenario, rng: np.random.Generator, *, speaks_up_when_slow: bool = False
    ) -> None:
        self.preferences: tuple[PreferenceModel, ...] = tuple(scenario.preferences)
        self.persona = scenario.persona
        self.rng = rng
        self.speaks_up_when_slow = speaks_up_when_slow
        self.problems: list[Problem] = []
        self.watched: list[tuple[str, dict[str, Any]]] = []  # API calls seen through hooks
        self._eyes = _Eyes()

    def watch(self, api: RobotAPI) -> None:
        """Follows the running program (API hooks) and the world (trace events, arm ticks)."""
        self._eyes.follow(api)

        def seen(name: str, call: dict[str, Any]) -> None:
            self.watched.append((name, call))
            self._eyes.follow(api)  # the environment may have been reset since

        api.hooks.append(seen)

    # -- deciding, from a sighting only ------------------------------------------------------
    def decide(self, seen: Sighting) -> Remark | None:
        """What to say about a sighting, or None when a person would say nothing."""
        if seen.outcome == "slipped":
            again = self._again("slip", seen)
            badly = seen.followed is not None and seen.followed < _BARELY
            details = {"followed": seen.followed}
            problem = Problem(kind="slip", skill=seen.skill, obj=seen.obj, details=details)
            pool = "lift_slip_again" if again else "lift_slip_badly" if badly else "lift_slip"
            return Remark(problem=problem, pool=pool)
        if seen.outcome == "dropped":
            again = self._again("dropped", seen)
            early = seen.carried is not None and seen.carried < _EARLY
            details = {"carried": seen.carried}
            problem = Problem(kind="dropped", skill=seen.skill, obj=seen.obj, details=details)
            pool = "carry_drop_again" if again else "carry_drop_badly" if early else "carry_drop"
            return Remark(problem=problem, pool=pool)
        if seen.outcome == "missed" and seen.miss is not None:
            return self._miss(seen)
        if seen.outcome in ("missed", "drawer_short") and seen.skill == "open_drawer":
            return self._drawer_short(seen)
        if seen.outcome == "held" and self.speaks_up_when_slow:
            if seen.speed_holding is not None and 0.0 < seen.speed_holding < _TOO_SLOW:
                problem = Problem(kind="too_slow", skill=seen.skill, obj=seen.obj)
                return Remark(problem=problem, pool="too_slow")
        return None

    def _again(self, kind: str, seen: Sighting) -> bool:
        """It happens again: the arm was already slow, or the person said so once already."""
        if seen.speed_holding is not None and seen.speed_holding < _ALREADY_SLOW:
            return True
        return any(p.kind == kind and p.obj == seen.obj for p in self.problems)

    def _miss(self, seen: Sighting) -> Remark | None:
        assert seen.miss is not None
        dx, dy = seen.miss
        if seen.on_handle:
            if abs(dy) <= _OFF_HANDLE:
                return self._drawer_short(seen)  # the fingers were on the bar
            dx = 0.0  # along the pull, the hand follows the bar anyway
        if max(abs(dx), abs(dy)) < _VISIBLE_MISS:
            return None  # nothing this person can see
        if max(abs(dx), abs(dy)) > _OUT_OF_REACH or seen.fallen_over:
            return None  # it rolled away, fell off the table or over: no nudge brings it back
        sideways = abs(dy) >= abs(dx)
        err = dy if sideways else dx
        way = ("left" if err > 0 else "right") if sideways else ("forward" if err > 0 else "back")
        # The robot said it shifted this way already, and now it is off the other way.
        applied = seen.announced.get("grasp_offset_y" if sideways else "grasp_offset_x", 0.0)
        overshoot = abs(applied) >= _VISIBLE_MISS and np.sign(applied) == -np.sign(err)
        cm = max(1, round(abs(err) * 100))
        details = {"err": [dx, dy], "applied": applied, "way": way, "cm": cm}
        if seen.on_handle:
            kind = "overshoot" if overshoot else "missed_handle"
            pool = "handle_overshoot" if overshoot else "handle_miss"
        elif overshoot and sideways:
            kind, pool = "overshoot", "grasp_overshoot_side"
        else:
            kind = "overshoot" if overshoot else "missed_grasp"
            pool = "grasp_miss_side" if sideways else "grasp_miss_reach"
        problem = Problem(kind=kind, skill=seen.skill, obj=seen.obj, details=details)
        return Remark(problem=problem, pool=pool, way=way, cm=cm)

    def _drawer_short(self, seen: Sighting) -> Remark:
        travel = seen.drawer_travel or 0.0
        short = max(0.0, travel - (seen.drawer_open or 0.0))
        problem = Problem(
            kind="drawer_stuck", skill=seen.skill, obj=seen.obj, details={"short": short}
        )
        # The hand already went the drawer's whole way out and the drawer stayed behind: anyone
        # watching sees it cannot keep up, and asks for a slower pull rather than a longer one.
        default = {p.name: p.default for p in skill_spec(seen.skill).params}.get("pull_distance")
        pulled = None if default is None else default + seen.announced.get("pull_distance", 0.0)
        if pulled is not None and travel > 0 and pulled >= travel - _FULL_PULL_SLACK:
            return Remark(problem=problem, pool="drawer_lags", cm=max(1, round(short * 100)))
        return Remark(problem=problem, pool="drawer_short", cm=max(1, round(short * 100)))

    def words(self, remark: Remark) -> str:
        """The remark in words: one entry of its pool, filled, in the person's style."""
        sub = remark.way if remark.pool == "grasp_miss_reach" else None
        pool = _pool(remark.pool, sub)
        template = pool[int(self.rng.integers(len(pool)))]
        return in_persona(fill(template, remark.way, remark.cm), self.persona)

    # -- looking at the world ----------------------------------------------------------------
    def sighting(
        self, skill: str, obj: str | None, api: RobotAPI, *, target: Any = None
    ) -> Sighting:
        """What a bystander saw of the skill that just ended, from the visible world."""
        eyes = self._eyes
        eyes.follow(api)
        params = eyes.last_params.get(skill, {})
        seen = Sighting(
            skill=skill,
            obj=obj,
            speed_holding=eyes.speed_of.get(skill) or None,
            announced=_announced(skill, params),
        )
        if obj is not None:
            seen.fallen_over = _lies_on_its_side(obj, api)
        if skill == "pick":
            hand, obj_rise = eyes.lift
            if hand > 0.01:  # the hand went up with the object in it
                seen.followed = float(np.clip(obj_rise / hand, 0.0, 1.0))
            if eyes.grip_xy is not None and not eyes.grip_held:
                seen.outcome = "missed"
            elif obj is not None and api.env.arm.holding() != obj:
                seen.outcome = "slipped"
            elif seen.followed is not None and seen.followed < _SAGGED:
                seen.outcome = "slipped"  # held, but it slid down in the fingers
            else:
                seen.outcome = "held"
        elif skill == "place" and obj is not None and _dropped(obj, target, api):
            seen.outcome = "dropped"
            seen.carried = eyes.carried
        elif skill == "open_drawer":
            drawer = obj or "drawer"
            seen.drawer_open = float(api.env.backend.articulation_positions().get(drawer, 0.0))
            joint = api.env.scene.object(drawer).joint
            seen.drawer_travel = float(joint.range[1] - joint.range[0]) if joint else None
            seen.outcome = "missed" if eyes.grip_xy is not None else "drawer_short"
            seen.on_handle = True
        if eyes.grip_xy is not None and eyes.grip_target is not None:
            dx, dy = (eyes.grip_target - eyes.grip_xy).tolist()
            seen.miss = (float(dx), float(dy))
        return seen

    def _say(self, remark: Remark, episode: str, api: RobotAPI) -> Correction:
        self.problems.append(remark.problem)
        return Correction(
            text=self.words(remark),
            time=float(api.env.backend.time),
            episode=episode,
            source="scripted",
        )

    def _said(self, text: str, problem: Problem, episode: str, api: RobotAPI) -> Correction:
        """A plan-level correction (`corrections.plan_corrector`), in the person's style."""
        self.problems.append(problem)
        return Correction(
            text=in_persona(text, self.persona),
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
        """A correction for a failed skill, or None when the person has nothing to say.

        `message` (the robot's own account) is not used: the person judges by looking.
        """
        del message
        step = plan_corrector.missing_step(api, target, self.rng)  # "open the drawer first"
        if step is not None and obj is not None:
            problem = Problem(kind="missing_step", skill=skill, obj=obj, details={"target": target})
            return self._said(step, problem, episode, api)
        remark = self.decide(self.sighting(skill, obj, api, target=target))
        return None if remark is None else self._say(remark, episode, api)

    # -- watching a placement before it happens ---------------------------------------------
    def before_place(
        self, obj: str, target: Any, api: RobotAPI, *, episode: str
    ) -> Correction | None:
        """Objects to a placement that breaks the person's wish (before the arm moves)."""
        spec = api.env.scene.object(obj)
        rule = plan_corrector.objection(self.preferences, obj, api, target, self.rng)
        if rule is not None:  # a wish by shape/size, or a place to avoid: said as a rule
            problem = Problem(kind="plan_rule", skill="place", obj=obj, details={"target": target})
            return self._said(rule, problem, episode, api)
        for pref in self.preferences:
            if plan_corrector.is_plan_level(pref):
                continue
            if pref.matches(spec.color, spec.shape) and target != pref.target:
                problem = Problem(
                    kind="wrong_target", skill="place", obj=obj, details={"target": target}
                )
                pool = _pool("wrong_target")
                template = pool[int(self.rng.integers(len(pool)))]
                text = fill(template, color=spec.color or "", target=pref.target)
                self.problems.append(problem)
                return Correction(
                    text=in_persona(text, self.persona),
                    time=float(api.env.backend.time),
                    episode=episode,
                    source="scripted",
                )
        if self.speaks_up_when_slow:
            remark = self.decide(self.sighting("pick", obj, api))
            if remark is not None and remark.pool == "too_slow":
                return self._say(remark, episode, api)
        return None


def _announced(skill: str, params: dict[str, float]) -> dict[str, float]:
    """The robot's reported parameters that differ from the skill's defaults (the change)."""
    try:
        defaults = {p.name: p.default for p in skill_spec(skill).params}
    except Exception:  # noqa: BLE001 - a skill the registry does not know: nothing announced
        return {}
    return {
        k: float(v) - defaults[k]
        for k, v in params.items()
        if k in defaults and isinstance(v, int | float) and abs(float(v) - defaults[k]) > 1e-9
    }


def _dropped(obj: str, target: Any, api: RobotAPI) -> bool:
    """The object fell on the way: it lies more than 7 cm from the target it was taken to."""
    poses = api.env.backend.object_poses()
    if api.env.arm.holding() is not None or not isinstance(target, str) or target not in poses:
        return False
    far = float(np.linalg.norm(poses[obj][0][:2] - poses[target][0][:2]))
    return far > _DROPPED_FROM_TARGET
