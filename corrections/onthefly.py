"""Applies a person's correction in the same episode, inside the API call that failed.

`CorrectionLoop.install()` wraps the controller's `RobotAPI._skill`, so each skill call:

1. asks memory (`Retriever`) for parameter overrides and a preferred target for its object;
2. before a placement, lets the corrector object to the target (a preference) and applies it;
3. runs the skill; when it fails, asks the corrector for ONE correction, routes it, interprets
   it, applies the effects (skill parameters for this object, or a new place target) and redoes
   the step, up to `max_corrections` per task, before the program ever sees an error.

The latency of a correction is the wall time from its creation to the first arm control step of
the redone step (the arm's tick hook). Everything lands in the episode trace as "correction",
"correction.applied" and "knowledge.used" events; `records` keep it for distillation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrigible.corrections.correction import Correction
from corrigible.corrections.corrector import SimulatedCorrector
from corrigible.corrections.interpret import (
    InterpretContext,
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
from corrigible.corrections.router import CorrectionRouter
from corrigible.errors import CorrigibleError, SkillError
from corrigible.policies.controller import HierarchicalController

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


@dataclass(kw_only=True)
class AppliedCorrection:
    """One correction and what it changed."""

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
    latency_s: float | None = None  # correction created -> first arm step of the redo
    applied: bool = False  # False when nothing in it could be applied

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "text": self.correction.text,
            "label": self.label,
            "skill": self.skill,
            "obj": self.obj,
            "effects": self.effects,
            "params_after": self.params_after,
            "target_before": self.target_before,
            "target_after": self.target_after,
            "latency_s": self.latency_s,
            "applied": self.applied,
        }


class CorrectionLoop:
    """Wires corrector, router, interpreter and memory into a controller's skill calls.

    Args:
        controller: the controller whose API gets wrapped.
        corrector: the (simulated) person.
        router: routes correction text to a level.
        retriever: memory lookups before each skill (mode "none" turns them off).
        episode: episode id for corrections and provenance.
        max_corrections: corrections accepted per task before a failure is given up.
    """

    def __init__(
        self,
        controller: HierarchicalController,
        corrector: SimulatedCorrector,
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
        self.records: list[AppliedCorrection] = []
        self.knowledge_used: list[dict[str, Any]] = []
        self.false_applications: list[dict[str, Any]] = []
        self.session: dict[tuple[str, str], dict[str, float]] = {}  # (skill, obj) -> params
        self.visuals: dict[str, np.ndarray | None] = {}  # obj -> crop descriptor, first sight
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
        if name not in _SUBSKILLS or not args:
            return self._original(name, *args, **kwargs)
        obj, rest = args[0], list(args[1:])
        visual = self.visual(obj) if self.api.env.scene.object_kind(obj) != "drawer" else None
        memory = self.retriever.lookup(
            _SUBSKILLS[name], obj, visual if self.retriever.mode == "text+visual" else None
        )
        self._trace_memory(memory.used, memory.entries, obj)
        if name in _PLACING:
            if memory.target is not None and memory.target in self.api.get_obj_names():
                rest[0] = memory.target
            rest[0] = self._check_target(name, obj, rest[0])
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
                correction = self.corrector.on_failure(
                    skill,
                    obj,
                    message,
                    self.api,
                    episode=self.episode,
                    target=rest[0] if rest else None,
                )
                if correction is None:
                    raise
                record = self._apply(correction, skill, obj, rest[0] if rest else None, overrides)
                if not record.applied:
                    raise
                if record.target_after is not None:
                    rest[0] = record.target_after

    def _check_target(self, name: str, obj: str, target: Any) -> Any:
        if len(self.records) >= self.max_corrections:
            return target
        correction = self.corrector.before_place(obj, target, self.api, episode=self.episode)
        if correction is None:
            return target
        record = self._apply(correction, "place", obj, target, {})
        return record.target_after if record.target_after is not None else target

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
        self,
        correction: Correction,
        skill: str,
        obj: str,
        target: Any,
        overrides: dict[str, dict[str, float]],
    ) -> AppliedCorrection:
        t0 = time.perf_counter()
        decision = self.router.route_correction(correction)
        ctx = InterpretContext(
            visible_objects=tuple(self.api.get_obj_names()),
            current_skill=skill,
            current_object=obj,
            current_target=target if isinstance(target, str) else None,
        )
        record = AppliedCorrection(
            correction=correction,
            label=decision.label,
            route=decision.to_dict(),
            effects=[],
            skill=skill,
            obj=obj,
            target_before=target,
        )
        self.trace.emit("correction", **correction.to_dict(), route=decision.to_dict(), skill=skill)
        try:
            effects = interpret(correction.text, decision.label, ctx).effects
        except (CorrigibleError, ValueError, KeyError) as exc:
            self.trace.emit("correction.applied", text=correction.text, error=str(exc))
            self.records.append(record)
            return record
        record.effects = [e.to_dict() for e in effects]
        for effect in effects:
            if isinstance(effect, SkillParamChange):
                s = effect.skill or skill
                base = self.api.skills.params[s].with_updates(overrides.get(s, {}))
                base = base.with_updates(self.session.get((s, obj), {}))
                new = effect.apply(base, s)
                name = effect.param_for(s)
                self.session.setdefault((s, obj), {})[name] = new.to_dict()[name]
                record.skill = s
                record.params_after = dict(self.session[(s, obj)])
                record.applied = True
            elif isinstance(effect, TargetSubstitution) and effect.new_target:
                record.target_after, record.applied = effect.new_target, True
            elif isinstance(effect, PreferenceMapping) and not effect.is_negative:
                record.preference = effect
                if all(perceived_attributes(obj).get(k) == v for k, v in effect.attributes.items()):
                    record.target_after, record.applied = effect.target, True
        self.records.append(record)
        self._pending = (record, t0)
        self.trace.emit("correction.applied", **record.to_dict())
        return record

    def _trace_memory(self, used: list[dict[str, Any]], entries: list, obj: str) -> None:
        for use, entry in zip(used, entries, strict=True):
            false = is_false_application(entry, self.api, obj)
            use = {**use, "false_application": false}
            self.knowledge_used.append(use)
            if false:
                self.false_applications.append(use)
            self.trace.emit("knowledge.used", **use)
