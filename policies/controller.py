"""The hierarchical controller: planner programs on top, language-conditioned skills below.

`HierarchicalController.run(instruction)` perceives, asks the planner for a program, validates
it, runs it in the sandbox (where each API call drives the skills in this process) and records
everything in the episode trace. A `SandboxControl` pauses, resumes or interrupts the loop
between skills (the program waits for its next API call) and inside them (the arm checks it
every control step), which is where corrections hook in.

Checkpoints carry evidence. At every `checkpoint(name, expect)` the controller renders the
camera (RGB and metric depth at perception resolution), writes both as PNG files into the run
folder (next to the trace file; a temporary folder for an in-memory trace), saves a privileged
state snapshot beside them (referenced from the trace, read only by the `oracle` monitor), and
traces the program line. With a `monitor` (any `CheckpointMonitor`, e.g. the monitors of
`corrections.repair`) the expectation is judged on that evidence: the program sees the verdict,
a failed checkpoint raises `CheckpointFailedError` inside the program (so it stops at the
failing subgoal), and a monitor that errs (malformed answer, hang, unreachable) stops the run
safely through `SandboxControl` with a classified `checkpoint.monitor_error` event.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from corrigible.errors import CheckpointFailedError, CorrigibleError, MonitorError, SkillError  # noqa: F401 - re-exported here
from corrigible.policies.perception import PerceptionConfig
from corrigible.policies.planners.base import HistoryItem, PlanContext, Planner, Program
from corrigible.policies.planners.checks import checkpoint_warnings
from corrigible.policies.planners.grammar import record_history
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.sandbox import (
    SandboxControl,
    SandboxLimits,
    SandboxResult,
    run_program,
    validate_program,
)

_DEPTH_SCALE = 1000.0  # depth PNGs hold uint16 millimetres (0: no depth); 65.535 m at most


@dataclass(frozen=True, kw_only=True)
class CheckpointEvidence:
    """What a monitor may look at for one checkpoint.

    A camera-based monitor uses `rgb`, `depth`, the camera model and the scene's declared
    objects (names and sizes, known before the episode); `state_path` is the privileged
    snapshot, for the `oracle` monitor only.
    """

    index: int  # 0-based capture number in this controller's life (its files' stem)
    name: str  # the program's name for the subgoal
    expect: str | None  # the predicate to judge, e.g. "in(red block, blue bowl)"
    line: int | None  # 1-based program line of the checkpoint call
    line_text: str  # that line's source
    rgb: np.ndarray  # (H, W, 3) uint8, as written to `rgb_path`
    depth: np.ndarray  # (H, W) float m along the optical axis, as written to `depth_path`
    intrinsics: np.ndarray  # 3x3 pinhole matrix of the perception render
    cam_pose: np.ndarray  # 4x4 camera-to-world transform
    scene: Any  # SceneSpec: the declared objects and their geometry
    rgb_path: Path  # PNG, 8-bit RGB
    depth_path: Path  # PNG, 16-bit millimetres
    state_path: Path  # JSON privileged snapshot (object positions, drawer opening)
    sim_time_s: float  # simulated time of the capture, s


@dataclass(frozen=True, kw_only=True)
class CheckpointVerdict:
    """A monitor's judgement of one checkpoint."""

    holds: bool | None  # None: the monitor cannot tell (treated as not failed)
    reason: str  # one line: why
    monitor: str  # the monitor's name ("perception", "oracle", "vlm:<model>")
    atoms: list[dict[str, Any]] = field(default_factory=list)  # per atom: atom, kind, holds, why

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "holds": self.holds,
            "reason": self.reason,
            "monitor": self.monitor,
            "atoms": list(self.atoms),
        }


@runtime_checkable
class CheckpointMonitor(Protocol):
    """Judges checkpoint evidence (implementations: `corrections.repair.monitors`)."""

    name: str

    def judge(self, evidence: CheckpointEvidence) -> CheckpointVerdict:
        """The verdict on `evidence.expect`.

        Raises:
            MonitorError: the monitor could not judge (the run stops safely).
        """


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
    said: list[str] = field(default_factory=list)  # the program's say() lines (answers)
    plan_s: float = 0.0
    exec_s: float = 0.0
    planner: str | None = None  # who wrote the program ("grammar", "llm:...")
    llm_calls: int = 0  # LLM requests the plan took (program + fgen)
    # why planning failed, by error type: a refusal (ParseError, UnknownObjectError), a
    # program the sandbox refused or output that was no program (LLMOutputError), an
    # unreachable server (LLMConnectionError); None when a program was written
    plan_error_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


