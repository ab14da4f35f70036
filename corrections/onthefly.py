"""Applies a person's correction in the same episode, inside the API call it concerns.

`CorrectionLoop.install()` wraps the controller's `RobotAPI._skill`, so each skill call:

1. asks memory (`Retriever`) for parameter overrides and a preferred target for its object;
2. takes the corrections that arrived since the last skill (a `LiveCorrector`, e.g. a person
   typing: "a bit more to the left" before a pick, "no, the blue bowl" before a place, "stop");
3. before a placement, lets the corrector object to the target (a preference) and applies it;
4. runs the skill; when it fails, asks the corrector for ONE correction, routes it, interprets
   it, applies the effects (skill parameters for this object, or a new place target) and redoes
   the step, up to `max_corrections` per task, before the program ever sees an error.

Every correction gets a one-line reply ("correction.reply" in the trace; a `LiveCorrector` is
told it too). A correction that cannot be used (nothing understood, an object that is not in
the scene, a change that means nothing for this skill) is *refused*: it is interpreted in full
before anything is touched, so a refusal changes no skill parameter, no target and no session
state, is not counted against `max_corrections` and never reaches memory (`refused`, not
`records`).

The latency of a correction is the wall time from its creation to the first arm control step
after it was applied (the arm's tick hook). Everything lands in the episode trace as
"correction", "correction.applied"/"correction.refused", "correction.reply" and
"knowledge.used" events; `records` keep the applied ones for distillation.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, runtime_checkable

import numpy as np

from corrigible.corrections.correction import Correction
from corrigible.corrections.interpret import (
    ControlCommand,
    InterpretContext,
    ObjectSubstitution,
    PreferenceMapping,
    SkillParamChange,
    TargetSubstitution,
    interpret,
)
from corrigible.corrections.retrieval import (
    Retriever,
    crop_embedding,
    is_false_application,
    perceived_attributes,
)
from corrigible.corrections.router import CorrectionRouter, normalise
from corrigible.errors import CorrigibleError, SkillError, UnknownNameError, UnknownObjectError
from corrigible.policies.controller import HierarchicalController
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.sandbox.control import SandboxInterrupted
from corrigible.sim_envs.locations import location_names
from corrigible.sim_envs.palette import COLOR_SYNONYMS, COLORS

# API skill -> the library skills whose parameters it uses (put_first_on_second = pick + place).
_SUBSKILLS: dict[str, tuple[str, ...]] = {
    "pick": ("pick",),
    "place": ("place",),
    "put_first_on_second": ("pick", "place"),
    "push": ("push",),
    "open_drawer": ("open_drawer",),
    "close_drawer": ("close_drawer",),
}
_PLACING = ("place", "put_first_on_second")
_CONTAINERS = ("bowl", "drawer")

# "<colour> <kind>" in a correction names one object; plural forms ("red blocks") name a class
# of objects (a standing rule may cover objects not on the table), so only singulars are checked.
_MENTION_RE = re.compile(r"\b([a-z]+) (block|cube|brick|box|cylinder|can|bowl|dish)\b")
_KIND_OF_NOUN = {"cube": "block", "brick": "block", "box": "block", "can": "cylinder"}
_KIND_OF_NOUN |= {"dish": "bowl"}


def unseen_objects(text: str, visible: Sequence[str]) -> list[str]:
    """Objects a correction names ("the purple bowl") that are not among `visible`.

    Only "<palette colour> <kind>" phrases count: "the left bowl" or a misspelt colour is left
    to the interpreter, which resolves (or refuses) it with a "did you mean".
    """
    missing: list[str] = []
    for color, noun in _MENTION_RE.findall(normalise(text)):
        color = COLOR_SYNONYMS.get(color, color)
        name = f"{color} {_KIND_OF_NOUN.get(noun, noun)}"
        if color in COLORS and name not in visible and name not in missing:
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
    target_before: Any = None
    target_after: Any = None
    preference: PreferenceMapping | None = None  # a stated standing rule, if any
    latency_s: float | None = None  # correction created -> first arm step after applying it
    applied: bool = False  # False when nothing in it could be applied
    status: str = "applied"  # "applied" | "control" (stop/pause/resume) | "refused"
    reply: str = ""  # the one-line answer the person got
    when: str = "failure"  # "failure" | "before_skill" | "before_place" | "paused"
    control: str | None = None  # "stop" | "pause" | "resume" for control commands

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
        }


@dataclass(kw_only=True)
class _Call:
    """The API skill call being corrected; corrections change `target` in place."""

    name: str  # API skill, e.g. "put_first_on_second"
    obj: str
    target: Any  # place target for placing calls, else None
    overrides: dict[str, dict[str, float]]  # memory's parameter overrides for this call

    @property
    def is_placing(self) -> bool:
        return self.name in _PLACING


@dataclass(kw_only=True)
class _Staged:
    """Everything a correction would change, computed before anything is changed."""

    params: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    target: str | None = None
    preference: PreferenceMapping | None = None
    control: str | None = None
    notes: list[str] = field(default_factory=list)  # one per change, for the reply
    skipped: list[str] = field(default_factory=list)  # why an understood effect was not used

    @property
    def is_empty(self) -> bool:
        return not self.params and self.target is None and self.control is None


def _change_words(effect: SkillParamChange) -> str:
    if effect.delta is not None:
        return f"{effect.delta:+.3f}"
    return f"x{effect.factor:.2f}"


class CorrectionLoop:
    """Wires corrector, router, interpreter and memory into a controller's skill calls.

    Args:
        controller: the controller whose API gets wrapped.
        corrector: the (simulated) person, or a `LiveCorrector` such as a typed console.
        router: routes correction text to a level.
        retriever: memory lookups before each skill (mode "none" turns them off).
        episode: episode id for corrections and provenance.
        max_corrections: corrections applied per task before a failure is given up.
    """

    def __init__(
        self,
        controller: HierarchicalController,
        corrector: Corrector,
        router: CorrectionRouter,
        retriever: Retriever,
        *,
        episode: str,
        max_corrections: int = 3,
    ) -> None:
        self.controller = controller
        self.api = controller.api
        self.corrector = corrector
        self.router = router
        self.retriever = retriever
        self.episode = episode
        self.max_corrections = max_corrections
        self.records: list[AppliedCorrection] = []  # applied corrections (what memory learns)
        self.refused: list[AppliedCorrection] = []  # changed nothing
        self.controls: list[AppliedCorrection] = []  # stop / pause / resume
        self.knowledge_used: list[dict[str, Any]] = []
        self.false_applications: list[dict[str, Any]] = []
        self.session: dict[tuple[str, str], dict[str, float]] = {}  # (skill, obj) -> params
        self.targets: dict[str, str] = {}  # obj -> place target said before its place call
        self.visuals: dict[str, np.ndarray | None] = {}  # obj -> crop descriptor, first sight
        self.stopped: str | None = None  # "stopped: <why>" once the person ended the run
        # The person's channel, when the corrector is one (replies, boundaries, pauses).
        self._live: LiveCorrector | None = (
            corrector if isinstance(corrector, LiveCorrector) else None
        )
        self._paused = False
        self._original = self.api._skill
        self._pending: tuple[AppliedCorrection, float] | None = None

    @property
    def trace(self):  # noqa: ANN201 - EpisodeTrace
        """The episode trace."""
        return self.api.env.trace

    def install(self) -> None:
        """Wraps the API's skill dispatch and hooks the arm's control steps (idempotent)."""
        if self.api._skill is not self._skill:
            self.api._skill = self._skill  # instance attribute shadows RobotAPI._skill
            self.api.env.arm.add_tick_hook(self._tick)
            self.corrector.watch(self.api)

    def _tick(self, _arm: object) -> None:
        if self._pending is not None:
            record, t0 = self._pending
            record.latency_s = time.perf_counter() - t0
            self._pending = None

    def visual(self, obj: str) -> np.ndarray | None:
        """The object's appearance, taken the first time a skill touches it (before motion)."""
        if obj not in self.visuals:
            self.visuals[obj] = crop_embedding(self.api, obj)
        return self.visuals[obj]

    # -- the wrapped dispatch ----------------------------------------------------------------
    def _skill(self, name: str, *args: Any, **kwargs: Any) -> bool:
        if self.stopped is not None:
            raise SandboxInterrupted(self.stopped)
        if name not in _SUBSKILLS or not args:
            return self._original(name, *args, **kwargs)
        obj, rest = args[0], list(args[1:])
        visual = self.visual(obj) if self.api.env.scene.object_kind(obj) != "drawer" else None
        memory = self.retriever.lookup(
            _SUBSKILLS[name], obj, visual if self.retriever.mode == "text+visual" else None
        )
        self._trace_memory(memory.used, memory.entries, obj)
        call = _Call(
            name=name,
            obj=obj,
            target=rest[0] if name in _PLACING else None,
            overrides=memory.overrides,
        )
        if call.is_placing:
            if memory.target is not None and memory.target in self.api.get_obj_names():
                call.target = memory.target
            call.target = self.targets.pop(obj, call.target)  # the person's word beats memory
        self._take_waiting(call)
        if call.is_placing:
            self._check_target(call)
            rest[0] = call.target
        while True:
            overrides = {
                s: {**memory.overrides.get(s, {}), **self.session.get((s, obj), {})}
                for s in _SUBSKILLS[name]
            }
            try:
                with self._params(overrides):
                    return self._original(name, obj, *rest, **kwargs)
            except SkillError as exc:
                if len(self.records) >= self.max_corrections:
                    raise
                failed = self.api.skill_results[-1] if self.api.skill_results else None
                skill = failed.skill if failed is not None else name
                message = failed.message if failed is not None else str(exc)
                with contextlib.suppress(CorrigibleError):
                    self.api.skills.go_home()  # back off, let the person look
                target = call.target if call.is_placing else (rest[0] if rest else None)
                if not self._correct_failure(call, skill, message, target):
                    raise
                if call.is_placing:
                    rest[0] = call.target

    def _take_waiting(self, call: _Call) -> None:
        """Applies what a live corrector received since the last skill boundary."""
        if self._live is None:
            return
        skill = _SUBSKILLS[call.name][0]
        for correction in self._live.before_skill(
            call.name, call.obj, self.api, episode=self.episode
        ):
            self._apply(correction, call, skill, when="before_skill")

    def _correct_failure(self, call: _Call, skill: str, message: str, target: Any) -> bool:
        """Asks for corrections of a failed skill until one applies; False: give up."""
        asks_again = self._live is not None and self._live.asks_again
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

    def _check_target(self, call: _Call) -> None:
        if len(self.records) >= self.max_corrections:
            return
        correction = self.corrector.before_place(
            call.obj, call.target, self.api, episode=self.episode
        )
        if correction is not None:
            self._apply(correction, call, "place", when="before_place")

    @contextlib.contextmanager
    def _params(self, overrides: dict[str, dict[str, float]]) -> Iterator[None]:
        """Sets the library's parameters for this call only, then restores them."""
        saved = dict(self.api.skills.params)
        try:
            for skill, values in overrides.items():
                if values:
                    self.api.skills.params[skill] = saved[skill].with_updates(values)
            yield
        finally:
            self.api.skills.params.clear()
            self.api.skills.params.update(saved)

    # -- one correction ------------------------------------------------------------------------
    def _apply(
        self, correction: Correction, call: _Call, skill: str, when: str
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
        try:
            decision = self.router.route_correction(correction)
        except (CorrigibleError, ValueError, KeyError) as exc:
            self.trace.emit("correction", **correction.to_dict(), route=None, skill=skill)
            return self._refuse(record, f"could not route {correction.text!r} ({exc})")
        record.label, record.route = decision.label, decision.to_dict()
        self.trace.emit("correction", **correction.to_dict(), route=record.route, skill=skill)
        staged = self._stage(record, call, skill)
        if isinstance(staged, str):
            return self._refuse(record, staged)
        self._commit(record, staged, call, t0)
        if staged.control is not None:
            self._control(staged.control, call, skill, correction.text)
        return record

    def _stage(self, record: AppliedCorrection, call: _Call, skill: str) -> _Staged | str:
        """What the correction would change, or why it is refused; changes nothing itself."""
        text, obj = record.correction.text, call.obj
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
        staged = _Staged()
        for effect in effects:
            if isinstance(effect, SkillParamChange):
                self._stage_param(effect, staged, call, skill)
            elif isinstance(effect, TargetSubstitution) and effect.new_target:
                self._stage_target(effect.new_target, staged, call, visible)
            elif isinstance(effect, TargetSubstitution):
                staged.skipped.append(f"which target? name it (I see: {', '.join(visible)})")
            elif (
                isinstance(effect, ObjectSubstitution)
                and call.is_placing
                and effect.new_object is not None
                and effect.new_object.split()[-1] in _CONTAINERS
            ):  # "no, the orange one" while placing names the target, not a new object
                self._stage_target(effect.new_object, staged, call, visible)
            elif isinstance(effect, PreferenceMapping) and not effect.is_negative:
                attrs = perceived_attributes(obj)
                if not all(attrs.get(k) == v for k, v in effect.attributes.items()):
                    staged.skipped.append(
                        f"the rule {effect.pattern} -> {effect.target} does not cover the {obj}"
                    )
                elif self._stage_target(effect.target, staged, call, visible):
                    staged.preference = effect
            elif isinstance(effect, ControlCommand):
                self._stage_control(effect.command, staged)
            else:
                what = effect.kind.replace("_", " ")
                staged.skipped.append(f"a {what} cannot be applied while a skill runs")
        if staged.is_empty:
            return f"understood as {record.label} but {'; '.join(staged.skipped)}"
        return staged

    def _stage_param(
        self, effect: SkillParamChange, staged: _Staged, call: _Call, skill: str
    ) -> None:
        s = effect.skill or skill
        if s not in self.api.skills.params:
            staged.skipped.append(f"the {s} skill has no parameters to change")
            return
        try:
            name = effect.param_for(s)
        except UnknownNameError as exc:
            staged.skipped.append(str(exc))
            return
        key = (s, call.obj)
        base = self.api.skills.params[s].with_updates(call.overrides.get(s, {}))
        base = base.with_updates({**self.session.get(key, {}), **staged.params.get(key, {})})
        value = effect.apply(base, s).to_dict()[name]
        staged.params.setdefault(key, {})[name] = value
        staged.notes.append(
            f"{s} {name} {_change_words(effect)} (now {value:.3f}) for the {call.obj}"
        )

    def _stage_target(self, target: str, staged: _Staged, call: _Call, visible: tuple) -> bool:
        if target not in visible and target not in location_names():
            staged.skipped.append(f"there is no {target} here (I see: {', '.join(visible)})")
            return False
        if target == call.obj:
            staged.skipped.append(f"cannot put the {call.obj} on itself")
            return False
        staged.target = target
        if call.is_placing:
            staged.notes.append(f"place target {call.target} -> {target} for the {call.obj}")
        else:
            staged.notes.append(f"place target -> {target} for the {call.obj} when it is placed")
        return True

    def _stage_control(self, command: str, staged: _Staged) -> None:
        if command == "resume" and not self._paused:
            staged.skipped.append("the run is not paused, so there is nothing to resume")
        elif command == "pause" and self._paused:
            staged.skipped.append("the run is already paused")
        else:
            staged.control = command

    def _commit(self, record: AppliedCorrection, staged: _Staged, call: _Call, t0: float) -> None:
        """Applies a staged correction; the only place corrections change loop state."""
        for (s, obj), values in staged.params.items():
            self.session.setdefault((s, obj), {}).update(values)
            record.skill = s
            record.params_after = dict(self.session[(s, obj)])
        if staged.target is not None:
            record.target_after = staged.target
            if call.is_placing:
                call.target = staged.target
            else:
                self.targets[call.obj] = staged.target
        record.preference = staged.preference
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
            acts_now = staged.params or call.is_placing  # else: a target for a later place
            record.reply = f"{record.label}: {notes}" + (f"; {suffix}" if acts_now else "")
            self.records.append(record)
            self._pending = (record, t0)
        self.trace.emit("correction.applied", **record.to_dict())
        self._reply(record)

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
    def _control(self, command: str, call: _Call, skill: str, text: str) -> None:
        if command == "stop":
            self._stop(f"the person said {text!r}")
        elif command == "pause":
            self._pause(call, skill)
        else:  # resume: ends the wait in `_pause`
            self._paused = False

    def _stop(self, reason: str) -> NoReturn:
        """Ends the program at this skill boundary with error class "interrupted".

        The error goes back through the sandbox as an interrupted API call, so the program
        unwinds at once. `SandboxControl.interrupt()` is deliberately not used: it stays set,
        and the episode's closing `arm.wait` would then raise at the arm's next checkpoint.
        """
        self.stopped = f"stopped: {reason}"
        self.trace.emit("correction.stop", reason=reason)
        raise SandboxInterrupted(self.stopped)

    def _pause(self, call: _Call, skill: str) -> None:
        """Holds the arm at this skill boundary until "resume" (or "stop", or no more input).

        Corrections given while paused apply as usual; the controller's `SandboxControl`
        shows the pause to anyone watching it and is always released again.
        """
        control = self.controller.control
        self._paused = True
        control.pause()
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
            control.resume()
            self.trace.emit("correction.resumed", skill=call.name, obj=call.obj)

    def _trace_memory(self, used: list[dict[str, Any]], entries: list, obj: str) -> None:
        for use, entry in zip(used, entries, strict=True):
            false = is_false_application(entry, self.api, obj)
            use = {**use, "false_application": false}
            self.knowledge_used.append(use)
            if false:
                self.false_applications.append(use)
            self.trace.emit("knowledge.used", **use)
