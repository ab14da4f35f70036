"""`corrigible demo`: corrections applied on the fly, remembered, and reused on new instances.

Example:
    corrigible demo --out runs/demo.json

By default a short tour of three built-in scenarios (launch/evaluations/corrections_demo.py
`TOUR`: three rounds; round 1 three tasks to correct and a control, rounds 2 and 3 one task and a
control; 72 task runs in all); `--full` runs every task of every built-in scenario in
corrections/scenarios/builtin (the paper-scale rounds); `--scenarios DIR` runs every task of
any folder of scenario YAML. Each runs round by round under three memory conditions, each from
an empty knowledge base: "none" (the planner plus on-the-fly corrections), "text" (text-only
retrieval of distilled knowledge) and "text+visual" (text plus the object's appearance). The
simulated corrector
(corrections/corrector.py) watches every task. Prints one table row per round and condition:
success rate, corrections per task (all; on recalled objects; on transfer objects, never
corrected but sharing a corrected property), false applications (control tasks where applied
knowledge changed what the robot did though the no-memory run needed no change, or that failed
after knowledge was applied: launch/evaluations/demo_measures.py) and correction latency; then the
issue's acceptance lines; writes the results JSON (schema in launch/README.md#demo) and a PNG
plot next to it.

`corrigible demo --suite pickplace [--episodes N] [--sim mujoco --sim pybullet]` runs the older
pick-and-place suite on both engines instead.

Workers: the (condition, scenario) pairs are independent (each its own empty knowledge base and
phrasing stream) and run on Ray (`launch/distributed.py`): `--ray` starts a local instance,
`--ray HOST:PORT` joins a cluster; `--workers N` (> 1) without `--ray` also uses a local
instance of N workers when Ray is installed, and runs serially when it is not. Records are the
same on every path; each task's record streams to `<out>.partial.jsonl` as it ends.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import Field, model_validator

from corrigible.boundary import check_output_path, escape
from corrigible.errors import ConfigError, CorrigibleError
from corrigible.launch.distributed import (
    LOCAL,
    RAY_HELP,
    Job,
    RunnerConfig,
    RunReport,
    Worker,
    available,
    raise_if_lost,
    ray_command_class,
    run_jobs,
)
from corrigible.launch.progress import plain, progress_bar
from corrigible.launch.schema import VerbConfig
from corrigible.sim_envs.backends.registry import BACKENDS

if TYPE_CHECKING:
    from corrigible.corrections.scenarios.schema import Scenario
    from corrigible.launch.evaluations.corrections_demo import LearningPlan
    from corrigible.launch.evaluations.demo_measures import TaskRecord

_ENGINES = tuple(BACKENDS.names())
_SUITES = ("corrections", "pickplace")
_CONDITIONS = ("none", "text", "text+visual")
_QUICK_TASKS = 2  # --quick on a folder: the first two tasks of each of the first two rounds
_MAX_WORKERS = 64  # worker processes (Ray actors); each loads MiniLM and a physics engine
_MAX_EPISODES = 10_000  # pickplace suite: layouts per engine


def _default_workers() -> int:
    return max(1, min(3, os.cpu_count() or 1))


class DemoConfig(VerbConfig):
    """What the demo runs (`corrigible schema demo`)."""

    suite: str = "corrections"  # corrections | pickplace (the older suite)
    scenarios: Path | None = None  # directory (or file) of scenario YAML; None = built-in
    sim: str = "mujoco"  # physics engine for the corrections suite: mujoco | pybullet
    rounds: int | None = None  # rounds per scenario; None = every round in the files
    full: bool = False  # every task of every built-in scenario (default: the tour)
    quick: bool = False  # built-in: the tour (the default); a folder: 2 rounds x 2 tasks
    conditions: tuple[str, ...] = _CONDITIONS  # memory conditions, in table order
    # worker processes (Ray actors) for the (condition, scenario) pairs; None (with --ray): one
    # per CPU of the cluster; > 1 without --ray: a local Ray instance if Ray is installed
    workers: int | None = Field(default_factory=_default_workers)
    ray: str | None = None  # None: see `workers`; "local": a local Ray instance; HOST:PORT
    seed: int = 0  # corrector phrasing seed (the same stream in every condition)
    llm: str | None = None  # route and distil through this LLM spec; None: offline (default)
    out: Path | None = Path("runs/demo.json")  # results JSON; the plot goes next to it (.png)
    episodes: int = 10  # pickplace suite: seeded layouts per engine
    engines: list[str] = Field(default_factory=lambda: list(_ENGINES))  # pickplace suite

    @model_validator(mode="after")
    def _usable(self) -> DemoConfig:
        if self.suite not in _SUITES:
            raise ConfigError(f"DemoConfig.suite must be one of {_SUITES}, got {self.suite!r}")
        for engine in [self.sim, *self.engines]:
            if engine not in _ENGINES:
                raise ConfigError(f"--sim must be one of {_ENGINES}, got {engine!r}")
        if self.full and self.quick:
            raise ConfigError("--full and --quick contradict each other; give one of them")
        if self.rounds is not None and self.rounds < 1:
            raise ConfigError(f"DemoConfig.rounds must be >= 1, got {self.rounds}")
        if self.workers is None and self.ray is None:
            raise ConfigError("--workers may be left to the cluster only with --ray")
        if self.workers is not None and not 1 <= self.workers <= _MAX_WORKERS:
            raise ConfigError(
                f"--workers must be between 1 and {_MAX_WORKERS} processes, got {self.workers}"
            )
        self.runner()  # checks the address
        if not 1 <= self.episodes <= _MAX_EPISODES:
            raise ConfigError(
                f"--episodes must be between 1 and {_MAX_EPISODES} layouts, got {self.episodes}"
            )
        if self.seed < 0:
            raise ConfigError(f"DemoConfig.seed must be >= 0, got {self.seed}")
        if self.out is not None:
            check_output_path(self.out, option="--out")
        if self.llm is not None and not self.llm.strip():
            raise ConfigError("--llm is empty; give a spec such as openai:<model> or leave it out")
        bad = [c for c in self.conditions if c not in _CONDITIONS]
        if bad or not self.conditions:
            raise ConfigError(f"DemoConfig.conditions must be among {_CONDITIONS}, got {bad}")
        return self

    def runner(self) -> RunnerConfig:
        """Where the pairs run: Ray when asked, or for > 1 worker when Ray is installed."""
        if self.ray is not None:
            return RunnerConfig(ray=self.ray, workers=self.workers)
        if self.workers is not None and self.workers > 1 and available():
            return RunnerConfig(ray=LOCAL, workers=self.workers)
        return RunnerConfig()


class DemoWorker(Worker):
    """A worker process of the learning experiment: MiniLM (or the LLM backend) loaded once."""

    def __init__(self, *, llm: str | None) -> None:
        from corrigible.launch.evaluations.corrections_demo import make_demo_router
        from corrigible.policies.llm import make_llm

        self.backend = None if llm is None else make_llm(llm)
        self.router = make_demo_router(self.backend)

    def run(self, job: tuple[Scenario, str, LearningPlan]) -> Iterator[TaskRecord]:
        """One (scenario, condition) pair from an empty knowledge base: a record per task."""
        from corrigible.launch.evaluations.corrections_demo import iter_scenario

        scenario, condition, plan = job
        yield from iter_scenario(scenario, condition, plan, router=self.router, llm=self.backend)

    def close(self) -> None:
        """Closes the LLM backend, if any."""
        if self.backend is not None:
            self.backend.close()


def run_pairs(
    scenarios: list[Scenario],
    plan: LearningPlan,
    *,
    runner: RunnerConfig,
    on_task: Callable[[TaskRecord], None] | None = None,
    partial: Path | None = None,
) -> tuple[list[TaskRecord], RunReport]:
    """Every (condition, scenario) pair of `plan`, serially or on Ray; records in serial order.

    The records equal `corrections_demo.run_learning`'s (same router per process, same seeds);
    each also goes, as one JSON line, to `partial` when it ends.

    Raises:
        BackendError: a pair failed on every retry (the finished records are in `partial`).
    """
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")

    def arrived(_job: Job, rec: TaskRecord) -> None:
        if partial is not None:
            with partial.open("a") as fh:
                fh.write(json.dumps(rec.to_dict(), default=str) + "\n")
        if on_task is not None:
            on_task(rec)

    jobs = [
        Job(f"{condition}/{scenario.name}", (scenario, condition, plan))
        for condition in plan.conditions
        for scenario in scenarios
    ]
    report = run_jobs(
        f"{__name__}:DemoWorker",
        jobs,
        runner=runner,
        worker_kwargs={"llm": plan.llm},
        on_item=arrived,
    )
    raise_if_lost(report, what="(condition, scenario) pairs")
    return report.flat(), report


# -- the corrections suite ------------------------------------------------------------------------
def _plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = (
        ("success_rate", "success rate", "Success"),
        ("corrections_per_task", "corrections per task", "Corrections needed"),
        ("false_application_tasks", "control tasks", "False applications (control tasks)"),
    )
    styles = {"none": ("o", "-"), "text": ("s", "--"), "text+visual": ("^", ":")}  # overlaps
    for condition in dict.fromkeys(r["condition"] for r in rows):
        rs = [r for r in rows if r["condition"] == condition]
        x = [r["round"] for r in rs]
        marker, line = styles.get(condition, ("o", "-"))
        for ax, (key, _, _) in zip(axes, panels, strict=True):
            ax.plot(x, [r[key] for r in rs], marker=marker, ls=line, label=condition)
    axes[0].set_ylim(0, 1.05)
    for ax, (_, ylabel, name) in zip(axes, panels, strict=True):
        ax.set(xlabel="round", ylabel=ylabel, title=name)
        ax.set_xticks(sorted({r["round"] for r in rows}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich import box
    from rich.table import Table

    def rate(value: float | None, n: int) -> str:
        return "-" if value is None else f"{value:.2f} ({n})"

    # Fits 80 columns: a plain box, short headers (the legend under the table spells them out).
    table = Table(
        title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False, show_edge=False
    )
    columns = ("rnd", "condition", "tasks", "success", "corr", "recall", "transfer")
    for col in (*columns, "false/ctrl", "lat ms"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in sorted(rows, key=lambda r: (r["round"], _CONDITIONS.index(r["condition"]))):
        lat = "-" if r["mean_latency_ms"] is None else f"{r['mean_latency_ms']:.0f}"
        table.add_row(
            str(r["round"]),
            r["condition"],
            str(r["tasks"]),
            f"{r['success_rate']:.2f}",
            f"{r['corrections_per_task']:.2f}",
            rate(r["recall_corrections_per_task"], r["recall_tasks"]),
            rate(r["transfer_corrections_per_task"], r["transfer_tasks"]),
            f"{r['false_application_tasks']}/{r['control_tasks']}",
            lat,
        )
    return table


def _plan(cfg: DemoConfig, scenarios: list[Scenario]) -> tuple[list[Scenario], LearningPlan, str]:
    """The scenarios to run, the `LearningPlan` and its name ("tour", "full", "quick")."""
    from corrigible.launch.evaluations.corrections_demo import LearningPlan, tour

    plan = dict(engine=cfg.sim, conditions=tuple(cfg.conditions), seed=cfg.seed, llm=cfg.llm)
    if cfg.scenarios is None and not cfg.full:  # the built-in scenarios: the tour
        scenarios, selection = tour(scenarios)
        return scenarios, LearningPlan(rounds=cfg.rounds, selection=selection, **plan), "tour"
    if cfg.quick:  # a folder of the user's: the first two tasks of the first two rounds
        rounds = cfg.rounds if cfg.rounds is not None else 2
        learning = LearningPlan(rounds=rounds, tasks_per_round=_QUICK_TASKS, **plan)
        return scenarios, learning, "quick"
    return scenarios, LearningPlan(rounds=cfg.rounds, **plan), "full"


def run_corrections(cfg: DemoConfig) -> dict[str, Any]:
    """The corrections evaluation; returns (and writes) the results."""
    from rich.console import Console

    from corrigible.corrections.scenarios import load_scenarios

    # Every file is read and checked (each task's layout and predicate) before the experiment's
    # heavy imports: a bad file is answered in a second.
    scenarios = load_scenarios(cfg.scenarios)
    from corrigible.launch.evaluations.demo_measures import (
        acceptance,
        acceptance_lines,
        summarise,
    )

    console = Console()
    from corrigible.corrections.scenarios.feasibility import scenario_warnings

    for scenario in scenarios:  # hidden properties no correction can overcome: said up front
        for line in scenario_warnings(scenario):
            console.print(f"[yellow]warning:[/yellow] {plain(line)}", highlight=False)
    if cfg.quick and cfg.scenarios is None:
        console.print("--quick: the default demo is now the short tour; running it (--full: all)")
    scenarios, plan, kind = _plan(cfg, scenarios)
    total = len(cfg.conditions) * sum(len(tasks) for s in scenarios for tasks in plan.tasks(s))
    runner = cfg.runner().check()  # Ray installed, the head node answers: before any work
    if not runner.uses_ray and (cfg.workers or 1) > 1:
        console.print("Ray is not installed: running serially (pip install 'corrigible[ray]')")
    where = "1 worker process"
    if runner.uses_ray:
        count = f"{cfg.workers} Ray worker(s)" if cfg.workers else "Ray workers (one per CPU)"
        where = f"{count} on {'a local instance' if runner.ray == LOCAL else plain(runner.ray)}"
    console.print(
        f"corrigible demo ({kind}): {len(scenarios)} scenarios, {total} task runs "
        f"({', '.join(cfg.conditions)}), {cfg.sim}, {where}, "
        f"{'offline router and distillation' if cfg.llm is None else 'LLM ' + plain(cfg.llm)}"
    )
    t0 = time.perf_counter()
    with progress_bar(console, label="[bold]{task.description:<48}", eta=True) as progress:
        bar = progress.add_task("starting workers", total=total)

        def on_task(rec: TaskRecord) -> None:
            mark = "ok" if rec.success else "FAIL"
            progress.update(
                bar,
                advance=1,
                description=f"{rec.condition} {rec.scenario} r{rec.round} {mark}"[:48],
            )

        partial = cfg.out.with_suffix(".partial.jsonl") if cfg.out is not None else None
        records, report = run_pairs(
            scenarios, plan, runner=runner, on_task=on_task, partial=partial
        )
    for attempt in report.retries:
        why = "worker lost" if attempt.worker_lost else "error"
        console.print(
            plain(f"retried {attempt.key} (attempt {attempt.attempt}, {why}: {attempt.error})")
        )
    wall = time.perf_counter() - t0
    rows = summarise(records)
    title = f"corrigible demo ({cfg.sim}, {kind}): corrections, memory and reuse"
    console.print(_table(rows, title))
    console.print(
        "rnd: round; success: task predicate holds at the end; corr: corrections per task the "
        "person had to give; recall / transfer: corr (tasks) on objects corrected before / on "
        "objects never corrected that share a corrected property; false/ctrl: control tasks where "
        "applied knowledge changed what the robot did though no change was wanted, or that "
        "failed after it / control tasks; lat ms: correction -> first motion of the redo.  "
        f"wall {wall:.0f} s"
    )
    checks = acceptance(rows)
    for line in acceptance_lines(checks):
        console.print(escape(line))
    result = {
        "version": 4,
        "suite": "corrections",
        "plan": kind,
        "engine": cfg.sim,
        "scenarios": [s.name for s in scenarios],
        "rounds": plan.rounds,
        "tasks_per_round": plan.tasks_per_round,
        "selection": {k: [list(r) for r in v] for k, v in plan.selection.items()},
        "conditions": list(cfg.conditions),
        "workers": report.workers,
        "runner": report.summary(),
        "llm": cfg.llm,
        "wall_s": round(wall, 1),
        "summary": rows,
        "acceptance": checks,
        "tasks": [r.to_dict() for r in records],
    }
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(result, indent=2, default=str))
        _plot(rows, cfg.out.with_suffix(".png"), title)
        console.print(f"wrote {cfg.out} and {cfg.out.with_suffix('.png')}")
    return result


# -- the pick-and-place suite -------------------------------------------------------------------
def run_pickplace(cfg: DemoConfig) -> dict[str, Any]:
    """The pick-and-place suite on each engine; returns (and writes) the results."""
    from rich.console import Console
    from rich.table import Table

    from corrigible.launch.evaluations.pickplace import pickplace_cases, run_case

    console = Console()
    cases = pickplace_cases(cfg.episodes)
    rows = []
    with progress_bar(console, label="[bold]{task.description}") as progress:
        task = progress.add_task("pick and place", total=len(cases) * len(cfg.engines))
        for engine in cfg.engines:
            for case in cases:
                progress.update(task, description=f"{engine}: {case.instruction}")
                result = run_case(engine, case)
                rows.append(
                    {
                        "engine": engine,
                        "seed": case.seed,
                        "instruction": case.instruction,
                        "expect": case.expect,
                        "success": bool(result.expect_holds),
                        "details": result.expect_details,
                        "wall_s": round(result.wall_s, 3),
                    }
                )
                progress.advance(task)
    summary = {}
    table = Table(title="corrigible demo: pick and place (success judged by in(block, bowl))")
    for col in ("engine", "episodes", "successes", "success rate", "mean wall s"):
        table.add_column(col)
    for engine in cfg.engines:
        mine = [r for r in rows if r["engine"] == engine]
        wins = sum(r["success"] for r in mine)
        summary[engine] = {
            "episodes": len(mine),
            "successes": wins,
            "success_rate": wins / len(mine),
        }
        mean_wall = sum(r["wall_s"] for r in mine) / len(mine)
        table.add_row(
            engine, str(len(mine)), str(wins), f"{wins / len(mine):.0%}", f"{mean_wall:.2f}"
        )
    console.print(table)
    results = {"suite": "pickplace", "engines": cfg.engines, "episodes": rows, "summary": summary}
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(results, indent=2))
        console.print(f"results written to {cfg.out}")
    return results


def run(cfg: DemoConfig) -> dict[str, Any]:
    """Runs the configured suite and returns (and writes) its results."""
    return run_pickplace(cfg) if cfg.suite == "pickplace" else run_corrections(cfg)


def register(app: typer.Typer) -> None:
    """Adds the `demo` verb."""

    @app.command("demo", cls=ray_command_class())
    def demo_cmd(
        scenarios: Path | None = typer.Option(
            None, help="directory of scenario YAML files (default: the built-in ones)"
        ),
        sim: list[str] | None = typer.Option(
            None,
            "--sim",
            help="engine: mujoco (default) | pybullet; pickplace suite: repeatable, default both",
        ),
        rounds: int | None = typer.Option(None, min=1, help="rounds per scenario (default: all)"),
        full: bool = typer.Option(
            False, help="every task of every built-in scenario (default: the short tour)"
        ),
        quick: bool = typer.Option(
            False, help="built-in: the tour (the default); --scenarios DIR: 2 rounds x 2 tasks"
        ),
        workers: int | None = typer.Option(
            None,
            min=1,
            help="worker processes for the condition x scenario pairs (default: "
            f"{_default_workers()}; with --ray: one per CPU of the cluster)",
        ),
        ray: str | None = typer.Option(None, "--ray", help=RAY_HELP),
        conditions: str = typer.Option(
            ",".join(_CONDITIONS), help="comma-separated memory conditions to run"
        ),
        out: Path = typer.Option(Path("runs/demo.json"), help="results JSON (+ .png plot)"),
        suite: str = typer.Option("corrections", help="corrections | pickplace (older suite)"),
        episodes: int = typer.Option(10, min=1, help="pickplace suite: layouts per engine"),
        llm: str | None = typer.Option(
            None,
            help="route and distil through this LLM (openai:<model> | local:<dir> | "
            "local:bundled | replay:<file>); default: offline",
        ),
    ) -> None:
        """Correct the robot in plain language, let it remember, measure reuse (offline)."""
        engines = list(sim or [])
        try:
            if suite == "pickplace":
                cfg = DemoConfig(
                    suite=suite, episodes=episodes, engines=engines or list(_ENGINES), out=out
                )
            else:
                if len(engines) > 1:
                    raise ConfigError("the corrections suite runs one engine: give --sim once")
                cfg = DemoConfig(
                    suite=suite,
                    scenarios=scenarios,
                    sim=engines[0] if engines else "mujoco",
                    rounds=rounds,
                    full=full,
                    quick=quick,
                    workers=workers if workers is not None or ray else _default_workers(),
                    ray=ray,
                    conditions=tuple(c.strip() for c in conditions.split(",") if c.strip()),
                    out=out,
                    llm=llm,
                )
            run(cfg)
        except CorrigibleError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
