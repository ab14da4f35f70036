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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from corrigible.errors import EmergencyStopError, SandboxInterrupted
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
    """The outermost link: a stopped run starts no further skill; a paused one waits.

    `stop(reason)` and `pause()`/`resume()` may come from any thread (a console, a bridge);
    they act at the next skill boundary. Motion inside a skill stops through the controller's
    `SandboxControl`, which the arm checks every control step.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._stopped: str | None = None
        self._paused = False

    @property
    def stopped(self) -> str | None:
        """The reason ("stopped: <why>") once the run was stopped, else None."""
        with self._cond:
            return self._stopped

    def stop(self, reason: str) -> None:
        """Ends the run at the next skill boundary (the program sees an interrupted call)."""
        with self._cond:
            if self._stopped is None:
                self._stopped = f"stopped: {reason}"
            self._cond.notify_all()

    def pause(self) -> None:
        """Holds the next skill until `resume()` or `stop()`."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        """Lets a held skill start."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:  # noqa: D102
        with self._cond:
            while self._paused and self._stopped is None:
                self._cond.wait()
            if self._stopped is not None:
                raise SandboxInterrupted(self._stopped)
        return proceed(call)


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
    "ParamOverrides",
    "Proceed",
    "RunGate",
    "SafetyGate",
    "SkillCall",
    "SkillMiddleware",
    "SkillTracer",
    "run_chain",
]
