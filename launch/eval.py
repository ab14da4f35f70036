"""`corrigible eval`: run a suite of instructions and report success per family and split.

Example:
    corrigible eval --suite smoke --sim mujoco --out runs/eval-smoke.json

`--suite` takes a built-in name (`tabletop`, `smoke`) or a YAML path (schema in
policies/suites/schema.py). Success is the suite's predicate on the final state. Perception is
the camera unless `--perception privileged`.

Results JSON: {suite, planner, perception, engines, episodes: [{id, family, split, engine,
instruction, expect, success, status, error_class, message, details, wall_s}], summary:
{engine: {family: {split: {n, successes, rate}}}}}.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from corrigible.launch.progress import progress_bar


@dataclass(kw_only=True)
class EvalConfig:
    """What to evaluate."""

    suite: str = "tabletop"  # built-in name or YAML path
    engines: list[str] = field(default_factory=lambda: ["mujoco"])
    planner: str = "grammar"
    perception: str = "camera"  # camera | privileged
    out: Path | None = Path("runs/eval.json")
    limit: int | None = None  # run only the first N episodes (smoke runs)
    family: str | None = None  # run only one family


def run(cfg: EvalConfig) -> dict[str, Any]:
    """Runs the suite; prints a table; writes and returns the results."""
    from rich.console import Console
    from rich.table import Table

    from corrigible.policies.episode import Episode
    from corrigible.policies.suites.schema import load_suite

    suite = load_suite(cfg.suite)
    episodes = [e for e in suite.episodes if cfg.family is None or e.family == cfg.family][
        : cfg.limit
    ]
    console = Console(stderr=True)
    rows: list[dict[str, Any]] = []
    partial = cfg.out.with_suffix(".partial.jsonl") if cfg.out is not None else None
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")
    with progress_bar(console) as progress:
        task = progress.add_task("eval", total=len(episodes) * len(cfg.engines))
        for engine in cfg.engines:
            for ep in episodes:
                progress.update(task, description=f"{engine} {ep.id}")
                row = {
                    "id": ep.id,
                    "family": ep.family,
                    "split": ep.split,
                    "engine": engine,
                    "instruction": ep.instruction,
                    "expect": ep.expect,
                }
                try:
                    episode = Episode(
                        ep.instruction,
                        engine=engine,
                        seed=ep.seed,
                        expect=ep.expect,
                        layout=ep.layout(),
                        planner=cfg.planner,
                        perception=cfg.perception,
                    )
                    try:
                        result = episode.run()
                    finally:
                        episode.close()
                    last = result.steps[-1] if result.steps else {}
                    row.update(
                        success=bool(result.expect_holds),
                        status=last.get("status"),
                        error_class=last.get("error_class"),
                        message=last.get("message", ""),
                        details=result.expect_details,
                        wall_s=round(result.wall_s, 2),
                        programs=[s.get("program") for s in result.steps],
                    )
                except (
                    Exception
                ) as exc:  # a suite entry the scene cannot satisfy is a failure, not a crash
                    row.update(
                        success=False,
                        status="error",
                        error_class=type(exc).__name__,
                        message=str(exc),
                        details=[],
                        wall_s=0.0,
                    )
                rows.append(row)
                if partial is not None:  # a long run can be inspected (and survives a kill)
                    with partial.open("a") as fh:
                        fh.write(json.dumps(row, default=str) + "\n")
                progress.advance(task)
    summary: dict[str, Any] = {}
    for r in rows:
        cell = (
            summary.setdefault(r["engine"], {})
            .setdefault(r["family"], {})
            .setdefault(r["split"], {"n": 0, "successes": 0})
        )
        cell["n"] += 1
        cell["successes"] += int(r["success"])
    for fams in summary.values():
        for splits in fams.values():
            total = {
                "n": sum(c["n"] for c in splits.values()),
                "successes": sum(c["successes"] for c in splits.values()),
            }
            splits["all"] = total
            for c in splits.values():
                c["rate"] = c["successes"] / c["n"] if c["n"] else 0.0
    table = Table(
        title=(
            f"{suite.name}: success by family ({cfg.planner} planner, {cfg.perception} perception)"
        )
    )
    for col in ("engine", "family", "train", "heldout", "all"):
        table.add_column(col)
    for engine, fams in summary.items():
        for fam, splits in sorted(fams.items()):
            cells = [
                f"{splits[s]['successes']}/{splits[s]['n']}" if s in splits else "-"
                for s in ("train", "heldout", "all")
            ]
            table.add_row(engine, fam, *cells)
    Console().print(table)
    results = {
        "suite": suite.name,
        "planner": cfg.planner,
        "perception": cfg.perception,
        "engines": cfg.engines,
        "episodes": rows,
        "summary": summary,
    }
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(results, indent=2, default=str))
    return results


def register(app: typer.Typer) -> None:
    """Adds the `eval` verb."""

    @app.command("eval")
    def eval_cmd(
        suite: str = typer.Option("tabletop", help="built-in suite name or YAML path"),
        sim: list[str] = typer.Option(["mujoco"], "--sim", help="mujoco | pybullet (repeatable)"),
        planner: str = typer.Option(
            "grammar", help="grammar | openai:<model> | local:<path> | replay:<file>"
        ),
        perception: str = typer.Option("camera", help="camera | privileged"),
        out: Path = typer.Option(Path("runs/eval.json"), help="results JSON"),
        limit: int | None = typer.Option(None, help="only the first N episodes"),
        family: str | None = typer.Option(None, help="only this family"),
    ) -> None:
        """Evaluate a planner on a suite; print success per family and split."""
        from corrigible.errors import CorrigibleError
        from corrigible.policies.suites.schema import load_suite

        bad = [s for s in sim if s not in ("mujoco", "pybullet")]
        if bad or perception not in ("camera", "privileged"):
            print(
                "error: --sim must be mujoco/pybullet and --perception camera/privileged; "
                f"got {sim}, {perception!r}",
                file=sys.stderr,
            )
            raise typer.Exit(2)
        try:
            load_suite(suite)
        except CorrigibleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        run(
            EvalConfig(
                suite=suite,
                engines=list(sim),
                planner=planner,
                perception=perception,
                out=out,
                limit=limit,
                family=family,
            )
        )
