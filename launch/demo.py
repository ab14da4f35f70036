"""`corrigible demo`: corrections applied on the fly, remembered, and reused on new instances.

Example:
    corrigible demo --out runs/demo.json

Runs every scenario (default: the built-in ones in corrections/scenarios/builtin; `--scenarios
DIR` for any folder of scenario YAML) round by round under three memory conditions, each from
an empty knowledge base: "none" (the planner plus on-the-fly corrections), "text" (text-only
retrieval of distilled knowledge) and "text+visual" (text plus the object's appearance). Round 1
runs one set of task and object instances; later rounds run new ones. The simulated corrector
(corrections/corrector.py) watches every task. Prints one table row per round and condition:
success rate, corrections per task, false applications (knowledge applied to an object outside
its scope, counted on the control tasks) and correction latency; writes the results JSON (schema
in launch/README.md#demo) and a PNG plot next to it.

`corrigible demo --suite pickplace [--episodes N] [--sim mujoco --sim pybullet]` runs the older
pick-and-place suite on both engines instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, model_validator

from corrigible.boundary import check_output_path, escape
from corrigible.errors import ConfigError
from corrigible.launch.progress import plain, progress_bar
from corrigible.launch.schema import VerbConfig
from corrigible.sim_envs.backends.registry import BACKENDS

_ENGINES = tuple(BACKENDS.names())
_SUITES = ("corrections", "pickplace")
_CONDITIONS = ("none", "text", "text+visual")
_QUICK_TASKS = 2  # --quick: the first two tasks of each round
_MAX_WORKERS = 64  # worker processes; each loads MiniLM and a physics engine
_MAX_EPISODES = 10_000  # pickplace suite: layouts per engine


def _default_workers() -> int:
    return max(1, min(3, os.cpu_count() or 1))


class DemoConfig(VerbConfig):
    """What the demo runs (`corrigible schema demo`)."""

    suite: str = "corrections"  # corrections | pickplace (the older suite)
    scenarios: Path | None = None  # directory (or file) of scenario YAML; None = built-in
    sim: str = "mujoco"  # physics engine for the corrections suite: mujoco | pybullet
    rounds: int | None = None  # rounds per scenario; None = every round in the files
    quick: bool = False  # two rounds, the first two tasks of each (a smoke run)
    conditions: tuple[str, ...] = _CONDITIONS  # memory conditions, in table order
    workers: int = Field(default_factory=_default_workers)  # processes (condition x scenario)
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
        if self.rounds is not None and self.rounds < 1:
            raise ConfigError(f"DemoConfig.rounds must be >= 1, got {self.rounds}")
        if not 1 <= self.workers <= _MAX_WORKERS:
            raise ConfigError(
                f"--workers must be between 1 and {_MAX_WORKERS} processes, got {self.workers}"
            )
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
    from rich.table import Table

    table = Table(title=title)
    for col in ("round", "condition", "tasks", "success", "corr/task", "false (ctrl)", "lat ms"):
        table.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: (r["round"], _CONDITIONS.index(r["condition"]))):
        lat = "-" if r["mean_latency_ms"] is None else f"{r['mean_latency_ms']:.0f}"
        table.add_row(
            str(r["round"]),
            r["condition"],
            str(r["tasks"]),
            f"{r['success_rate']:.2f}",
            f"{r['corrections_per_task']:.2f}",
            f"{r['false_application_tasks']}/{r['control_tasks']}",
            lat,
        )
    return table


def run_corrections(cfg: DemoConfig) -> dict[str, Any]:
    """The corrections evaluation; returns (and writes) the results."""
    from rich.console import Console

    from corrigible.corrections.scenarios import load_scenarios

    # Every file is read and checked (each task's layout and predicate) before the experiment's
    # heavy imports: a bad file is answered in a second.
    scenarios = load_scenarios(cfg.scenarios)
    from corrigible.launch.evaluations.corrections_demo import (
        LearningPlan,
        TaskRecord,
        acceptance,
        run_parallel,
        summarise,
    )

    console = Console()
    rounds = cfg.rounds if cfg.rounds is not None else (2 if cfg.quick else None)
    per_round = _QUICK_TASKS if cfg.quick else None
    total = len(cfg.conditions) * sum(
        len(tasks[:per_round]) for s in scenarios for tasks in s.rounds[:rounds]
    )
    console.print(
        f"corrigible demo: {len(scenarios)} scenarios, {total} task runs "
        f"({', '.join(cfg.conditions)}), {cfg.sim}, {cfg.workers} worker process(es), "
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

        plan = LearningPlan(
            engine=cfg.sim,
            rounds=rounds,
            tasks_per_round=per_round,
            conditions=tuple(cfg.conditions),
            seed=cfg.seed,
            llm=cfg.llm,
        )
        records = run_parallel(scenarios, plan, workers=cfg.workers, on_task=on_task)
    wall = time.perf_counter() - t0
    rows = summarise(records)
    title = f"corrigible demo ({cfg.sim}): corrections, memory and reuse"
    console.print(_table(rows, title))
    console.print(
        "success: task predicate holds at the end; corr/task: corrections the person had to "
        "give; false (ctrl): control tasks on which stored knowledge was applied outside its "
        f"scope / control tasks; lat ms: correction -> first motion of the redo.  wall {wall:.0f} s"
    )
    checks = acceptance(rows)
    for condition, c in checks.items():
        ratio = c["round1_corrections_ratio_to_none"]
        rate = c["false_application_rate"]
        console.print(
            f"{condition}: round-1 corrections vs none "
            f"{'-' if ratio is None else f'{ratio:.2f}'} (<= 0.5: {c['round1_ratio_ok']}); "
            f"round {c['last_round']} {c['last_round_corrections_per_task']:.2f}/task "
            f"(<= 0.1 from round 3: {c['last_round_ok']}); success >= none: "
            f"{c['success_at_least_none_every_round']}; false applications "
            f"{'-' if rate is None else f'{rate:.1%}'} (<= 5%: {c['false_application_ok']})"
        )
    result = {
        "version": 3,
        "suite": "corrections",
        "engine": cfg.sim,
        "scenarios": [s.name for s in scenarios],
        "rounds": rounds,
        "tasks_per_round": per_round,
        "conditions": list(cfg.conditions),
        "workers": cfg.workers,
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

    @app.command("demo")
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
        quick: bool = typer.Option(False, help="two rounds, two tasks each (smoke run)"),
        workers: int = typer.Option(
            _default_workers(), min=1, help="worker processes (condition x scenario pairs)"
        ),
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
                    quick=quick,
                    workers=workers,
                    conditions=tuple(c.strip() for c in conditions.split(",") if c.strip()),
                    out=out,
                    llm=llm,
                )
            run(cfg)
        except ConfigError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
