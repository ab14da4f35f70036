"""The learning experiment: rounds of scenario tasks under each memory condition.

For each condition ("none", "text", "text+visual") an EMPTY in-memory knowledge base is
opened; round 1's tasks run with the simulated corrector on hand, their corrections are
distilled at each episode's end, and later rounds run new instances of the tasks with whatever
the condition lets the robot retrieve. The same corrector policy runs in every condition.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrigible.corrections.corrector import SimulatedCorrector
from corrigible.corrections.llm_router import LLMRouter, LLMRouterConfig
from corrigible.corrections.retrieval import MEMORY_MODES
from corrigible.corrections.router import CorrectionRouter, GrammarEmbeddingRouter
from corrigible.corrections.scenarios.schema import Scenario, TaskInstance
from corrigible.memory import KnowledgeBase
from corrigible.policies.llm import LLMBackend, make_llm
from corrigible.session import Session, SessionConfig


@dataclass(kw_only=True)
class TaskRecord:
    """One task instance under one condition."""

    condition: str
    scenario: str
    round: int  # 1-based
    instruction: str
    seed: int
    control: bool
    success: bool
    corrections: int
    correction_texts: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    knowledge_used: list[dict[str, Any]] = field(default_factory=list)
    false_applications: int = 0
    distilled: list[str] = field(default_factory=list)  # entry texts written
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def run_task(
    scenario: Scenario,
    task: TaskInstance,
    *,
    kb: KnowledgeBase,
    mode: str,
    router: CorrectionRouter,
    rng: np.random.Generator,
    engine: str = "mujoco",
    episode: str = "ep-0",
    round_index: int = 1,
    max_corrections: int = 3,
    llm: LLMBackend | None = None,
) -> TaskRecord:
    """Runs one task with the corrector watching; distils into `kb` unless mode is "none".

    With `llm`, distillation takes the LLM prompt path (`distill_with_llm`, checked against the
    episode's facts, offline fallback); otherwise the offline `distill`.
    """
    t0 = time.perf_counter()
    config = SessionConfig(
        engine=engine,
        seed=task.seed,
        camera_bias=tuple(scenario.camera_bias),
        episode=episode,
        memory=mode,  # type: ignore[arg-type]  # one of MEMORY_MODES
        max_corrections=max_corrections,
    )
    with Session(
        config,
        layout=scenario.layout(task),
        kb=kb,
        router=router,
        corrector=SimulatedCorrector(scenario, rng),
    ) as session:
        result = session.run(task.instruction, expect=task.expect)
        success = bool(result.expect_holds)
        written = session.learn(task_succeeded=success, llm=llm)
        assert session.loop is not None and session.memory is not None
        loop, memory = session.loop, session.memory
        return TaskRecord(
            condition=mode,
            scenario=scenario.name,
            round=round_index,
            instruction=task.instruction,
            seed=task.seed,
            control=task.control,
            success=success,
            corrections=len(loop.records),
            correction_texts=[r.correction.text for r in loop.records],
            latencies_s=[r.latency_s for r in loop.records if r.latency_s is not None],
            knowledge_used=memory.knowledge_used,
            false_applications=len(memory.false_applications),
            distilled=[d.text for d in written],
            wall_s=time.perf_counter() - t0,
        )


def summarise(records: list[TaskRecord]) -> list[dict[str, Any]]:
    """Per condition and round: success rate, corrections per task, false applications."""
    rows = []
    keys = sorted(
        {(r.condition, r.round) for r in records}, key=lambda k: (MEMORY_MODES.index(k[0]), k[1])
    )
    for condition, rnd in keys:
        group = [r for r in records if r.condition == condition and r.round == rnd]
        lat = [x for r in group for x in r.latencies_s]
        controls = [r for r in group if r.control]
        rows.append(
            {
                "condition": condition,
                "round": rnd,
                "tasks": len(group),
                "success_rate": sum(r.success for r in group) / len(group),
                "corrections_per_task": sum(r.corrections for r in group) / len(group),
                "control_tasks": len(controls),
                # Control tasks on which any stored knowledge was applied outside its scope.
                "false_application_tasks": sum(r.false_applications > 0 for r in controls),
                "false_application_rate": (
                    None
                    if not controls
                    else sum(r.false_applications > 0 for r in controls) / len(controls)
                ),
                "false_applications": sum(r.false_applications for r in controls),
                "false_applications_all": sum(r.false_applications for r in group),
                "mean_latency_ms": None if not lat else 1000 * float(np.mean(lat)),
            }
        )
    return rows


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's acceptance figures, computed from the summary rows (never asserted here).

    Per memory condition: round-1 corrections per task relative to "none" (<= 0.5 wanted), the
    last round's corrections per task (<= 0.1 wanted, from round 3 on), success at least the
    no-memory condition's in every round, and false applications on control tasks (<= 5%).
    """
    by = {(r["condition"], r["round"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})
    out: dict[str, Any] = {}
    for condition in dict.fromkeys(r["condition"] for r in rows):
        if condition == "none" or ("none", rounds[0]) not in by:
            continue
        first, base = by[(condition, rounds[0])], by[("none", rounds[0])]
        last = by[(condition, rounds[-1])]
        ratio = (
            None
            if base["corrections_per_task"] == 0
            else first["corrections_per_task"] / base["corrections_per_task"]
        )
        controls = sum(by[(condition, n)]["control_tasks"] for n in rounds)
        false_tasks = sum(by[(condition, n)]["false_application_tasks"] for n in rounds)
        success_ok = all(
            by[(condition, n)]["success_rate"] >= by[("none", n)]["success_rate"]
            for n in rounds
            if ("none", n) in by
        )
        false_rate = None if not controls else false_tasks / controls
        out[condition] = {
            "round1_corrections_ratio_to_none": ratio,
            "round1_ratio_ok": ratio is not None and ratio <= 0.5,
            "last_round": rounds[-1],
            "last_round_corrections_per_task": last["corrections_per_task"],
            "last_round_ok": len(rounds) >= 3 and last["corrections_per_task"] <= 0.1,
            "success_at_least_none_every_round": success_ok,
            "false_application_rate": false_rate,
            "false_application_ok": false_rate is not None and false_rate <= 0.05,
        }
    return out


@dataclass(frozen=True, kw_only=True)
class LearningPlan:
    """What the learning experiment runs; the serial and the parallel runner share it."""

    engine: str = "mujoco"  # physics engine
    rounds: int | None = None  # the first `rounds` rounds of each scenario (None: all)
    tasks_per_round: int | None = None  # the first tasks of each round (None: all)
    conditions: tuple[str, ...] = MEMORY_MODES  # memory conditions, in table order
    seed: int = 0  # the corrector's phrasing seed; the same stream in every condition
    llm: str | None = None  # route and distil through this LLM spec (None: offline)


def run_scenario(
    scenario: Scenario,
    condition: str,
    plan: LearningPlan,
    *,
    router: CorrectionRouter,
    on_task: Callable[[TaskRecord], None] | None = None,
    llm: LLMBackend | None = None,
) -> list[TaskRecord]:
    """One scenario's rounds under one condition, from an EMPTY knowledge base.

    Args:
        scenario: the scenario.
        condition: "none", "text" or "text+visual".
        plan: engine, rounds, tasks per round and phrasing seed.
        router: routes the corrector's words.
        on_task: called after each task.
        llm: distil through this LLM (None: the offline path); routing is the router's.
    """
    rng = np.random.default_rng(plan.seed)  # same phrasing stream in every condition
    records: list[TaskRecord] = []
    with KnowledgeBase.open(None) as kb:
        for r_index, tasks in enumerate(scenario.rounds[: plan.rounds], start=1):
            for i, task in enumerate(tasks[: plan.tasks_per_round], start=1):
                rec = run_task(
                    scenario,
                    task,
                    kb=kb,
                    mode=condition,
                    router=router,
                    rng=rng,
                    engine=plan.engine,
                    episode=f"{condition}-{scenario.name}-r{r_index}-{i}",
                    round_index=r_index,
                    llm=llm,
                )
                records.append(rec)
                if on_task is not None:
                    on_task(rec)
    return records


def make_demo_router(llm: LLMBackend | None) -> CorrectionRouter:
    """The offline router (MiniLM loaded now), or the LLM router over `llm` with its fallback."""
    if llm is None:
        router = GrammarEmbeddingRouter()
        router.warm_up()  # model load is start-up, not correction latency
        return router
    return LLMRouter(LLMRouterConfig(llm=llm.name), llm=llm)


def run_learning(
    scenarios: list[Scenario],
    plan: LearningPlan | None = None,
    *,
    on_task: Callable[[TaskRecord], None] | None = None,
) -> list[TaskRecord]:
    """Runs every scenario's rounds under each condition, each from an empty knowledge base.

    Each (condition, scenario) pair gets its own empty knowledge base: a scenario is a
    different user and world, and one user's "red things go in the blue bowl" must not decide
    another scenario's expected outcome. `run_parallel` runs the same pairs in processes.
    """
    plan = plan or LearningPlan()
    backend = None if plan.llm is None else make_llm(plan.llm)
    try:
        router = make_demo_router(backend)
        records: list[TaskRecord] = []
        for condition in plan.conditions:
            for scenario in scenarios:
                records += run_scenario(
                    scenario, condition, plan, router=router, on_task=on_task, llm=backend
                )
        return records
    finally:
        if backend is not None:
            backend.close()


# -- the same pairs in worker processes ---------------------------------------------------------
_WORKER: dict[str, Any] = {}  # per worker process: the router and the progress queue


def _init_worker(queue: Any) -> None:
    import os

    # Workers share the parent's terminal: keep model-loading bars off the progress display.
    for key, value in (("TQDM_DISABLE", "1"), ("TRANSFORMERS_VERBOSITY", "error")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    _WORKER["queue"] = queue


def _run_pair(scenario: Scenario, condition: str, plan: LearningPlan) -> list[dict[str, Any]]:
    if "router" not in _WORKER:  # once per process: MiniLM, or the LLM backend
        _WORKER["llm"] = None if plan.llm is None else make_llm(plan.llm)  # closed at exit
        _WORKER["router"] = make_demo_router(_WORKER["llm"])
    queue = _WORKER.get("queue")

    def report(rec: TaskRecord) -> None:
        if queue is not None:
            queue.put(rec.to_dict())

    recs = run_scenario(
        scenario, condition, plan, router=_WORKER["router"], on_task=report, llm=_WORKER["llm"]
    )
    return [r.to_dict() for r in recs]


def run_parallel(
    scenarios: list[Scenario],
    plan: LearningPlan,
    *,
    workers: int,
    on_task: Callable[[TaskRecord], None] | None = None,
) -> list[TaskRecord]:
    """`run_learning` with the (condition, scenario) pairs spread over `workers` processes.

    Every pair is independent (its own empty knowledge base and phrasing stream), so the
    records equal the serial run's; they come back in the serial order. Processes are spawned
    (not forked) so no GL context or MiniLM thread pool is inherited; each loads MiniLM once.
    """
    if workers <= 1:
        return run_learning(scenarios, plan, on_task=on_task)
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    progress = ctx.Manager().Queue() if on_task is not None else None
    pairs = [(c, s) for c in plan.conditions for s in scenarios]
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(progress,)
    ) as pool:
        futures = [pool.submit(_run_pair, s, c, plan) for c, s in pairs]
        while not all(f.done() for f in futures) or (progress is not None and not progress.empty()):
            if progress is None:
                time.sleep(0.2)
                continue
            try:
                rec = progress.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            on_task(TaskRecord(**rec))  # type: ignore[misc]
        results = [f.result() for f in futures]  # re-raises a worker's error
    return [TaskRecord(**d) for chunk in results for d in chunk]
