"""Applies a person's correction in the same episode, inside the skill call it concerns.

`CorrectionLoop` is a link of the robot API's around-skill chain (`policies.middleware`): memory
lookup (`corrections.retrieval.MemoryLookup`) runs before it and has already set the call's
recalled parameters and target. For every skill call acting on an object the loop:

1. applies the target the person gave for this object earlier ("no, the blue bowl" said before
   the pick holds for its placement; the person's word beats memory);
2. takes the corrections that arrived since the last skill (a `LiveCorrector`, e.g. a person
   typing: "a bit more to the left" before a pick, "no, the blue bowl" before a place, "stop");
3. before a placement, lets the corrector object to the target (a preference) and applies it;
4. runs the skill; when it fails, asks the corrector for ONE correction, routes it, interprets
   it, applies the effects (skill parameters for this object, or a new place target) and redoes
   the step, up to `max_corrections` per task, before the program ever sees an error.

Every effect stages itself (`memory.effects`, through the `StagingContext` this loop gives it);
nothing changes until the whole correction has staged, then all of it is committed at once.
Every correction gets a one-line reply ("correction.reply" in the trace; a `LiveCorrector` is
told it too). A correction that cannot be used (nothing understood, an object that is not in
the scene, a change that means nothing for this skill) is *refused*: it changes no skill
parameter, no target and no session state, is not counted against `max_corrections` and never
reaches memory (`refused`, not `records`).

The latency of a correction is the wall time from its creation to the first arm control step
after it was applied (the arm's tick hook). Everything lands in the episode trace as
"correction", "correction.applied"/"correction.refused", "correction.reply" events; `records`
keep the applied ones for distillation.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NoReturn, Protocol, runtime_checkable

from corrigible.corrections.correction import Correction
from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.corrections.router import (
    CorrectionRouter,
    RouteDecision,
    ask_back_question,
    normalise,
    read_answer,
)
from corrigible.errors import (
    CorrigibleError,
    SandboxInterrupted,
    SkillError,
    UnknownNameError,
    UnknownObjectError,
)
from corrigible.memory.effects import (
    AddedPrecondition,
    Effect,
    ObjectSubstitution,
    Ordering,
    PreferenceMapping,
    SkillParamChange,
    TargetSubstitution,
)
from corrigible.policies.middleware import Proceed, RunGate, SkillCall
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.sandbox.control import SandboxControl
from corrigible.sim_envs.locations import location_names
from corrigible.sim_envs.vocabulary import (
    canonical_color,
    kind_of_noun,
    kinds,
    object_name,
)


@cache
def _mention_re(nouns: tuple[str, ...]) -> re.Pattern[str]:
    """The "<word> <singular noun>" phrases by which a correction names one object."""
    return re.compile(rf"\b([a-z]+) ({'|'.join(nouns)})\b")


def _singular_nouns() -> tuple[str, ...]:
    # Plural forms ("red blocks") name a class of objects (a standing rule may cover objects not
    # on the table), and furniture has no colour, so only singular object nouns are checked.
    return tuple(noun for kind in kinds() if not kind.furniture for noun in kind.nouns)


def unseen_objects(text: str, visible: Sequence[str]) -> list[str]:
    """Objects a correction names ("the purple bowl") that are not among `visible`.

    Only "<palette colour> <kind>" phrases count: "the left bowl" or a misspelt colour is left
    to the interpreter, which resolves (or refuses) it with a "did you mean".
    """
    missing: list[str] = []
    for word, noun in _mention_re(_singular_nouns()).findall(normalise(text)):
        color = canonical_color(word)
        name = object_name(color, kind_of_noun(noun) or noun) if color else None
        if name is not None and name not in visible and name not in missing:
            missing.append(name)
    return missing


@runtime_checkable
class Corrector(Protocol):
    """What the loop asks of every corrector (the simulated person, a typed console, ...)."""

    def watch(self, api: RobotAPI) -> None:
        """Starts following the running program (API hooks)."""

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
        """One correction for a failed skill, or None when there is nothing to say."""

    def before_place(
        self, obj: str, target: Any, api: RobotAPI, *, episode: str
    ) -> Correction | None:
        """An objection to a placement before the arm moves, or None."""


@runtime_checkable
class LiveCorrector(Corrector, Protocol):
    """A corrector a person speaks through: corrections at any skill boundary, replies back.

    The scripted `SimulatedCorrector` is not one (it only reacts to failures and placements);
    `corrections.typed.TypedCorrector` is.
    """

    asks_again: bool  # after a refused correction on a failure, ask for another one

    def before_skill(
        self, skill: str, obj: str, api: RobotAPI, *, episode: str
    ) -> Iterable[Correction]:
        """The corrections that arrived since the last skill (taken lazily, in order)."""

    def while_paused(self, api: RobotAPI, *, episode: str) -> Correction | None:
        """Blocks for the next correction while the run is paused; None: no more will come."""

    def on_reply(self, record: AppliedCorrection) -> None:
        """Told what became of each correction it gave (`record.reply`, `record.status`)."""

    def notify(self, message: str) -> None:
        """Told about the run itself (e.g. a stop that no correction caused)."""


@dataclass(kw_only=True)
class AppliedCorrection:
    """One correction and what it changed (nothing when `status` is "refused")."""

    correction: Correction
    label: str  # route label
    route: dict[str, Any]
    effects: list[dict[str, Any]]
    skill: str  # library skill it acted on ("pick")
    obj: str | None
    params_after: dict[str, float] = field(default_factory=dict)  # this object's changed params
    # Every skill the correction changed -> its params after ("much more gently" while picking
    # slows the carry too): `skill`/`params_after` name the first, distillation learns all.
    params_by_skill: dict[str, dict[str, float]] = field(default_factory=dict)
    target_before: Any = None
    target_after: Any = None
    preference: PreferenceMapping | None = None  # a stated standing rule, if any
    # Plan-level rules said in it (preferences, constraints, preconditions, orderings): kept
    # for distillation (`corrections.plan_rules`) even when they changed nothing in this call.
    rules: list[Effect] = field(default_factory=list)
    latency_s: float | None = None  # correction created -> first arm step after applying it
    applied: bool = False  # False when nothing in it could be applied
    # "applied" | "control" (stop/pause/resume) | "refused" | "undone" | "undo" (a said "undo
    # that": it took back the last applied one) | "asked" (the router was unsure: a question)
    status: str = "applied"
    reply: str = ""  # the one-line answer the person got
    when: str = "failure"  # "failure" | "before_skill" | "before_place" | "paused"
    control: str | None = None  # "stop" | "pause" | "resume" for control commands

    def target_effect(self) -> PreferenceMapping | TargetSubstitution | None:
        """The effect that decided this correction's place target, which is what it teaches.

        A stated rule if there was one, else the substitution of the target it committed.
        """
        if self.preference is not None:
            if self.preference.is_negative or self.preference.same_attribute:
                return None  # not one target for a class: `corrections.plan_rules` keeps it
            return self.preference
        if isinstance(self.target_after, str):
            return TargetSubstitution(new_target=self.target_after, excluded=None)
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "text": self.correction.text,
            "source": self.correction.source,
            "time": self.correction.time,
            "label": self.label,
            "skill": self.skill,
            "obj": self.obj,
            "effects": self.effects,
            "params_after": self.params_after,
            "target_before": self.target_before,
            "target_after": self.target_after,
            "latency_s": self.latency_s,
            "applied": self.applied,
            "status": self.status,
            "reply": self.reply,
            "when": self.when,
            "control": self.control,
            "rules": [r.rule_text() for r in self.rules],  # type: ignore[union-attr]
        }


@dataclass(kw_only=True)
class _Staged:
    """Everything a correction would change, computed before anything is changed."""

    params: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    target: str | None = None
    preference: PreferenceMapping | None = None
    control: str | None = None
    notes: list[str] = field(default_factory=list)  # one per change, for the reply
    skipped: list[str] = field(default_factory=list)  # why an understood effect was not used
    rules: list[Effect] = field(default_factory=list)  # plan-level rules to remember
    steps: list[AddedPrecondition] = field(default_factory=list)  # run before the call

    @property
    def is_empty(self) -> bool:
        return (
            not self.params
            and self.target is None
            and self.control is None
            and not self.rules
            and not self.steps
        )


class _Stage:
    """The `StagingContext` effects stage themselves on: one correction, one skill call."""

    def __init__(self, loop: CorrectionLoop, call: SkillCall, skill: str) -> None:
        self.loop = loop
        self.call = call
        self.obj: str = call.obj or ""
        self.skill = skill
        self.is_placing = call.spec.places
        self.visible = tuple(loop.api.get_obj_names())
        self.staged = _Staged()

    def attributes(self) -> dict[str, str]:
        # Colour and shape from the perceived name, the size class the bounding box shows and
        # the colour group: what a standing rule may name ("small red blocks").
        from corrigible.corrections.plan_rules import perceived_attributes

        scene = self.loop.api.env.scene
        size = next((o.size_class for o in scene.objects if o.name == self.obj), None)
        return perceived_attributes(self.obj, size)

    def skip(self, why: str) -> None:
        self.staged.skipped.append(why)

    def stage_param(self, change: SkillParamChange) -> None:
        params = self.loop.api.skills.params
        skill = change.skill or self.skill
        if skill not in params:
            self.skip(f"the {skill} skill has no parameters to change")
            return
        try:
            name = change.param_for(skill)
        except UnknownNameError as exc:
            self.skip(str(exc))
            return
        key = (skill, self.obj)
        base = params[skill].with_updates(self.call.recalled.get(skill, {}))
        base = base.with_updates(
            {**self.loop.session.get(key, {}), **self.staged.params.get(key, {})}
        )
        value = change.apply(base, skill).to_dict()[name]
        # The change acts on what the robot did (recalled knowledge included), so it updates a
        # remembered value rather than stacking on it, and the world's limit on this object
        # (a drawer's slide travel) caps it as the declared bounds do.
        lo, hi = self.loop.api.skills.world_bounds(skill, self.obj).get(name, (value, value))
        limited = min(max(value, lo), hi)
        before = base.to_dict()[name]
        if limited != value and abs(limited - before) < 1e-9:
            self.skip(f"{skill} {name} is already {before:.3f}, as far as the {self.obj} allows")
            return
        self.staged.params.setdefault(key, {})[name] = limited
        limit_note = "" if limited == value else f", the most the {self.obj} allows"
        self.staged.notes.append(
            f"{skill} {name} {change.words()} (now {limited:.3f}{limit_note}) for the {self.obj}"
        )

    def stage_target(self, target: str) -> bool:
        if target not in self.visible and target not in location_names():
            self.skip(f"there is no {target} here (I see: {', '.join(self.visible)})")
            return False
        if target == self.obj:
            self.skip(f"cannot put the {self.obj} on itself")
            return False
        self.staged.target = target
        if self.is_placing:
            self.staged.notes.append(
                f"place target {self.call.target} -> {target} for the {self.obj}"
            )
        else:
            self.staged.notes.append(
                f"place target -> {target} for the {self.obj} when it is placed"
            )
        return True

    def stage_preference(self, rule: PreferenceMapping) -> None:
        self.staged.preference = rule

    def stage_rule(self, rule: Effect, *, acts_now: bool) -> None:
        self.staged.rules.append(rule)
        later = "" if acts_now else " (nothing to change in this step)"
        self.staged.notes.append(f"will remember: {rule.rule_text()}{later}")  # type: ignore[union-attr]

    def stage_step(self, step: AddedPrecondition) -> None:
        if step.skill not in self.loop.api.skills.params and step.skill != "pick":
            self.skip(f"there is no {step.skill} step to add")
            return
        self.staged.steps.append(step)
        self.staged.notes.append(f"{step.skill}({step.obj or ''}) first")

    def current_target(self) -> str | None:
        target = self.call.target if self.is_placing else self.loop.targets.get(self.obj)
        return target if isinstance(target, str) else None

    def stage_control(self, command: str) -> None:
        if command == "resume" and not self.loop._paused:
            self.skip("the run is not paused, so there is nothing to resume")
        elif command == "pause" and self.loop._paused:
            self.skip("the run is already paused")
        else:
            self.staged.control = command


class CorrectionLoop:
    """The live-corrections link of the around-skill chain: corrector, router, interpreter.

    Args:
        api: the robot API whose skill calls it corrects (`attach` adds it to the chain).
        corrector: the (simulated) person, or a `LiveCorrector` such as a typed console.
        router: routes correction text to a level.
        episode: episode id for corrections and provenance.
        gate: the run gate a "stop" closes (the session's; a new one when not given).
        control: the controller's sandbox control, shown paused while a person pauses the run.
        max_corrections: corrections applied per task before a failure is given up.
    """

    def __init__(
        self,
        api: RobotAPI,
        corrector: Corrector,
        router: CorrectionRouter,
        *,
        episode: str,
        gate: RunGate | None = None,
        control: SandboxControl | None = None,
        max_corrections: int = 3,
    ) -> None:
        self.api = api
        self.corrector = corrector
        self.router = router
        self.episode = episode
        self.gate = gate or RunGate()
        self.control = control
        self.max_corrections = max_corrections
        self.records: list[AppliedCorrection] = []  # applied corrections (what memory learns)
        self.refused: list[AppliedCorrection] = []  # changed nothing
        self.controls: list[AppliedCorrection] = []  # stop / pause / resume
        self.session: dict[tuple[str, str], dict[str, float]] = {}  # (skill, obj) -> params
        self.targets: dict[str, str] = {}  # obj -> place target said before its place call
        # The person's channel, when the corrector is one (replies, boundaries, pauses).
        self._live: LiveCorrector | None = (
            corrector if isinstance(corrector, LiveCorrector) else None
        )
        self._paused = False
        self._replan = False  # a plan correction asked for the rest of the plan to be redone
        self._pending: tuple[AppliedCorrection, float] | None = None
        self._attached = False
        # Loop state before each applied correction, so `undo` can take the last one back.
        self._history: list[tuple[AppliedCorrection, dict, dict]] = []
        # A correction the router was unsure of, waiting for the person's yes or no.
        self._asked: tuple[Correction, RouteDecision] | None = None
        self._state_lock = threading.Lock()

    @property
    def trace(self):  # noqa: ANN201 - EpisodeTrace
        """The episode trace."""
        return self.api.env.trace

    @property
    def stopped(self) -> str | None:
        """The reason ("stopped: <why>") once the person ended the run, else None."""
        return self.gate.stopped

    def attach(self) -> None:
        """Joins the API's skill chain and hooks the arm's control steps (idempotent)."""
        if not self._attached:
            self.api.use(self)
            self.api.env.arm.add_tick_hook(self._tick)
            self.corrector.watch(self.api)
            self._attached = True

    def _tick(self, _arm: object) -> None:
        if self._pending is not None:
            record, t0 = self._pending
            record.latency_s = time.perf_counter() - t0
            self._pending = None

    # -- the link ------------------------------------------------------------------------------
    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:
        """Applies waiting corrections, then runs the call, correcting and redoing failures."""
        if call.obj is None:
            return proceed(call)
        obj = call.obj
        if call.spec.places:
            call.target = self.targets.pop(obj, call.target)  # the person's word beats memory
        self._take_waiting(call)
        if call.spec.places:
            self._check_target(call)
        while True:
            call.corrected = {s: dict(self.session.get((s, obj), {})) for s in call.spec.uses}
            try:
                return proceed(call)
            except SkillError as exc:
                if len(self.records) >= self.max_corrections:
                    raise
                failed = self.api.skill_results[-1] if self.api.skill_results else None
                skill = failed.skill if failed is not None else call.name
                message = failed.message if failed is not None else str(exc)
                with contextlib.suppress(CorrigibleError):
                    self.api.skills.go_home()  # back off, let the person look
                self._look()
                if not self._correct_failure(call, skill, message):
                    raise

    def _look(self) -> None:
        """Takes the camera frame a correction's staging reads, while the person looks.

        Staging needs the objects in view and their perceived positions; the arm has just
        moved (backed off after a failure, or carried an object to its place), so the first
        perception call renders and segments a new frame, which was most of a correction's
        latency (the demo tour at a load average of 4: 0.96 s of the 1.16 s its ten
        corrections spent being routed, interpreted and staged). Perception caches its frame per
        simulation time and nothing steps while the corrector is asked, so taking the frame
        here moves that work before the correction arrives. The frame is the very one staging
        and the redone skill would take: what the robot perceives does not change.
        """
        with contextlib.suppress(CorrigibleError):
            self.api.get_obj_names()

    def _take_waiting(self, call: SkillCall) -> None:
        """Applies what a live corrector received since the last skill boundary."""
        if self._live is None:
            return
        for correction in self._live.before_skill(
            call.name, call.obj or "", self.api, episode=self.episode
        ):
            self._apply(correction, call, call.spec.uses[0], when="before_skill")

    def _correct_failure(self, call: SkillCall, skill: str, message: str) -> bool:
        """Asks for corrections of a failed skill until one applies; False: give up."""
        asks_again = self._live is not None and self._live.asks_again
        target = call.target if call.spec.places else (call.args[1] if len(call.args) > 1 else None)
        while len(self.records) < self.max_corrections:
            correction = self.corrector.on_failure(
                skill, call.obj, message, self.api, episode=self.episode, target=target
            )
            if correction is None:
                return False
            record = self._apply(correction, call, skill, when="failure")
            if record.status == "applied":
                return True
            if not asks_again:
                return False
        return False

    def _check_target(self, call: SkillCall) -> None:
        if len(self.records) >= self.max_corrections:
            return
        self._look()
        correction = self.corrector.before_place(
            call.obj or "", call.target, self.api, episode=self.episode
        )
        if correction is not None:
            self._apply(correction, call, "place", when="before_place")

    # -- one correction ------------------------------------------------------------------------
    def _apply(
        self, correction: Correction, call: SkillCall, skill: str, when: str
    ) -> AppliedCorrection:
        """Routes, interprets and (all or nothing) applies one correction; always replies."""
        t0 = time.perf_counter()
        record = AppliedCorrection(
            correction=correction,
            label="",
            route={},
            effects=[],
            skill=skill,
            obj=call.obj,
            target_before=call.target,
            when=when,
        )
        asked, self._asked = self._asked, None
        answer = read_answer(correction.text) if asked is not None else None
        if asked is not None:
            self.trace.emit(
                "correction.answer", text=correction.text, asked=asked[0].text, answer=answer
            )
        if asked is not None and answer is not None:
            if not answer:
                why = f"ok, I did not apply {asked[0].text!r}; say it another way"
                return self._refuse(record, why)
            # "yes": the asked correction applies as the router's first choice.
            record.correction, decision = asked[0], asked[1]
            record.route = {**decision.to_dict(), "confirmed_by": correction.text}
        else:
            try:
                decision = self.router.route_correction(correction)
            except (CorrigibleError, ValueError, KeyError) as exc:
                self.trace.emit("correction", **correction.to_dict(), route=None, skill=skill)
                return self._refuse(record, f"could not route {correction.text!r} ({exc})")
            record.route = decision.to_dict()
        record.label = decision.label
        self.trace.emit(
            "correction", **record.correction.to_dict(), route=record.route, skill=skill
        )
        if decision.label == "undo":
            return self._undo_said(record)
        if decision.ask_back and self._live is not None and "confirmed_by" not in record.route:
            # Ask only about something the words can mean: gibberish is refused, not asked.
            unreadable = self._stage(record, call, skill)
            if isinstance(unreadable, str):
                return self._refuse(record, unreadable)
            return self._ask(record, decision)
        staged = self._stage(record, call, skill)
        if isinstance(staged, str):
            return self._refuse(record, staged)
        self._commit(record, staged, call, t0)
        for step in staged.steps:  # "open the drawer first": the missing step, now
            self._run_step(step)
        if any(isinstance(r, Ordering | ObjectSubstitution) for r in staged.rules):
            # The order of what is left changed: end this program here; the session plans
            # the rest again with the rule (`Session.run`, `take_replan`).
            self._replan = True
            self.trace.emit("correction.replan", text=correction.text)
            raise SandboxInterrupted(f"re-planning the rest after {correction.text!r}")
        if staged.control is not None:
            self._control(staged.control, call, skill, correction.text)
        return record

    def _stage(self, record: AppliedCorrection, call: SkillCall, skill: str) -> _Staged | str:
        """What the correction would change, or why it is refused; changes nothing itself."""
        text, obj = record.correction.text, call.obj or ""
        visible = tuple(self.api.get_obj_names())
        # The object in hand is there even when the camera misses it in the gripper.
        missing = unseen_objects(text, (*visible, obj))
        if missing:
            return f"there is no {missing[0]} here (I see: {', '.join(visible)})"
        ctx = InterpretContext(
            visible_objects=visible,
            current_skill=skill,
            current_object=obj,
            current_target=call.target if isinstance(call.target, str) else None,
            positions={n: tuple(self.api.get_obj_pos(n)) for n in visible},  # perceived
        )
        try:
            effects = interpret(text, record.label, ctx).effects
        except UnknownObjectError as exc:
            return str(exc).rstrip(". ")
        except (CorrigibleError, ValueError, KeyError) as exc:
            return f"could not understand {text!r} as a {record.label} correction ({exc})"
        record.effects = [e.to_dict() for e in effects]
        if not effects:
            return f"could not understand {text!r}: it asks for no change"
        stage = _Stage(self, call, skill)
        for effect in effects:
            effect.stage(stage)
        staged = stage.staged
        if staged.is_empty:
            return f"understood as {record.label} but {'; '.join(staged.skipped)}"
        return staged

    def _commit(
        self, record: AppliedCorrection, staged: _Staged, call: SkillCall, t0: float
    ) -> None:
        """Applies a staged correction; the only place corrections change loop state."""
        with self._state_lock:
            self._commit_locked(record, staged, call, t0)
        self.trace.emit("correction.applied", **record.to_dict())
        self._reply(record)

    def _commit_locked(
        self, record: AppliedCorrection, staged: _Staged, call: SkillCall, t0: float
    ) -> None:
        if staged.control is None:
            before = {key: dict(values) for key, values in self.session.items()}
            self._history.append((record, before, dict(self.targets)))
        for (s, obj), values in staged.params.items():
            self.session.setdefault((s, obj), {}).update(values)
            record.params_by_skill[s] = dict(self.session[(s, obj)])
            if len(record.params_by_skill) == 1:
                record.skill = s
                record.params_after = record.params_by_skill[s]
        if staged.target is not None:
            record.target_after = staged.target
            if call.spec.places:
                call.target = staged.target
            elif call.obj is not None:
                self.targets[call.obj] = staged.target
        record.preference = staged.preference
        record.rules = list(staged.rules)
        record.applied = True
        record.control = staged.control
        if staged.control is not None:
            record.status = "control"
            record.reply = {
                "stop": "control: stopping; the episode ends here",
                "pause": "control: paused; say 'resume' to go on or 'stop' to end the run",
                "resume": "control: resuming",
            }[staged.control]
            self.controls.append(record)
        else:
            suffix = {
                "failure": "redoing",
                "before_skill": f"applies to this {call.name}",
                "before_place": "placing there",
                "paused": "applies when resumed",
            }[record.when]
            notes = "; ".join(staged.notes + [f"ignored: {s}" for s in staged.skipped])
            # else: a target for a later place, or only a rule kept for later
            acts_now = (
                staged.params or staged.steps or (call.spec.places and staged.target is not None)
            )
            record.reply = f"{record.label}: {notes}" + (f"; {suffix}" if acts_now else "")
            self.records.append(record)
            self._pending = (record, t0)

    def _run_step(self, step: AddedPrecondition) -> None:
        """Runs a missing step through the whole chain (its own failures are corrected too)."""
        self.trace.emit("correction.step", skill=step.skill, obj=step.obj)
        fn = getattr(self.api, step.skill)
        with contextlib.suppress(SkillError):  # the redo then fails and is corrected as usual
            fn(step.obj) if step.obj is not None else fn()

    def take_replan(self) -> bool:
        """Whether a plan correction ended the program to re-plan the rest (then cleared)."""
        wanted, self._replan = self._replan, False
        return wanted

    def undo(self) -> AppliedCorrection | None:
        """Takes back the last applied correction: its parameters and targets.

        It is no longer learned from. A place target it already changed in a running call
        stays. Returns None when there is nothing to undo.
        """
        with self._state_lock:
            if not self._history:
                return None
            record, session, targets = self._history.pop()
            self.session, self.targets = session, targets
            self.records.remove(record)
            record.status = "undone"
        self.trace.emit("correction.undone", text=record.correction.text, reply=record.reply)
        return record

    def _undo_said(self, record: AppliedCorrection) -> AppliedCorrection:
        """A said "undo that": takes back the last applied correction and says which."""
        undone = self.undo()
        record.status, record.applied = "undo", undone is not None
        if undone is None:
            record.reply = "undo: no applied correction to take back; nothing changed"
        else:
            record.reply = f"undo: took back {undone.correction.text!r} ({undone.reply})"
        self._reply(record)
        return record

    def _ask(self, record: AppliedCorrection, decision: RouteDecision) -> AppliedCorrection:
        """Asks the person to confirm an unsure route; nothing applies until a "yes".

        Only a live corrector can answer, on the same channel; its next line resolves the
        question ("yes" applies it as asked, "no" drops it, anything else is a new correction).
        """
        self._asked = (record.correction, decision)
        record.status, record.applied = "asked", False
        record.reply = f"{ask_back_question(decision)}; nothing changed"
        self.trace.emit(
            "correction.ask",
            text=record.correction.text,
            label=decision.label,
            runner_up=decision.runner_up,
            confidence=decision.confidence,
            question=record.reply,
        )
        self._reply(record)
        return record

    def _refuse(self, record: AppliedCorrection, why: str) -> AppliedCorrection:
        record.status, record.applied = "refused", False
        record.reply = f"{why}; nothing changed"
        self.refused.append(record)
        self.trace.emit("correction.refused", **record.to_dict())
        self._reply(record)
        return record

    def _reply(self, record: AppliedCorrection) -> None:
        self.trace.emit(
            "correction.reply",
            text=record.correction.text,
            status=record.status,
            label=record.label,
            reply=record.reply,
        )
        if self._live is not None:
            self._live.on_reply(record)

    # -- stop / pause / resume -------------------------------------------------------------------
    def _control(self, command: str, call: SkillCall, skill: str, text: str) -> None:
        if command == "stop":
            self._stop(f"the person said {text!r}")
        elif command == "pause":
            self._pause(call, skill)
        else:  # resume: ends the wait in `_pause`
            self._paused = False

    def _stop(self, reason: str) -> NoReturn:
        """Ends the program at this skill boundary with error class "interrupted".

        The error goes back through the sandbox as an interrupted API call, so the program
        unwinds at once, and the run gate refuses every later skill. `SandboxControl.interrupt()`
        is deliberately not used: it stays set, and the episode's closing `arm.wait` would then
        raise at the arm's next checkpoint.
        """
        self.gate.stop(reason)
        self.trace.emit("correction.stop", reason=reason)
        raise SandboxInterrupted(self.gate.stopped or reason)

    def _pause(self, call: SkillCall, skill: str) -> None:
        """Holds the arm at this skill boundary until "resume" (or "stop", or no more input).

        Corrections given while paused apply as usual; the controller's `SandboxControl`
        shows the pause to anyone watching it and is always released again.
        """
        self._paused = True
        if self.control is not None:
            self.control.pause()
        self.trace.emit("correction.paused", skill=call.name, obj=call.obj)
        try:
            while self._paused:
                correction = None
                if self._live is not None:
                    correction = self._live.while_paused(self.api, episode=self.episode)
                if correction is None:  # nobody can say "resume" any more
                    if self._live is not None:
                        self._live.notify("no more input while paused; stopping the run")
                    self._stop("input ended while paused")
                self._apply(correction, call, skill, when="paused")
        finally:
            self._paused = False
            if self.control is not None:
                self.control.resume()
            self.trace.emit("correction.resumed", skill=call.name, obj=call.obj)
