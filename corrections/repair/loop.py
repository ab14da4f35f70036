"""The repair loop: run, monitor, localise, repair, resume; bounded, every attempt traced.

`RepairLoop.run(instruction, expect, program=None)` runs a program (the planner's, or one
given, e.g. a buggy file) with a monitor judging each checkpoint. When an attempt fails, the
failure is localised (`localise`) into a "repair.failure" event, a repairer chooses a fix for
its class and the loop resumes from the failed subgoal (not from scratch) with the patched
program; each attempt is a "repair.attempt" event. Success is the monitor's verdict on the
task's expectation, never privileged state (evaluations compare with the oracle afterwards).

Repairers:

- `OfflineRepairer` (default, no model): one strategy per class.
  grasp_failure -> regrasp slower and lower (pick speed and descend speed halved, 5 mm lower);
  placement_inaccuracy -> re-detect the object, retry the subgoal with a place offset against
  the error the camera measured (at most 10 cm per repair); perception_error -> re-detect (a
  fresh look) and retry the subgoal;
  wrong_object, wrong_target, plan_error, code_error, unknown -> re-plan the instruction with
  the grammar planner and keep only the subgoals whose expectation does not already hold.
- `LLMRepairer`: prompts an LLM (`policies.llm` spec) with the program, a trace excerpt around
  the failure and the monitor's reason; the answer (a patched program or the remainder) must
  pass the sandbox validator before it runs, else the offline strategy is used.

A monitor that errs stops the loop at once (status "monitor_error"): no repair is attempted on
evidence nobody could judge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from corrigible.corrections.repair.localise import FailureRecord, localise
from corrigible.corrections.repair.monitors import PerceptionMonitor
from corrigible.corrections.repair.program import split_program
from corrigible.errors import CorrigibleError, LLMError, LLMOutputError
from corrigible.policies.controller import CheckpointVerdict, HierarchicalController
from corrigible.policies.middleware import ParamOverrides, Proceed, SkillCall
from corrigible.policies.planners.base import Planner, Program
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import api_names
from corrigible.policies.sandbox import validate_program

Status = Literal["ok", "failed", "monitor_error", "gave_up", "unverified"]
_TRACE_EXCERPT = 12  # trace events shown to an LLM repairer around the failure
# m, the most one placement repair shifts the place point: an object that landed farther off
# tumbled or slid off the rim, and its resting place says little about where it was released
# (a full correction would aim out of the arm's reach)
_MAX_PLACE_CORRECTION_M = 0.10
_AIM_TOLERANCE_M = 0.01  # m across: a fresh look this close to the robot's aim agrees with it
_AIM_HEIGHT_TOLERANCE_M = 0.015  # m in height (an object raised on a rim is 4+ cm higher)


class RepairOverrides:
    """Around-skill link: parameters a repair chose, applied to matching calls from now on.

    Overrides are keyed by (skill parameter group, object); a later repair of the same object
    replaces the values it names. They join the person's corrections (`SkillCall.corrected`).
    """

    def __init__(self) -> None:
        self.overrides: dict[str, ParamOverrides] = {}  # obj -> skill -> param -> value
        self.once: dict[str, ParamOverrides] = {}  # the same, for the next matching call only

    def set(self, obj: str, skill: str, values: dict[str, float], *, once: bool = False) -> None:
        """Applies `values` to `skill` on `obj`: for the rest of the episode, or once.

        A one-off (an aim corrected by a fresh look) must not outlive the situation it fixed:
        once the object has moved, the old correction would be wrong.
        """
        table = self.once if once else self.overrides
        current = table.setdefault(obj, {})
        current[skill] = {**current.get(skill, {}), **values}

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:  # noqa: D102
        obj = call.obj or ""
        once = self.once.get(obj, {})
        used_once = [s for s in once if s in call.spec.uses]
        for table in (self.overrides.get(obj, {}), {s: once[s] for s in used_once}):
            if table:
                merged = {k: dict(v) for k, v in call.corrected.items()}
                for skill, values in table.items():
                    if skill in call.spec.uses:
                        merged[skill] = {**merged.get(skill, {}), **values}
                call.corrected = merged
        for skill in used_once:
            del once[skill]
        return proceed(call)


@dataclass(kw_only=True)
class RepairPlan:
    """What a repairer decided: the program to resume with and parameters to apply."""

    strategy: str  # e.g. "regrasp_slower", "replan_remainder"
    program: str  # the program to run next (the remainder, patched)
    params: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # obj->skill->
    once: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # next call only
    redetected: dict[str, list[float]] = field(default_factory=dict)  # obj -> xyz seen anew, m
    description: str = ""  # one line for the trace and for memory


@dataclass(kw_only=True)
class RepairReport:
    """The outcome of one repaired run (what `corrigible repair` prints)."""

    status: Status
    iterations: int  # repairs attempted
    failures: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    program: str = ""  # the last program run (patched)
    monitor_error: dict[str, Any] | None = None
    learned: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


class OfflineRepairer:
    """One strategy per failure class, no model (see the module docstring)."""

    name = "offline"

    def __init__(self, planner: Planner | None = None) -> None:
        self.planner = planner or GrammarPlanner()

    def repair(self, failure: FailureRecord, loop: RepairLoop, program: str) -> RepairPlan:
        """The plan for `failure` in the current world."""
        parts = split_program(program)
        start = failure.subgoal or 0
        remainder = parts.remainder(start) if parts.subgoals else program
        obj = failure.obj
        cls = failure.failure_class
        if cls == "grasp_failure" and obj is not None:
            pick = loop.current_params(obj, "pick")
            values = {
                "speed": round(pick["speed"] * 0.5, 4),
                "descend_speed": round(pick["descend_speed"] * 0.5, 4),
                "grasp_height": round(pick["grasp_height"] - 0.005, 4),
            }
            return RepairPlan(
                strategy="regrasp_slower",
                program=remainder,
                params={obj: {"pick": values}},
                description=f"grasp the {obj} slower and lower: {values}",
            )
        if cls == "placement_inaccuracy" and obj is not None and failure.target is not None:
            error = loop.placement_error(obj, failure.target)
            if error is not None:
                measured = np.asarray(error, dtype=np.float64)
                norm = float(np.hypot(*measured))
                shift = measured * min(1.0, _MAX_PLACE_CORRECTION_M / norm) if norm else measured
                place = loop.current_params(obj, "place")
                values = {
                    "offset_x": round(float(place["offset_x"] - shift[0]), 4),
                    "offset_y": round(float(place["offset_y"] - shift[1]), 4),
                }
                # The retry picks the object up where it landed: where the robot remembers it
                # (the release point, or where it was before) is stale when it rolled off or
                # hides on a bowl's rim, so a fresh look corrects it first.
                aim = loop.aim_error(obj)
                redetected = {obj: [round(float(v), 4) for v in aim[0]]} if aim else {}
                return RepairPlan(
                    strategy="retry_with_offset",
                    program=remainder,
                    params={obj: {"place": values}},
                    redetected=redetected,
                    description=f"place the {obj} with offset {values} (measured "
                    f"{measured[0] * 100:+.1f}, {measured[1] * 100:+.1f} cm off"
                    + (
                        f"; corrected by at most {_MAX_PLACE_CORRECTION_M * 100:.0f} cm"
                        if norm > _MAX_PLACE_CORRECTION_M
                        else ""
                    )
                    + ("; re-detected it" if redetected else "")
                    + ")",
                )
        if cls == "perception_error":
            aim = loop.aim_error(obj) if obj is not None else None
            if aim is not None and obj is not None:
                found, error = aim
                return RepairPlan(
                    strategy="redetect",
                    program=remainder,
                    redetected={obj: [round(float(v), 4) for v in found]},
                    description=f"re-detected the {obj} {np.hypot(*error) * 100:.1f} cm from "
                    "where the robot aimed",
                )
            return RepairPlan(
                strategy="redetect",
                program=remainder,
                description="look again and retry the subgoal",
            )
        return self._replan(failure, loop)

    def _replan(self, failure: FailureRecord, loop: RepairLoop) -> RepairPlan:
        """Re-plans the instruction and keeps the subgoals that do not hold yet."""
        program = self.planner.plan(loop.instruction, loop.controller.context())
        parts = split_program(program.source)
        keep = [
            s
            for s in parts.subgoals
            if s.expect is None or loop.judge_now(s.expect).holds is not True
        ]
        # A wrongly moved object goes back where the camera saw it before the attempt: it may
        # sit where the right one must go (on a block), and it was not to be moved at all.
        undo = [
            f"put_first_on_second({other!r}, "
            f"[{loop.seen_before[other][0]:.4f}, {loop.seen_before[other][1]:.4f}])"
            for other in failure.moved_instead
            if other in loop.seen_before
        ]
        body = [*undo, *(s.source for s in keep)]
        source = (parts.header + "\n" if parts.header else "") + "\n".join(body)
        return RepairPlan(
            strategy="replan_remainder",
            program=source + "\n",
            description=f"re-planned with the {self.planner.name} planner; "
            f"{len(parts.subgoals) - len(keep)} subgoal(s) already hold"
            + (f"; put back {failure.moved_instead}" if undo else ""),
        )


class LLMRepairer:
    """Asks an LLM for the patched program; falls back to the offline strategy.

    Args:
        llm: a `policies.llm` backend.
        fallback: used when the LLM fails or writes a program the validator refuses.
    """

    def __init__(self, llm: Any, fallback: OfflineRepairer | None = None) -> None:
        self.llm = llm
        self.fallback = fallback or OfflineRepairer()
        self.name = f"llm:{llm.name}"

    def prompt(self, failure: FailureRecord, loop: RepairLoop, program: str) -> list[Any]:
        """The chat: program, trace excerpt around the failure, the failure and the reason."""
        from corrigible.policies.llm.base import ChatMessage

        excerpt = [
            json.dumps(
                {
                    k: v
                    for k, v in e.items()
                    if k
                    in (
                        "kind",
                        "name",
                        "skill",
                        "error",
                        "message",
                        "reason",
                        "expect",
                        "line",
                        "success",
                    )
                }
            )[:300]
            for e in loop.attempt_events[-_TRACE_EXCERPT:]
        ]
        system = (
            "You repair robot programs written against a Python robot API (Code as Policies). "
            "Answer with one ```python block: the program to run next, starting from the failed "
            "subgoal (steps that already succeeded must not be repeated). Call "
            "checkpoint(name, expect=...) after every subgoal. Functions: " + ", ".join(api_names())
        )
        user = (
            f"Instruction: {loop.instruction}\nExpected: {loop.expect}\n"
            f"Program:\n```python\n{program}```\n"
            f"Failure: {failure.failure_class} at line {failure.line} ({failure.line_text}): "
            f"{failure.message}\nTrace around the failure:\n" + "\n".join(excerpt)
        )
        return [ChatMessage.system(system), ChatMessage.user(user)]

    def repair(self, failure: FailureRecord, loop: RepairLoop, program: str) -> RepairPlan:
        """The LLM's patch, validated; the offline plan when there is none."""
        from corrigible.policies.llm.validation import extract_code

        try:
            answer = self.llm.complete(self.prompt(failure, loop, program), max_tokens=512)
            code = extract_code(answer.text)
        except (LLMError, LLMOutputError, ValueError) as exc:
            plan = self.fallback.repair(failure, loop, program)
            plan.description += f" (LLM repair failed: {type(exc).__name__}: {exc})"[:300]
            return plan
        report = validate_program(code, api_names())
        if not report.ok:
            plan = self.fallback.repair(failure, loop, program)
            first = report.first_problem
            plan.description += f" (the LLM's patch was refused: {first.message if first else ''})"
            return plan
        return RepairPlan(strategy="llm_patch", program=code + "\n", description="LLM patch")


