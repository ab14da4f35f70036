"""`corrigible demo`: the pick-and-place suite on both engines, with progress and a success table.

Example:
    corrigible demo --episodes 10 --out runs/demo.json

Results JSON schema (launch/README.md#demo): {"suite": "pickplace", "engines": [...],
"episodes": [{engine, seed, instruction, expect, success, details, wall_s}], "summary":
{engine: {"episodes", "successes", "success_rate"}}}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import typer


@dataclass(kw_only=True)
class DemoConfig:
    """What the demo runs."""

    episodes: int = 10  # seeded layouts per engine (10 covers every colour)
    engines: list[str] = field(default_factory=lambda: ["mujoco", "pybullet"])
    out: Path | None = Path("runs/demo.json")  # results JSON


def run(cfg: DemoConfig) -> dict:
    """Runs the suite and returns (and writes) the results."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from corrigible.policies.eval_pickplace import pickplace_cases, run_case

    console = Console()
    cases = pickplace_cases(cfg.episodes)
    rows = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
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


def register(app: typer.Typer) -> None:
    """Adds the `demo` verb."""

    @app.command("demo")
    def demo_cmd(
        episodes: int = typer.Option(10, min=1, help="seeded layouts per engine"),
        sim: list[str] = typer.Option(
            ["mujoco", "pybullet"], "--sim", help="engines to run (repeatable)"
        ),
        out: Path = typer.Option(Path("runs/demo.json"), help="results JSON"),
    ) -> None:
        """Run the offline demo: pick and place on both engines, with a success table."""
        for engine in sim:
            if engine not in ("mujoco", "pybullet"):
                raise typer.BadParameter(f"--sim must be mujoco or pybullet, got {engine!r}")
        run(DemoConfig(episodes=episodes, engines=list(sim), out=out))
