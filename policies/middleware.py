"""Around-skill middleware: an ordered chain every robot-API skill call runs through.

A program's `pick('red block')` becomes a `SkillCall` that passes through each middleware of
`RobotAPI.middleware` in order, outermost first, and finally reaches the skill library. A
middleware may look at or change the call (its target, its parameter overrides), run code
before and after it, call `proceed` several times (a correction redoes a failed skill), or not
at all (a stopped run). This replaces patching the API's dispatch: the chain is explicit, its
order is visible (`RobotAPI.describe_middleware()`), and each concern is its own class.

The session builds the chain (`corrigible.session`): the run gate (stop/pause), the safety gate
(e-stop), memory lookup (`corrections.retrieval.MemoryLookup`), live corrections
(`corrections.onthefly.CorrectionLoop`) and skill tracing; program repair will be one more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from corrigible.errors import (
    EmergencyStopError,
    MotionPreempted,  # noqa: F401 - re-exported here
    SandboxInterrupted,
)
from corrigible.policies.skills.specs import SkillSpec

if TYPE_CHECKING:
    from corrigible.robots.arm import Arm
    from corrigible.tracing import EpisodeTrace

ParamOverrides = dict[str, dict[str, float]]  # skill -> parameter -> value (SI units)


@dataclass(kw_only=True)
class SkillCall:
    """One skill call on its way through the chain; middlewares may change it.

    Args:
        spec: the declared skill.
        args: the resolved arguments, in declaration order (an object skill's object first).
        recalled: parameter overrides memory recalled for this call.
        corrected: parameter overrides the person's corrections set for this call.
    """

    spec: SkillSpec
    args: list[Any]
    recalled: ParamOverrides = field(default_factory=dict)
    corrected: ParamOverrides = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The API skill ("put_first_on_second")."""
        return self.spec.name

    @property
    def obj(self) -> str | None:
        """The object it acts on, for object skills."""
        return self.args[0] if self.spec.acts_on_object and self.args else None

    @property
    def target(self) -> Any:
        """Where a placing skill puts the object (None for other skills)."""
        return self.args[1] if self.spec.places and len(self.args) > 1 else None

    @target.setter
    def target(self, value: Any) -> None:
        if not self.spec.places:
            raise TypeError(f"{self.name} takes no place target")
        self.args[1] = value

    def overrides(self) -> ParamOverrides:
        """What the skill runs with: recalled parameters, then corrections on top."""
        return {
            skill: {**self.recalled.get(skill, {}), **self.corrected.get(skill, {})}
            for skill in self.spec.uses
            if self.recalled.get(skill) or self.corrected.get(skill)
        }


Proceed = Callable[[SkillCall], bool]


@runtime_checkable
class SkillMiddleware(Protocol):
    """One link of the chain."""

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:
        """Runs the call (through `proceed`, any number of times) and returns its success.

        Raises:
            SkillError: the skill failed and this middleware does not handle it.
        """


class RunGate:
    """The outermost link: stop, pause and mid-motion preemption, from any thread.

    `stop(reason)` and `pause()`/`resume()` may come from any thread (a console, a bridge). They
    act at the next skill boundary, and, once `watch(arm)` hooked the arm's control tick, within
    one control tick of a motion: a stop holds the arm where it is (the measured joints become
    the servo target) and ends the skill; a pause freezes the motion at the tick, which goes on
    unchanged on `resume()`; `preempt(reason)` (a correction arrived) holds the arm and makes
    the gate redo the skill, so the correction applies from where the arm is. Each halt is
    traced ("motion.halted", "motion.paused", "motion.command_changed") with its wall latency
    from the request, and kept in `latencies`.

    Without `watch`, motion inside a skill stops only through the controller's `SandboxControl`,
    which the arm checks every control step.

    Args:
        max_redos: preemptions one skill call accepts before a further one waits for the next
            skill boundary (a person typing fast must not keep the arm from ever finishing).
    """

    def __init__(self, *, max_redos: int = 5) -> None:
        self._cond = threading.Condition()
        self._stopped: str | None = None
        self._paused = False
        self._estop = False
        self.max_redos = max_redos
        self._requested: dict[str, float] = {}  # "stop" | "pause" -> perf_counter() of request
        self._preempt: tuple[str, float] | None = None  # (reason, perf_counter()) waiting
        self._redo_since: tuple[str, float] | None = None  # preempted: awaiting the new command
        self._depth = 0  # gated skill calls running (nested calls count)
        self._redos = 0  # times the running outermost skill call was redone
        self._arm: Any = None
        self._trace: EpisodeTrace | None = None
        self.latencies: list[dict[str, Any]] = []  # one record per halt / changed command

    @property
    def stopped(self) -> str | None:
        """The reason ("stopped: <why>") once the run was stopped, else None."""
        with self._cond:
            return self._stopped

    @property
    def in_skill(self) -> bool:
        """Whether a gated skill call is running (a preemption can act now)."""
        with self._cond:
            return self._depth > 0

    def watch(self, arm: Arm, trace: EpisodeTrace | None = None) -> None:
        """Checks stop, pause and preemption at every control tick of `arm` (idempotent)."""
        if self._arm is None:
            self._arm, self._trace = arm, trace
            arm.add_tick_hook(self._on_tick)  # type: ignore[attr-defined]

    def stop(self, reason: str, *, estop: bool = False) -> None:
        """Ends the run: a moving arm halts at its next tick, no further skill starts.

        Args:
            reason: why, for the trace and the program's error.
            estop: also engage the arm's e-stop at the halt (released only by `reset_stop`).
        """
        with self._cond:
            if self._stopped is None:
                self._stopped = f"stopped: {reason}"
                self._requested["stop"] = time.perf_counter()
            self._estop = self._estop or estop
            self._cond.notify_all()

    def pause(self) -> None:
        """Holds the motion at its next tick, and the next skill, until `resume()` or `stop()`."""
        with self._cond:
            if not self._paused:
                self._requested["pause"] = time.perf_counter()
            self._paused = True

    def resume(self) -> None:
        """Lets a held skill or motion go on."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def preempt(self, reason: str, *, since: float | None = None) -> bool:
        """Halts a running motion at its next tick and redoes its skill (a correction arrived).

        Args:
            reason: what arrived ("correction: <text>"), for the trace.
            since: when the person acted (`time.perf_counter()`; default now), e.g. the end of
                an utterance that was transcribed first; latencies are measured from it.

        Returns:
            Whether it will act: False outside a skill (the correction is taken before the next
            skill anyway) or once this call was redone `max_redos` times.
        """
        with self._cond:
            if self._depth == 0 or self._stopped is not None or self._redos >= self.max_redos:
                return False
            self._preempt = (reason, time.perf_counter() if since is None else since)
            return True

    def withdraw(self, reason: str) -> None:
        """Drops a waiting preemption given for `reason`: its correction was already taken.

        A failed skill waiting for a line, or a skill boundary, may take the correction before
        the arm's next tick; the motion that follows must not be halted for it.
        """
        with self._cond:
            if self._preempt is not None and self._preempt[0] == reason:
                self._preempt = None

    def _record(self, kind: str, since: float, **fields: Any) -> None:
        record = {"latency_ms": (time.perf_counter() - since) * 1000.0, **fields}
        self.latencies.append({"event": kind, **record})
        if self._trace is not None:
            self._trace.emit(kind, **record)

    def _hold(self) -> None:
        hold = getattr(self._arm, "hold", None)
        if hold is not None:
            hold()

    def _on_tick(self, arm: Arm) -> None:
        """The arm's tick hook: acts on what was requested since the last tick."""
        if self._redo_since is not None:  # the redone skill's first command
            reason, since = self._redo_since
            self._redo_since = None
            self._record("motion.command_changed", since, reason=reason)
        if self._stopped is None and not self._paused and self._preempt is None:
            return  # the common case, without taking the lock
        with self._cond:
            stopped, paused, preempt = self._stopped, self._paused, self._preempt
            first_halt = stopped is not None and "halted" not in self._requested
            if first_halt:
                self._requested["halted"] = time.perf_counter()
            estop = self._estop
        if stopped is not None:
            if first_halt:
                if estop:
                    arm.stop()  # type: ignore[attr-defined]
                else:
                    self._hold()
                cause = "estop" if estop else "stop"
                self._record("motion.halted", self._requested["stop"], cause=cause)
            raise SandboxInterrupted(f"{stopped}; the arm halted mid-motion")
        if paused:
            self._record("motion.paused", self._requested["pause"])
            with self._cond:
                while self._paused and self._stopped is None:
                    self._cond.wait(0.1)
            if self._stopped is not None:
                self._on_tick(arm)  # stopped while paused: halt and end the skill
            return
        if preempt is not None and self._depth > 0:
            with self._cond:
                self._preempt = None
            self._hold()
            reason, since = preempt
            self._record("motion.halted", since, cause="correction", reason=reason)
            self._redo_since = preempt  # latency to the changed command runs from the request
            raise MotionPreempted(f"preempted by {reason}")

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:  # noqa: D102
        redos = 0
        while True:
            with self._cond:
                while self._paused and self._stopped is None:
                    self._cond.wait()
                if self._stopped is not None:
                    raise SandboxInterrupted(self._stopped)
                self._depth += 1
                if self._depth == 1:
                    # Waiting corrections are taken before this skill; no need to preempt it.
                    self._preempt, self._redos = None, redos
            try:
                return proceed(call)
            except MotionPreempted as exc:
                redos += 1
                if self._trace is not None:
                    self._trace.emit(
                        "skill.redo", skill=call.name, args=list(call.args), reason=str(exc)
                    )
            finally:
                with self._cond:
                    self._depth -= 1


class SafetyGate:
    """Refuses to start a skill while the arm's e-stop is engaged.

    The safety envelope inside the arm refuses every motion anyway; this link stops the skill
    before it plans or moves anything, with a message that says how to go on.
    """

    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:  # noqa: D102
        if self.arm.is_stopped:
            raise EmergencyStopError(
                f"{call.name} refused: the e-stop is engaged; release it (arm.reset_stop()) "
                "before the robot moves again"
            )
        return proceed(call)


class SkillTracer:
    """Traces "skill.start" before and "skill.end" after every skill call.

    This is the event stream's view of skills; the library's own "skill" event, written when a
    skill ends, carries the full result (parameters, start and end state).
    """

    def __init__(self, trace: EpisodeTrace) -> None:
        self.trace = trace

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:  # noqa: D102
        self.trace.emit("skill.start", skill=call.name, args=list(call.args))
        ok, error = False, None
        try:
            ok = proceed(call)
            return ok
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.trace.emit("skill.end", skill=call.name, success=ok, error=error)


def run_chain(
    chain: list[SkillMiddleware], call: SkillCall, innermost: Callable[[SkillCall], bool]
) -> bool:
    """Runs `call` through `chain` (outermost first) and then `innermost`."""

    def at(index: int) -> Proceed:
        if index == len(chain):
            return innermost
        link = chain[index]
        following = at(index + 1)
        return lambda c: link.around_skill(c, following)

    return at(0)(call)


__all__ = [
    "MotionPreempted",
    "ParamOverrides",
    "Proceed",
    "RunGate",
    "SafetyGate",
    "SkillCall",
    "SkillMiddleware",
    "SkillTracer",
    "run_chain",
]