class RepairLoop:
    """Runs a task with monitoring and bounded automatic repair.

    Args:
        controller: the episode's controller (its `monitor` is set here).
        monitor: judges checkpoints and the final expectation.
        overrides: the repair link already in the API's middleware chain.
        repairer: chooses fixes (`OfflineRepairer` by default).
        max_iterations: repairs per task before giving up.
    """

    def __init__(
        self,
        controller: HierarchicalController,
        monitor: Any,
        overrides: RepairOverrides,
        *,
        repairer: OfflineRepairer | LLMRepairer | None = None,
        max_iterations: int = 3,
    ) -> None:
        self.controller = controller
        self.monitor = monitor
        controller.monitor = monitor
        self.overrides = overrides
        self.repairer = repairer or OfflineRepairer()
        self.max_iterations = max_iterations
        self.instruction = ""
        self.expect: str | None = None
        self.attempt_events: list[dict[str, Any]] = []
        self.seen_before: dict[str, list[float]] = {}  # camera positions before the attempt
        self._eyes = PerceptionMonitor()

    @property
    def trace(self) -> Any:
        """The episode trace."""
        return self.controller.trace

    # -- what repairers may ask ------------------------------------------------------------------
    def current_params(self, obj: str, skill: str) -> dict[str, float]:
        """The parameters `skill` runs with on `obj` now (defaults + repairs)."""
        base = self.controller.api.skills.params[skill].to_dict()
        return {**base, **self.overrides.overrides.get(obj, {}).get(skill, {})}

    def judge_now(self, expect: str) -> CheckpointVerdict:
        """The monitor's verdict on `expect` in the world as it is now (a fresh look)."""
        evidence = self.controller.capture(f"look: {expect}", expect)
        return self.monitor.judge(evidence)

    def aim_error(self, obj: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(where a fresh look finds `obj`, minus where the robot's locator puts it (xy)), m.

        None when the fresh look does not find it, or agrees within 1 cm across and 1.5 cm
        in height. Height counts: an object resting raised on a bowl's rim, remembered at
        its release point, lies where the robot aims across but higher, and a grasp at table
        height there closes on the bowls.
        """
        evidence = self.controller.capture(f"re-detect: {obj}", None)
        positions, _ = self._eyes.locate(evidence, [obj])
        try:
            aimed = self.controller.api.locator.pose(obj)[0]
        except CorrigibleError:
            return None
        if obj not in positions or not np.all(np.isfinite(positions[obj])):
            return None
        error = positions[obj][:2] - aimed[:2]
        rise = abs(float(positions[obj][2] - aimed[2]))
        off = float(np.hypot(*error)) > _AIM_TOLERANCE_M or rise > _AIM_HEIGHT_TOLERANCE_M
        return (positions[obj], error) if off else None

    def redetect(self, obj: str, position: list[float]) -> None:
        """Makes the robot's camera locator remember `obj` where the fresh look found it.

        The locator keeps objects it cannot see now where it saw them last (object
        permanence); one it lost sight of after it moved (on a bowl's rim) is stale there.
        """
        from dataclasses import replace

        locator = self.controller.api.locator
        remembered = getattr(locator, "_remembered", None)
        if remembered is None:
            return  # privileged aim is never stale
        known = locator.detections().get(obj)
        if known is not None and obj not in locator.visible():
            remembered[obj] = replace(known, position=np.asarray(position, dtype=np.float64))

    def placement_error(self, obj: str, target: str) -> np.ndarray | None:
        """Where `obj` lies relative to the centre of `target`, by the camera (m, xy)."""
        evidence = self.controller.capture(f"measure: {obj}", f"in({obj}, {target})")
        positions, _ = self._eyes.locate(evidence, [obj, target])
        if obj not in positions or target not in positions:
            return None
        error = positions[obj][:2] - positions[target][:2]
        return error if bool(np.all(np.isfinite(error))) else None  # NaN: order unknown

    # -- the loop ----------------------------------------------------------------------------------
    def run(
        self, instruction: str, *, expect: str | None = None, program: str | None = None
    ) -> RepairReport:
        """Plans (unless `program` is given), runs and repairs until the task holds.

        Returns:
            The report; never raises for a failing program, a failing repair or a monitor
            error (those are its statuses).
        """
        self.instruction, self.expect = instruction, expect
        report = RepairReport(status="failed", iterations=0)
        source = program
        for iteration in range(self.max_iterations + 1):
            start = len(self.trace.events)
            self.seen_before = self.controller.context().positions
            if source is None:
                try:
                    planned = self.controller.planner.plan(instruction, self.controller.context())
                    source = planned.source
                    self.trace.emit(
                        "plan",
                        instruction=instruction,
                        planner=planned.planner,
                        family=planned.family,
                        program=source,
                        notes=planned.notes,
                    )
                except (CorrigibleError, ValueError, KeyError) as exc:
                    self.trace.emit(
                        "plan",
                        instruction=instruction,
                        planner=self.controller.planner.name,
                        error=str(exc),
                    )
            elif iteration == 0:
                self.trace.emit(
                    "plan", instruction=instruction, planner="given", family="file", program=source
                )
            final = None
            if source is not None:
                result = self.controller.execute(Program(source=source, planner="repair"))
                report.program = source
                if self.controller.monitor_failure is not None:
                    report.status = "monitor_error"
                    report.monitor_error = self.controller.monitor_failure
                    break
                if result.status == "ok" and expect is not None:
                    try:
                        final = self.judge_now(expect).to_dict()
                    except Exception as exc:  # the monitor erred on the final look
                        self.controller._monitor_failed(
                            self.controller.capture("final", expect), exc
                        )
                        report.status, report.monitor_error = (
                            "monitor_error",
                            self.controller.monitor_failure,
                        )
                        break
                    self.trace.emit("repair.final", **final)
                if result.status == "ok" and (final is None or final["holds"] is True):
                    report.status = "ok"
                    break
                if result.status == "ok" and final is not None and final["holds"] is None:
                    report.status = "unverified"  # the monitor cannot tell: no blind repairs
                    break
            self.attempt_events = self.trace.events[start:]
            failure = localise(
                self.attempt_events, split_program(source or ""), final=final
            ) or FailureRecord(failure_class="unknown", message="the attempt failed")
            report.failures.append(failure.model_dump())
            self.trace.emit("repair.failure", iteration=iteration, **failure.model_dump())
            if iteration == self.max_iterations:
                report.status = "gave_up"
                break
            try:
                plan = self.repairer.repair(failure, self, source or "")
            except (CorrigibleError, ValueError, KeyError) as exc:
                self.trace.emit(
                    "repair.attempt", iteration=iteration + 1, strategy="none", error=str(exc)[:300]
                )
                report.status = "gave_up"
                break
            for obj, skills in plan.params.items():
                for skill, values in skills.items():
                    self.overrides.set(obj, skill, values)
            for obj, position in plan.redetected.items():
                self.redetect(obj, position)
            for obj, skills in plan.once.items():
                for skill, values in skills.items():
                    self.overrides.set(obj, skill, values, once=True)
            attempt = {
                "iteration": iteration + 1,
                "failure_class": failure.failure_class,
                "strategy": plan.strategy,
                "description": plan.description,
                "params": plan.params,
                "once": plan.once,
                "redetected": plan.redetected,
                "program": plan.program,
            }
            report.attempts.append(attempt)
            report.iterations += 1
            self.trace.emit("repair.attempt", **attempt)
            source = plan.program
        return report


__all__ = [
    "LLMRepairer",
    "OfflineRepairer",
    "RepairLoop",
    "RepairOverrides",
    "RepairPlan",
    "RepairReport",
]