class HierarchicalController:
    """Runs instructions through planner -> sandboxed program -> skills.

    Args:
        api: the robot API bound to the episode.
        planner: writes programs (grammar, LLM, replay).
        limits: sandbox limits for each program.
        monitor: judges each checkpoint's expectation on its evidence; None: the checkpoint is
            recorded with its evidence and judged on the simulator's state, as before.
        evidence_dir: where checkpoint PNGs and snapshots go; None: `checkpoints/` next to the
            trace file, or a temporary folder for an in-memory trace (made on first use).
    """

    def __init__(
        self,
        api: RobotAPI,
        planner: Planner,
        limits: SandboxLimits | None = None,
        *,
        monitor: CheckpointMonitor | None = None,
        evidence_dir: Path | None = None,
    ) -> None:
        self.api = api
        self.planner = planner
        # The wall budget counts robot motion too: a careful pick of a slippery object that a
        # person slowed to a few cm/s, in PyBullet on a loaded 2-core machine, takes over a
        # minute of wall time, and a 60 s budget failed such tasks that were going well. The
        # program's own work stays bounded by the 10 s of CPU, the line count and the
        # 500 API calls; each skill's motion is bounded by the arm's own limits.
        self.limits = limits or SandboxLimits(wall_time_s=300.0, cpu_time_s=10.0, max_api_calls=500)
        self.control = SandboxControl()
        self.history: list[HistoryItem] = []
        self.corrections: list[str] = []
        self.knowledge: list[str] = []
        self.monitor = monitor
        self.verdicts: list[dict[str, Any]] = []  # every checkpoint judged, with its evidence
        self.monitor_failure: dict[str, Any] | None = None  # set when a monitor erred
        self._evidence_dir = evidence_dir
        self._source_lines: list[str] = []
        self._call_line: int | None = None
        self._captures = 0
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
        ctx = self.context()  # perception: not counted in the planner's latency
        t0 = time.perf_counter()
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
                planner=self.planner.name,
                plan_error_type=type(exc).__name__,
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
        n_before, n_said = len(self.api.skill_results), len(self.api.said)
        result = self.execute(program)
        if result.status == "ok" and not self._ends_posed(n_before):
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
            said=list(self.api.said[n_said:]),
            skills=[
                {"skill": r.skill, "args": r.args, "success": r.success, "message": r.message}
                for r in self.api.skill_results[n_before:n_skills]
            ],
            plan_s=plan_s,
            exec_s=result.duration_s,
            planner=program.planner,
            llm_calls=program.llm_calls,
        )
        if result.status == "ok":
            self.history.append(record_history(program, instruction, before))
        return outcome

    def execute(self, program: Program) -> SandboxResult:
        """Validates and runs a program in the sandbox, streaming its events into the trace.

        The validation event carries warnings too: a program without a checkpoint cannot be
        monitored, so a failure in it is found only at the end.
        """
        api = self.api.functions()
        # The API's own record (privileged, for evaluation) inside, the trace's "api" event
        # outside, so a failed checkpoint is traced as the API error it is.
        api["checkpoint"] = self.api._traced(
            "checkpoint", self._checkpoint_function(self.api.checkpoint)
        )
        self._source_lines = program.source.splitlines()
        self._call_line = None
        report = validate_program(program.source, list(api))
        self.trace.emit(
            "validate",
            ok=report.ok,
            problems=[p.to_json() if hasattr(p, "to_json") else str(p) for p in report.problems],
            warnings=checkpoint_warnings(program.source),
        )

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") == "api_call_start":
                line = event.get("line")
                self._call_line = line if isinstance(line, int) else None
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

    # -- checkpoints with evidence ------------------------------------------------------------
    @property
    def evidence_dir(self) -> Path:
        """The run folder's `checkpoints/` (made on first use)."""
        if self._evidence_dir is None:
            path = self.trace.path
            if path is not None:
                self._evidence_dir = Path(path).parent / "checkpoints"
            else:  # an in-memory trace: a fresh temporary run folder, never a fixed path
                self._evidence_dir = Path(tempfile.mkdtemp(prefix="corrigible-run-")) / (
                    "checkpoints"
                )
        self._evidence_dir.mkdir(parents=True, exist_ok=True)
        return self._evidence_dir

    def _checkpoint_function(self, recorded: Any) -> Any:
        """The program's `checkpoint`: records, captures evidence, asks the monitor."""

        def checkpoint(name: str, expect: str | None = None) -> bool:
            held = recorded(name, expect)  # the API's record (privileged, for evaluation)
            evidence = self.capture(str(name), None if expect is None else str(expect))
            if self.monitor is None or evidence.expect is None:
                self.verdicts.append({"name": evidence.name, "expect": evidence.expect})
                return bool(held)
            try:
                verdict = self.monitor.judge(evidence)
            except Exception as exc:  # any monitor failure is a classified safe stop
                self._monitor_failed(evidence, exc)
                raise
            self.verdicts.append(
                {
                    "name": evidence.name,
                    "expect": evidence.expect,
                    "line": evidence.line,
                    "line_text": evidence.line_text,
                    "rgb": str(evidence.rgb_path),
                    "oracle_holds": held,
                    **verdict.to_dict(),
                }
            )
            self.trace.emit(
                "checkpoint.verdict",
                name=evidence.name,
                expect=evidence.expect,
                line=evidence.line,
                sim_time_s=evidence.sim_time_s,
                **verdict.to_dict(),
            )
            if verdict.holds is False:
                raise CheckpointFailedError(
                    f"checkpoint {evidence.name!r} failed: {evidence.expect} does not hold "
                    f"({verdict.monitor}: {verdict.reason})"
                )
            return True

        checkpoint.__name__ = "checkpoint"
        return checkpoint

    def _monitor_failed(self, evidence: CheckpointEvidence, exc: Exception) -> None:
        kind = exc.kind if isinstance(exc, MonitorError) else "crash"
        message = f"{type(exc).__name__}: {exc}"[:500]
        self.monitor_failure = {
            "kind": kind,
            "message": message,
            "monitor": getattr(self.monitor, "name", type(self.monitor).__name__),
            "checkpoint": evidence.name,
            "line": evidence.line,
        }
        self.control.interrupt(f"monitor {kind}: {message}")  # first: the robot stops
        fields = {k: v for k, v in self.monitor_failure.items() if k != "kind"}
        self.trace.emit("checkpoint.monitor_error", error_kind=kind, **fields)

    def _ends_posed(self, n_before: int) -> bool:
        """Whether the program's last skill left the arm where it is on purpose (pointing)."""
        from corrigible.policies.skills.specs import SKILLS

        results = self.api.skill_results[n_before:]
        if not results or results[-1].skill not in SKILLS:
            return False
        return SKILLS.get(results[-1].skill).keeps_pose

    def capture(self, name: str, expect: str | None) -> CheckpointEvidence:
        """Renders the camera and saves RGB, depth and a state snapshot for one checkpoint.

        With a monitor the arm first goes home, out of the camera's view of the table, as the
        controller does after every program; the images then show the objects unoccluded.
        """
        env = self.api.env
        if self.monitor is not None and expect is not None and "pointing_at" not in expect:
            try:  # (a pointing checkpoint judges the arm where it is)
                self.api.skills.go_home()
            except CorrigibleError:
                pass  # a look from wherever the arm is is still evidence
        cfg = PerceptionConfig()
        camera = replace(env.camera, width=cfg.width, height=cfg.height)
        rgb, depth = env.backend.render(camera)
        depth_mm = np.clip(np.nan_to_num(depth, nan=0.0, posinf=0.0) * _DEPTH_SCALE, 0, 65535)
        depth_mm = np.round(depth_mm).astype(np.uint16)
        index = self._captures  # looks taken outside programs (repair) count too
        self._captures += 1
        folder = self.evidence_dir
        stem = f"cp{index:03d}"
        rgb_path, depth_path = folder / f"{stem}_rgb.png", folder / f"{stem}_depth.png"
        state_path = folder / f"{stem}_state.json"
        import cv2  # perception's dependency; imported here so the module loads without it

        rgb8 = np.ascontiguousarray(rgb[..., :3].astype(np.uint8))
        if not cv2.imwrite(str(rgb_path), cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR)):
            raise CorrigibleError(f"could not write checkpoint image {rgb_path}; check the disk")
        if not cv2.imwrite(str(depth_path), depth_mm):
            raise CorrigibleError(f"could not write checkpoint depth {depth_path}; check the disk")
        info = env._info()
        state_path.write_text(
            json.dumps(
                {
                    "objects": {
                        n: [round(float(v), 6) for v in o["pos"]]
                        for n, o in info["objects"].items()
                    },
                    "articulations": {
                        k: float(v) for k, v in info.get("articulations", {}).items()
                    },
                    "sim_time_s": float(env.backend.time),
                }
            )
        )
        line = self._call_line
        line_text = (
            self._source_lines[line - 1].strip()
            if line is not None and 0 < line <= len(self._source_lines)
            else ""
        )
        evidence = CheckpointEvidence(
            index=index,
            name=name[:200],
            expect=expect,
            line=line,
            line_text=line_text,
            rgb=rgb8,
            depth=depth_mm.astype(np.float64) / _DEPTH_SCALE,
            intrinsics=camera.intrinsics(),
            cam_pose=camera.pose(),
            scene=env.scene,
            rgb_path=rgb_path,
            depth_path=depth_path,
            state_path=state_path,
            sim_time_s=float(env.backend.time),
        )
        self.trace.emit(
            "checkpoint.evidence",
            name=evidence.name,
            expect=expect,
            line=line,
            line_text=line_text,
            rgb=str(rgb_path),
            depth=str(depth_path),
            state=str(state_path),
            sim_time_s=evidence.sim_time_s,
        )
        return evidence
