"""The session: one robot episode with live corrections and memory, behind one API.

A `Session` is built from a `SessionConfig` (also the schema of launch files) by the packages'
own factories: the engine and scene (`sim_envs`), the planner, perception and robot API
(`policies`), the correction channels, router and loop (`corrections`) and the knowledge base
(`memory`). Everything that runs an episode goes through it: `corrigible run`, `demo` and
`eval`, the tests, and later the console and the bridge.

    from corrigible import Session, SessionConfig

    with Session(SessionConfig(kb="runs/kb")) as session:
        session.subscribe(lambda event: print(event.kind, event.data.get("reply", "")))
        session.correct("no, the gray bowl")  # taken before the next skill
        result = session.run("put the red block in the red bowl", expect="in(red block, gray bowl)")
        session.learn()  # distil this episode's corrections into the knowledge base

Every skill call runs through the robot API's around-skill chain, outermost first:
`RunGate` (stop / pause from any thread) -> `SafetyGate` (e-stop) -> `MemoryLookup` (with a
knowledge base) ->
`CorrectionLoop` (with a correction channel) -> `SkillTracer`. The event stream
(`subscribe`) carries every trace event as a `SessionEvent`: "program.lines" (lines reached),
"skill.start" / "skill.end", "correction.reply", "knowledge.used", "checkpoint", "plan",
"program.result", and the rest of the trace (launch/README.md lists the kinds).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from corrigible.config import Model, config_error
from corrigible.errors import ConfigError
from corrigible.robots.rosbridge_arm import RosbridgeArmConfig

if TYPE_CHECKING:
    from corrigible.corrections.distill import Distilled
    from corrigible.corrections.onthefly import CorrectionLoop, Corrector
    from corrigible.corrections.repair.session_link import RepairLink
    from corrigible.corrections.retrieval import MemoryLookup
    from corrigible.corrections.router import CorrectionRouter
    from corrigible.corrections.typed import TypedCorrector
    from corrigible.memory import KnowledgeBase
    from corrigible.policies.controller import HierarchicalController
    from corrigible.policies.middleware import RunGate
    from corrigible.policies.planners.base import Planner
    from corrigible.policies.robot_api import RobotAPI
    from corrigible.sim_envs.layout import LayoutConfig
    from corrigible.sim_envs.predicates import Predicate
    from corrigible.sim_envs.tabletop_env import TabletopEnv

MemoryMode = Literal["none", "text", "text+visual"]


class SessionConfig(Model):
    """What a session runs; also the schema of a launch file (`corrigible schema launch`)."""

    engine: str = "mujoco"  # physics engine, one of `sim_envs.backends.registry.BACKENDS`
    seed: int = Field(default=0, ge=0)  # layout seed
    planner: str = "grammar"  # grammar | openai:<model> | local:<path> | replay:<file>
    perception: Literal["camera", "privileged"] = "camera"  # where programs see objects
    # m, a miscalibrated camera; each component finite with |x| <= 0.1 (CAMERA_BIAS_LIMIT_M)
    camera_bias: tuple[float, float, float] | None = None
    trace: Path | None = None  # JSONL trace file; None keeps the trace in memory
    episode: str | None = None  # id for corrections and provenance; None: session-<time>
    kb: Path | None = None  # knowledge base directory: recall before skills, learn after
    memory: MemoryMode | None = None  # retrieval mode; default with a kb: text+visual
    corrections: list[str] = Field(default_factory=list)  # typed lines, one per point
    interactive: bool = False  # the typed channel stays open: `correct()` at any time
    # s a failure waits for a typed line (interactive); finite
    correction_timeout_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    max_corrections: int = Field(default=3, ge=0)  # corrections applied per task
    # checkpoint monitoring and automatic repair (corrections/repair/README.md): None, off
    monitor: str | None = None  # perception | oracle | vlm:<model>; repair alone: perception
    repair: bool = False  # repair failed programs without a human (needs a monitor)
    repairer: str = "offline"  # offline | an LLM spec (openai:<model>, local:..., replay:...)
    max_repairs: int = Field(default=3, ge=0)  # repairs per instruction before giving up
    # a real arm behind its rosbridge server (client mode): the skills drive it and the scene,
    # laid out from `seed` alone, becomes its twin; None: the simulated arm
    robot: RosbridgeArmConfig | None = None
    # who runs pick and place: "scripted" or "learned:<checkpoint>" (policies/learned/low_level)
    low_level: str = "scripted"

    @field_validator("low_level")
    @classmethod
    def _low_level_spec(cls, value: str) -> str:
        from corrigible.policies.learned.low_level.skills import parse_low_level

        parse_low_level(value)  # ConfigError naming the forms
        return value.strip()

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from corrigible.sim_envs.backends.registry import BACKENDS

        return BACKENDS.canonical(value)

    @field_validator("camera_bias")
    @classmethod
    def _bounded_bias(
        cls, value: tuple[float, float, float] | None
    ) -> tuple[float, float, float] | None:
        from corrigible.corrections.scenarios.schema import CAMERA_BIAS_LIMIT_M

        if value is not None and not all(abs(x) <= CAMERA_BIAS_LIMIT_M for x in value):
            raise ConfigError(
                f"SessionConfig.camera_bias must be 3 finite offsets of at most "
                f"{CAMERA_BIAS_LIMIT_M} m each (a miscalibration, not a move), got {value}"
            )
        return value

    @model_validator(mode="after")
    def _repair_settings(self) -> SessionConfig:
        if self.repair and self.monitor is None:
            self.monitor = "perception"  # repair judges by checkpoints: the offline monitor
        if self.monitor is not None:
            self.repair_settings()  # an unknown monitor or an empty repairer fails here
        return self

    def repair_settings(self) -> Any:
        """The `RepairSettings` of this session, or None without a monitor."""
        if self.monitor is None:
            return None
        from corrigible.corrections.repair.session_link import RepairSettings

        return RepairSettings(
            monitor=self.monitor,
            repair=self.repair,
            repairer=self.repairer,
            max_iterations=self.max_repairs,
        )

    @field_validator("planner")
    @classmethod
    def _planner_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("planner is empty; use 'grammar' or an LLM spec like openai:<model>")
        return value.strip()

    @classmethod
    def from_file(cls, path: str | Path) -> SessionConfig:
        """A launch file: one session's settings as YAML or JSON (`launch/*.launch.yaml`).

        Raises:
            ConfigError: the file is missing, is not YAML/JSON, or holds an unknown or bad
                setting (the message names it and the fix).
        """
        from corrigible.boundary import load_yaml

        path = Path(path)
        # ConfigError naming the file: unreadable, not UTF-8 (byte offset), not YAML, too deep
        data = load_yaml(path, what="launch file")
        if not isinstance(data, dict):
            raise ConfigError(
                f"the launch file {path} must hold one mapping of settings (`corrigible schema "
                f"launch` lists them), got {type(data).__name__}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(cls, exc.errors(), what=f"launch file {path}") from exc


class SessionEvent(BaseModel):
    """One event of the session's stream: a trace event, typed."""

    kind: str  # e.g. "skill.start", "correction.reply", "knowledge.used", "checkpoint"
    episode: str  # the session's episode id
    wall_s: float  # s since the episode's trace started
    data: dict[str, Any] = Field(default_factory=dict)  # the event's own fields

    @classmethod
    def from_trace(cls, event: dict[str, Any]) -> SessionEvent:
        """The stream's form of one trace event."""
        data = {k: v for k, v in event.items() if k not in ("kind", "episode", "wall_s")}
        return cls(
            kind=event["kind"], episode=str(event["episode"]), wall_s=event["wall_s"], data=data
        )


