"""`corrigible learn`: corrections applied on the fly, distilled, and retrieved next round.

Example:
    corrigible learn --quick --out runs/learn.json

Runs the built-in scenarios (corrections/scenarios/builtin) under three memory conditions
(none, text, text+visual), each from an empty knowledge base, and reports per round and
condition: success rate, corrections per task, false applications on control tasks and mean
correction latency. Writes the JSON (schema: corrections/README.md#learn-results) and a PNG plot
next to it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from corrigible.errors import ConfigError

_ENGINES = ("mujoco", "pybullet")


@dataclass(kw_only=True)
class LearnConfig:
    """What `learn` runs."""

    scenarios: Path | None = None  # directory of scenario YAML files; None = built-in
    sim: str = "mujoco"  # physics engine: mujoco | pybullet
    rounds: int | None = None  # rounds per scenario; None = all in the file
    out: Path = Path("runs/learn.json")  # results JSON; the plot goes next to it (.png)
    quick: bool = False  # two rounds per scenario (~1.5 min on MuJoCo)
    seed: int = 0  # corrector phrasing seed (same in every condition)

    def __post_init__(self) -> None:
        if self.sim not in _ENGINES:
            raise ConfigError(f"LearnConfig.sim must be one of {_ENGINES}, got {self.sim!r}")
        if self.rounds is not None and self.rounds < 1:
            raise ConfigError(f"LearnConfig.rounds must be >= 1, got {self.rounds}")


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for condition in dict.fromkeys(r["condition"] for r in rows):
        rs = [r for r in rows if r["condition"] == condition]
        x = [r["round"] for r in rs]
        axes[0].plot(x, [r["corrections_per_task"] for r in rs], marker="o", label=condition)
        axes[1].plot(x, [r["false_applications"] for r in rs], marker="o", label=condition)
    axes[0].set(xlabel="round", ylabel="corrections per task", title="Corrections needed")
    axes[1].set(xlabel="round", ylabel="count", title="False applications (control tasks)")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(cfg: LearnConfig) -> dict[str, Any]:
    """Runs the experiment; returns (and writes) the results."""
    from rich.console import Console
    from rich.table import Table

    from corrigible.corrections.demo_loop import run_learning, summarise
    from corrigible.corrections.scenarios import load_scenarios

    console = Console()
    scenarios = load_scenarios(cfg.scenarios)
    rounds = cfg.rounds if cfg.rounds is not None else (2 if cfg.quick else None)

    def progress(rec: Any) -> None:
        console.print(
            f"[dim]{rec.condition:11s} {rec.scenario:18s} r{rec.round} "
            f"{'ok ' if rec.success else 'FAIL'} corrections={rec.corrections} "
            f"false={rec.false_applications} {rec.instruction!r}[/dim]"
        )

    records = run_learning(
        scenarios, engine=cfg.sim, rounds=rounds, seed=cfg.seed, on_task=progress
    )
    rows = summarise(records)
    table = Table(title=f"corrigible learn ({cfg.sim})")
    for col in (
        "condition",
        "round",
        "tasks",
        "success",
        "corr/task",
        "false (ctrl)",
        "latency ms",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        lat = "-" if r["mean_latency_ms"] is None else f"{r['mean_latency_ms']:.0f}"
        table.add_row(
            r["condition"],
            str(r["round"]),
            str(r["tasks"]),
            f"{r['success_rate']:.2f}",
            f"{r['corrections_per_task']:.2f}",
            f"{r['false_applications']}/{r['control_tasks']}",
            lat,
        )
    console.print(table)
    result = {
        "version": 1,
        "engine": cfg.sim,
        "scenarios": [s.name for s in scenarios],
        "rounds": rounds,
        "summary": rows,
        "tasks": [r.to_dict() for r in records],
    }
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(result, indent=2, default=str))
    _plot(rows, cfg.out.with_suffix(".png"))
    console.print(f"wrote {cfg.out} and {cfg.out.with_suffix('.png')}")
    return result


def register(app: typer.Typer) -> None:
    """Adds the `learn` verb."""

    @app.command("learn")
    def learn(
        scenarios: Path | None = typer.Option(None, help="directory of scenario YAML files"),
        sim: str = typer.Option("mujoco", help="physics engine: mujoco | pybullet"),
        rounds: int | None = typer.Option(None, help="rounds per scenario (default: all)"),
        out: Path = typer.Option(Path("runs/learn.json"), help="results JSON (+ .png plot)"),
        quick: bool = typer.Option(False, help="two rounds per scenario"),
    ) -> None:
        """Correct the robot mid-episode, distil the corrections, and measure reuse."""
        try:
            run(LearnConfig(scenarios=scenarios, sim=sim, rounds=rounds, out=out, quick=quick))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
