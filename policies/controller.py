"""The hierarchical controller: planner programs on top, language-conditioned skills below.

`HierarchicalController.run(instruction)` perceives, asks the planner for a program, validates
it, runs it in the sandbox (where each API call drives the skills in this process) and records
everything in the episode trace. A `SandboxControl` pauses, resumes or interrupts the loop
between skills (the program waits for its next API call) and inside them (the arm checks it
every control step), which is where corrections hook in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from corrigible.errors import CorrigibleError
from corrigible.policies.planners.base import HistoryItem, PlanContext, Planner, Program
from corrigible.policies.planners.grammar import record_history
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.sandbox import (
    SandboxControl,
    SandboxLimits,
    SandboxResult,
    run_program,
    validate_program,
)


@dataclass(kw_only=True)
class StepOutcome:
    """One instruction carried out (or not)."""

    instruction: str
    program: str | None
    family: str | None
    status: str  # "ok" | "error" | "plan_error"
    error_class: str | None = None
    message: str = ""
    line: int | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    skills: list[dict[str, Any]] = field(default_factory=list)
    plan_s: float = 0.0
    exec_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


class HierarchicalController:
    """Runs instructions through planner -> sandboxed program -> skills.

    Args:
        api: the robot API bound to the episode.
        planner: writes programs (grammar, LLM, replay).
        limits: sandbox limits for each program.
    """

    def __init__(
        self, api: RobotAPI, planner: Planner, limits: SandboxLimits | None = None
    ) -> None:
        self.api = api
        self.planner = planner
        self.limits = limits or SandboxLimits(wall_time_s=60.0, cpu_time_s=10.0, max_api_calls=500)
        self.control = SandboxControl()
        self.history: list[HistoryItem] = []
        self.corrections: list[str] = []
        self.knowledge: list[str] = []
        self._hook_installed = False

    @property
    def trace(self):  # noqa: ANN201 - EpisodeTrace
        """The episode trace."""
        return self.api.env.trace

    def context(self) -> PlanContext:
        """What the planner is told: visible objects, their perceived positions, history."""
        names = self.api.get_obj_names()
        positions = {n: [float(v) for v in self.api.get_obj_pos(n)] for n in names}
        return PlanContext(
            object_names=names,
            positions=positions,
            history=list(self.history),
            knowledge=list(self.knowledge),
            corrections=list(self.corrections),
        )

    def _arm_hook(self, _arm: object) -> None:
        self.control.checkpoint()  # blocks while paused, raises once interrupted

    def run(self, instruction: str) -> StepOutcome:
        """Plans and executes one instruction; never raises for a bad program or plan."""
        if not self._hook_installed:
            self.api.env.arm.add_tick_hook(self._arm_hook)
            self._hook_installed = True
        t0 = time.perf_counter()
        ctx = self.context()
        try:
            program = self.planner.plan(instruction, ctx)
        except (CorrigibleError, ValueError, KeyError) as exc:
            self.trace.emit(
                "plan", instruction=instruction, planner=self.planner.name, error=str(exc)
            )
            return StepOutcome(
                instruction=instruction,
                program=None,
                family=None,
                status="plan_error",
                error_class="plan",
                message=str(exc),
                plan_s=time.perf_counter() - t0,
            )
        plan_s = time.perf_counter() - t0
        self.trace.emit(
            "plan",
            instruction=instruction,
            planner=self.planner.name,
            family=program.family,
            program=program.source,
            notes=program.notes,
            plan_s=plan_s,
        )
        before = ctx.positions
        n_before = len(self.api.skill_results)
        result = self.execute(program)
        if result.status == "ok":
            try:  # out of the camera's way for the next look
                self.api.skills.go_home()
            except CorrigibleError:
                pass
        n_skills = len(self.api.skill_results)
        outcome = StepOutcome(
            instruction=instruction,
            program=program.source,
            family=program.family,
            status=result.status,
            error_class=result.error_class,
            message=result.message,
            line=result.line,
            checkpoints=list(self.api.checkpoints),
            skills=[
                {"skill": r.skill, "args": r.args, "success": r.success, "message": r.message}
                for r in self.api.skill_results[n_before:n_skills]
            ],
            plan_s=plan_s,
            exec_s=result.duration_s,
        )
        if result.status == "ok":
            self.history.append(record_history(program, instruction, before))
        return outcome

    def execute(self, program: Program) -> SandboxResult:
        """Validates and runs a program in the sandbox, streaming its events into the trace."""
        api = self.api.functions()
        report = validate_program(program.source, list(api))
        self.trace.emit(
            "validate",
            ok=report.ok,
            problems=[p.to_json() if hasattr(p, "to_json") else str(p) for p in report.problems],
        )

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") in (
                "lines",
                "api_call_start",
                "api_call_end",
                "started",
                "end",
                "paused",
                "resumed",
                "interrupted",
            ):
                self.trace.emit(
                    "program." + str(event.get("type")),
                    **{k: v for k, v in event.items() if k != "type"},
                )

        result = run_program(
            program.source, api, self.limits, on_event=on_event, control=self.control
        )
        self.trace.emit("program.result", **result.to_json())
        return result