@dataclass(kw_only=True)
class EpisodeResult:
    """What happened in one `Session.run`, for printing and for results files."""

    instruction: str
    engine: str
    seed: int
    planner: str
    perception: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    executed_ok: bool = False
    expect: str | None = None
    expect_holds: bool | None = None
    expect_details: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    sim_s: float = 0.0
    trace_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


@dataclass
class _RepairedStep:
    """One instruction run by the repair loop, shaped as a step of `EpisodeResult.steps`."""

    instruction: str
    report: Any  # corrections.repair.loop.RepairReport

    @property
    def status(self) -> str:
        """ok, failed, gave_up, monitor_error or unverified (the loop's status)."""
        return str(self.report.status)

    def to_dict(self) -> dict[str, Any]:
        """The report (status, iterations, failures, attempts, program) and the instruction."""
        return {"instruction": self.instruction, **self.report.to_dict()}


class Session:
    """One episode's world, planner, correction channels and memory.

    Args:
        config: what to run.
        layout: the scene (None: drawn from the seed, with every object the first
            instruction and predicate name).
        kb: an open knowledge base to use instead of opening `config.kb` (the caller closes it).
        router: routes correction text (default: the offline grammar + MiniLM router).
        corrector: the correction channel: a scripted corrector (e.g. the demo's simulated
            person) or a `TypedCorrector` built by the caller; None: a typed channel from the
            config.
        planner: a planner object instead of `config.planner`.
        on_reply: where the typed channel's one-line replies go (default: nowhere; they are
            also "correction.reply" events).

    Raises:
        ConfigError, UnknownNameError: a bad option (the message says which and what to use).
    """

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        layout: LayoutConfig | None = None,
        kb: KnowledgeBase | None = None,
        router: CorrectionRouter | None = None,
        corrector: Corrector | None = None,
        planner: Planner | None = None,
        on_reply: Callable[[str], None] | None = None,
    ) -> None:
        from corrigible.policies.planners.registry import make_planner

        self.config = config or SessionConfig()
        self.episode = self.config.episode or f"session-{time.strftime('%Y%m%d-%H%M%S')}"
        self.layout = layout
        self.planner: Planner = planner or make_planner(self.config.planner)
        self._kb = kb
        self._owns_kb = False
        self._router = router
        self._corrector = corrector
        self._on_reply = on_reply
        self._queued: list[tuple[str, str]] = []  # (text, source) given before the run starts
        self._subscribers: list[Callable[[SessionEvent], None]] = []
        self._lock = threading.Lock()
        self.env: TabletopEnv | None = None
        self.api: RobotAPI | None = None
        self.controller: HierarchicalController | None = None
        self.gate: RunGate | None = None
        self.memory: MemoryLookup | None = None
        self.loop: CorrectionLoop | None = None
        self.typed: TypedCorrector | None = None
        self.learned: list[Distilled] = []
        self.rules: Any = None  # the plan-rule guard (corrections.plan_rules), with corrections
        self.robot_arm: Any = None  # the connected RosbridgeArm when `config.robot` is set
        self.repair: RepairLink | None = None  # monitoring and repair, with `config.monitor`
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def kb(self) -> KnowledgeBase | None:
        """The knowledge base (opened on first use from `config.kb`), or None."""
        if self._kb is None and self.config.kb is not None:
            from corrigible.memory import KnowledgeBase

            if self.config.kb.exists() and not self.config.kb.is_dir():
                raise ConfigError(
                    f"the knowledge base {self.config.kb} is a file; give a directory "
                    "(it is created if missing)"
                )
            self._kb = KnowledgeBase.open(self.config.kb)
            self._owns_kb = True
        return self._kb

    @property
    def memory_mode(self) -> MemoryMode:
        """The retrieval mode in effect ("none" without a knowledge base)."""
        if self.config.kb is None and self._kb is None:
            return "none"
        return self.config.memory or "text+visual"

    @property
    def takes_corrections(self) -> bool:
        """Whether the correction loop runs (otherwise the run is exactly the plain one)."""
        cfg = self.config
        return bool(
            self._corrector is not None
            or cfg.corrections
            or cfg.interactive
            or self._queued
            or cfg.kb is not None
            or self._kb is not None
        )

    def reset(self, *, mention: Iterable[str | None] = ()) -> None:
        """Builds the scene, the robot API and its around-skill chain.

        Args:
            mention: texts (instructions, predicates) whose "<colour> <kind>" objects the
                drawn layout must contain; ignored when the session was given a layout.
        """
        from corrigible.policies.controller import HierarchicalController
        from corrigible.policies.language import mentioned_objects
        from corrigible.policies.middleware import RunGate, SafetyGate, SkillTracer
        from corrigible.policies.robot_api import RobotAPI
        from corrigible.sim_envs.layout import LayoutConfig
        from corrigible.sim_envs.tabletop_env import TabletopEnv

        if self.env is not None:
            raise ConfigError("the session is already reset; make a new Session for a new scene")
        if self.config.robot is not None:  # the twin must be the real table: the seed's layout
            layout = self.layout or LayoutConfig()
        else:
            layout = self.layout or LayoutConfig(
                required=mentioned_objects(*(t or "" for t in mention))
            )
        self.env = TabletopEnv(
            self.config.engine, obs_mode="state", layout=layout, trace_path=self.config.trace
        )
        self.env.reset(seed=self.config.seed, options={"episode": self.episode})
        self.env.trace.subscribe(self._publish)
        if self.config.robot is not None:
            from corrigible.robots.rosbridge_arm import RosbridgeArm

            arm = RosbridgeArm(self.config.robot, trace=self.env.trace)
            arm.mirror_into(self.env.backend)  # the scene follows the real arm, tick by tick
            self.robot_arm = arm.connect()  # RobotLinkError when unreachable: nothing was sent
            self.env.arm = arm  # skills, SafetyGate and the controller's hook all use it
        bias = self.config.camera_bias
        self.api = RobotAPI(
            self.env,
            perception=self.config.perception,
            camera_bias=None if bias is None else _vector(bias),
        )
        if self.config.low_level != "scripted":
            from corrigible.policies.learned.low_level import install_low_level

            install_low_level(self.api, self.config.low_level)  # a bad file: CheckpointError
        self.controller = HierarchicalController(self.api, self.planner)
        self.gate = RunGate()
        # stop / pause / a correction act within one control tick of a motion (the gate's hook)
        self.gate.watch(self.env.arm, self.env.trace)
        self.api.use(self.gate)
        self.api.use(SafetyGate(self.env.arm))
        if self.takes_corrections:
            self._build_corrections()
        self.api.use(SkillTracer(self.env.trace))
        settings = self.config.repair_settings()
        if settings is not None:
            from corrigible.corrections.repair.session_link import attach_repair

            self.repair = attach_repair(self, settings)  # its links go just inside the tracer

    def _build_corrections(self) -> None:
        from corrigible.corrections.onthefly import CorrectionLoop
        from corrigible.corrections.retrieval import MemoryLookup, Retriever
        from corrigible.corrections.router import GrammarEmbeddingRouter
        from corrigible.corrections.typed import TypedCorrector

        assert self.api is not None and self.controller is not None
        kb = self.kb
        if kb is not None:
            self.memory = MemoryLookup(self.api, Retriever(kb, self.memory_mode))
            self.api.use(self.memory)
        corrector = self._corrector
        if isinstance(corrector, TypedCorrector):
            self.typed = corrector
        elif corrector is None:
            self.typed = TypedCorrector(
                [*self.config.corrections, *self._queued],  # type: ignore[list-item]
                interactive=self.config.interactive,
                timeout_s=self.config.correction_timeout_s,
                reply=self._on_reply or (lambda _line: None),
            )
            self._queued.clear()
            corrector = self.typed
        self.loop = CorrectionLoop(
            self.api,
            corrector,
            self._router or GrammarEmbeddingRouter(),
            episode=self.episode,
            gate=self.gate,
            control=self.controller.control,
            max_corrections=self.config.max_corrections,
        )
        self._build_plan_rules(kb)
        self.loop.attach()

    def _build_plan_rules(self, kb: KnowledgeBase | None) -> None:
        """Plan rules (said now or remembered) rewrite programs and guard each placement.

        The planner is wrapped so both the grammar and the LLM planner get the rules in force
        (in the context, so in an LLM's prompt) and have their program checked and rewritten;
        the guard applies the same rules to calls the rewriter cannot see (loops), after memory
        lookup and before the live corrections, so the person's word still wins.
        """
        from corrigible.corrections.plan_rules import PlanRuleGuard, RuleBook, RuledPlanner

        assert self.api is not None and self.controller is not None and self.env is not None
        sizes = {o.name: o.size_class for o in self.env.scene.objects}
        book = RuleBook(kb if self.memory_mode != "none" else None, self.loop, sizes)
        trace = self.env.trace
        self.controller.planner = RuledPlanner(
            self.controller.planner,
            book,
            sizes=sizes,
            trace=lambda record: trace.emit("plan.rules", **record),
            done=self._placed,
        )
        self.rules = PlanRuleGuard(self.api, book, sizes)
        self.api.use(self.rules)

    def _placed(self, obj: str, target: Any) -> bool:
        """Whether `obj` already lies in the container `target` (a re-plan skips that step)."""
        from corrigible.sim_envs.predicates import parse_predicate
        from corrigible.sim_envs.vocabulary import kind_names, kind_of_name

        assert self.env is not None
        if not isinstance(target, str) or kind_of_name(target) not in kind_names(container=True):
            return False
        predicate = parse_predicate(f"in({obj}, {target})", self.env.scene)
        holds, _ = predicate.evaluate(self.env.world_state())
        return bool(holds)

    def close(self) -> None:
        """Answers unused typed lines, releases the simulator and the knowledge base (twice: ok)."""
        if self._closed:
            return
        self._closed = True
        if self.typed is not None:
            self.typed.finish()
        if self.repair is not None:
            self.repair.close()
        if self.robot_arm is not None:
            self.robot_arm.close()
        if self.env is not None:
            self.env.close()
        if self._owns_kb and self._kb is not None:
            self._kb.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the event stream --------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[SessionEvent], None]) -> Callable[[], None]:
        """Calls `callback` with every event from now on (in the thread that caused it).

        Returns:
            A function that unsubscribes.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, event: dict[str, Any]) -> None:
        if event["kind"] == "correction.reply" and self.gate is not None:
            self.gate.withdraw(f"correction: {event.get('text', '')}")  # taken: no halt needed
        with self._lock:
            subscribers = list(self._subscribers)
        if subscribers:
            typed = SessionEvent.from_trace(event)
            for callback in subscribers:
                try:
                    callback(typed)
                except Exception as exc:  # a viewer's bug must never stop the robot's run
                    self._drop(callback, exc)

    def _drop(self, callback: Callable[[SessionEvent], None], exc: Exception) -> None:
        """Unsubscribes a callback that raised, and says so in the trace (once)."""
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(callback)
        if self.env is not None:
            self.env.trace.emit(
                "session.subscriber_dropped",
                callback=repr(callback)[:200],
                error=f"{type(exc).__name__}: {exc}"[:500],
            )

    # -- running -----------------------------------------------------------------------------------
    def parse_expect(self, expect: str | None) -> Predicate | None:
        """The success predicate, checked against the scene (ParseError before any motion)."""
        from corrigible.sim_envs.predicates import parse_predicate

        if expect is None:
            return None
        if not expect.strip():
            raise ConfigError(
                "the expected predicate is empty; write e.g. 'in(red block, blue bowl)'"
            )
        if self.env is None:
            self.reset(mention=[expect])
        assert self.env is not None
        return parse_predicate(expect, self.env.scene)

    def run(self, instruction: str | Sequence[str], *, expect: str | None = None) -> EpisodeResult:
        """Plans and runs each instruction, then judges `expect` on the final state.

        Instructions run in order; the first that fails ends the run.

        Raises:
            ParseError, UnknownObjectError: the predicate names something not in the scene.
            ConfigError: the session was stopped or closed.
        """
        from corrigible.errors import SandboxInterrupted

        if self._closed:
            raise ConfigError("the session is closed; make a new Session")
        instructions = [instruction] if isinstance(instruction, str) else list(instruction)
        if self.env is None:
            self.reset(mention=[*instructions, expect])
        predicate = self.parse_expect(expect)
        assert self.env is not None and self.controller is not None and self.gate is not None
        if self.gate.stopped is not None:
            raise ConfigError(f"the session was {self.gate.stopped}; make a new Session")
        t0, sim0 = time.perf_counter(), self.env.backend.time
        outcomes = []
        for n, text in enumerate(instructions):
            if self.repair is not None:
                # monitored and repaired: the last instruction is judged against `expect`
                last = n == len(instructions) - 1
                outcome = _RepairedStep(
                    text, self.repair.run(text, expect=expect if last else None)
                )
                outcomes.append(outcome)
                if outcome.status != "ok":
                    break
                continue
            outcome = self.controller.run(text)
            replans = 0
            while self.loop is not None and self.loop.take_replan() and replans < 2:
                outcome = self._replan(text)  # a plan correction changed the rest of the plan
                replans += 1
            outcomes.append(outcome)
            if outcome.status != "ok":
                break
        if not self.controller.control.is_interrupted:  # a stopped arm does not settle
            with contextlib.suppress(SandboxInterrupted):
                self.env.arm.wait(0.3)
        result = EpisodeResult(
            instruction=" / ".join(instructions),
            engine=self.config.engine,
            seed=self.config.seed,
            planner=self.planner.name,
            perception=self.config.perception,
            steps=[o.to_dict() for o in outcomes],
            executed_ok=all(o.status == "ok" for o in outcomes),
            expect=predicate.text if predicate else None,
            wall_s=time.perf_counter() - t0,
            sim_s=self.env.backend.time - sim0,
            trace_path=str(self.config.trace) if self.config.trace else None,
        )
        if predicate is not None:
            holds, details = predicate.evaluate(self.env.world_state())
            result.expect_holds, result.expect_details = holds, details
        self.env.trace.emit(
            "episode.end", **{k: v for k, v in result.to_dict().items() if k != "steps"}
        )
        return result

    def _replan(self, text: str) -> Any:
        """Plans `text` again with this episode's plan rules, skipping what is already done."""
        from corrigible.corrections.plan_rules import RuledPlanner

        assert self.controller is not None and self.env is not None
        planner = self.controller.planner
        self.env.trace.emit("plan.replan", instruction=text)
        if isinstance(planner, RuledPlanner):
            planner.replanning = True
        try:
            return self.controller.run(text)
        finally:
            if isinstance(planner, RuledPlanner):
                planner.replanning = False

    # -- the person's channel ----------------------------------------------------------------------
    def correct(self, text: str, source: str = "typed") -> None:
        """Gives a correction; it is taken at the next point where it can act.

        Before the run starts, corrections queue and are taken one per point (before the next
        object skill, or when one fails). With `interactive=True` they may come at any time
        from any thread (a console, a bridge); the reply is a "correction.reply" event.

        Raises:
            ConfigError: the session runs with a scripted corrector, or its typed channel has
                closed (not interactive and already running).
        """
        from corrigible.corrections.typed import TypedCorrector

        given = self._corrector
        channel = self.typed or (given if isinstance(given, TypedCorrector) else None)
        if given is not None and channel is None:
            raise ConfigError("this session is corrected by a scripted corrector, not by text")
        if channel is None:
            if self.env is not None:
                raise ConfigError(
                    "this session was built without a correction channel; give "
                    "SessionConfig(interactive=True) (or corrections, or a kb) to correct it"
                )
            self._queued.append((text, source))  # the typed channel is built at reset
            return
        if not channel.interactive:
            raise ConfigError(
                "the typed channel of a non-interactive session closes when the run starts; "
                "give corrections before run(), or use SessionConfig(interactive=True)"
            )
        channel.put(text, source=source)  # type: ignore[arg-type]  # Correction checks it
        if self.gate is not None:  # a moving arm halts at its next tick and the skill is redone
            self.gate.preempt(f"correction: {text}")

    def pause(self) -> None:
        """Holds the robot: mid-motion at the next control step, and before the next skill."""
        assert self._built().gate is not None and self.controller is not None
        self.gate.pause()  # type: ignore[union-attr]
        self.controller.control.pause()

    def resume(self) -> None:
        """Lets a paused robot go on."""
        assert self._built().gate is not None and self.controller is not None
        self.controller.control.resume()
        self.gate.resume()  # type: ignore[union-attr]

    def stop(self, reason: str = "stopped through the session", *, estop: bool = False) -> None:
        """Ends the run now: the arm stops at its next control step, no further skill starts.

        `estop` also engages the arm's e-stop at the halt (released by `arm.reset_stop()`).
        """
        assert self._built().gate is not None and self.controller is not None
        self.gate.stop(reason, estop=estop)  # type: ignore[union-attr]
        self.controller.control.interrupt(reason)

    def undo(self) -> dict[str, Any] | None:
        """Takes back the last applied correction (its parameters and target); None if none.

        A correction routed `undo` ("undo that", "scratch that") does the same from the person's
        channel and replies with what it took back.

        Returns:
            The undone correction's record (as in the results file).
        """
        if self.loop is None:
            return None
        record = self.loop.undo()
        return None if record is None else record.to_dict()

    def _built(self) -> Session:
        if self.env is None:
            raise ConfigError("the session has no scene yet; call reset() or run() first")
        return self

    # -- memory ------------------------------------------------------------------------------------
    def learn(self, *, task_succeeded: bool, llm: Any = None) -> list[Distilled]:
        """Distils this session's applied corrections into the knowledge base.

        Skill parameters are learned only when the task succeeded; nothing is learned without a
        knowledge base or in memory mode "none".

        Args:
            task_succeeded: whether the corrected task met its goal.
            llm: an LLM backend to distil through (checked against the episode's facts, with
                the offline path as fallback); None: the offline distiller.
        """
        from corrigible.corrections.distill import EpisodeFacts, distill
        from corrigible.corrections.llm_distill import distill_with_llm

        kb = self.kb
        if kb is None or self.loop is None or self.memory_mode == "none":
            return []
        assert self.env is not None
        facts = EpisodeFacts(
            episode=self.episode,
            sizes={o.name: o.size_class for o in self.env.scene.objects},
            visuals=self.memory.visuals if self.memory is not None else {},
            task_succeeded=task_succeeded,
            applied=tuple(self.memory.knowledge_used if self.memory is not None else ()),
            limits={
                (r.skill, r.obj): self.api.skills.world_bounds(r.skill, r.obj)
                for r in self.loop.records
                if r.obj is not None and self.api is not None
            },
        )
        if llm is not None:
            written = distill_with_llm(self.loop.records, kb, facts, llm=llm).written
        else:
            written = distill(self.loop.records, kb, facts)
        written = [*written, *self._learn_plan_rules(kb)]
        self.learned.extend(written)
        return written

    def _learn_plan_rules(self, kb: KnowledgeBase) -> list[Distilled]:
        """Writes this episode's plan-level rules (`corrections.plan_rules`)."""
        from corrigible.corrections.distill import Distilled
        from corrigible.corrections.plan_rules import distill_plan_rules

        assert self.loop is not None
        return [
            Distilled(w.entry_id, w.kind, w.text, w.superseded)
            for w in distill_plan_rules(self.loop.records, kb, episode=self.episode)
        ]


def _vector(values: Sequence[float]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.float64)


__all__ = ["EpisodeResult", "Session", "SessionConfig", "SessionEvent"]
