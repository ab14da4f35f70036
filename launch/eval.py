"""`corrigible eval`: run a suite of instructions and report success per family and split.

Example:
    corrigible eval --suite smoke --sim mujoco --out runs/eval-smoke.json
    corrigible eval --suite tabletop --ray              # a local Ray instance, one actor per CPU
    corrigible eval --suite tabletop --ray HEAD:6379    # a Ray cluster (launch/README.md#ray)

`--suite` takes a built-in name (`tabletop`, `smoke`) or a YAML path (schema in
policies/suites/schema.py). Success is the suite's predicate on the final state. Perception is
the camera unless `--perception privileged`.

Results JSON: {suite, planner, perception, engines, episodes: [{id, family, split, engine,
instruction, expect, success, status, error_class, message, details, wall_s}], summary:
{engine: {family: {split: {n, successes, rate}}}}, runner: {backend, workers, wall_s, retries,
failed}}. With `--ray` the episodes are the same and so are their rows (`launch/distributed.py`);
an episode whose worker died is retried, and one that failed every retry is a row with status
"lost", listed under `runner.failed`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, model_validator

from corrigible.boundary import check_output_path, escape
from corrigible.errors import ConfigError, did_you_mean
from corrigible.launch.distributed import RAY_HELP, RunnerConfig, ray_command_class
from corrigible.launch.progress import plain, progress_bar
from corrigible.launch.schema import VerbConfig
from corrigible.sim_envs.backends.registry import BACKENDS


class EvalConfig(VerbConfig):
    """What to evaluate (`corrigible schema eval`)."""

    suite: str = "tabletop"  # built-in name or YAML path
    engines: list[str] = Field(default_factory=lambda: ["mujoco"])  # physics engines, in order
    planner: str = "grammar"  # grammar | openai:<model> | local:<path> | replay:<file>
    perception: str = "camera"  # camera | privileged
    out: Path | None = Path("runs/eval.json")  # results JSON (rows also go to .partial.jsonl)
    limit: int | None = None  # run only the first N episodes (>= 1; smoke runs)
    family: str | None = None  # run only one family
    ray: str | None = None  # None: serial; "local": a local Ray instance; "auto" / HOST:PORT
    workers: int | None = None  # Ray actors (None: one per CPU of the cluster)

    @model_validator(mode="after")
    def _usable(self) -> EvalConfig:
        if not self.planner.strip():
            raise ConfigError(
                "--planner is empty; use 'grammar' or an LLM spec like openai:<model>"
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1 episode, got {self.limit}")
        if self.out is not None:
            check_output_path(self.out, option="--out")
        if self.workers is not None and self.ray is None:
            raise ConfigError("--workers counts Ray workers; give --ray too (without, serial)")
        self.runner()  # checks the address and the worker count
        return self

    def runner(self) -> RunnerConfig:
        """Where the episodes run."""
        return RunnerConfig(ray=self.ray, workers=self.workers)


def run(cfg: EvalConfig) -> dict[str, Any]:
    """Runs the suite; prints a table; writes and returns the results."""
    from rich.console import Console
    from rich.table import Table

    from corrigible.launch.distributed import RunReport
    from corrigible.launch.evaluations.suite import run_suite, summarise
    from corrigible.policies.suites.schema import load_suite

    suite = load_suite(cfg.suite)
    families = sorted({e.family for e in suite.episodes})
    if cfg.family is not None and cfg.family not in families:
        raise ConfigError(
            f"--family {escape(repr(cfg.family))} is no family of suite {suite.name!r}; its "
            f"families are {families}." + did_you_mean(cfg.family, families)
        )
    episodes = [e for e in suite.episodes if cfg.family is None or e.family == cfg.family][
        : cfg.limit
    ]
    runner = cfg.runner().check()  # Ray installed, the head node answers: before any work
    console = Console(stderr=True)
    partial = cfg.out.with_suffix(".partial.jsonl") if cfg.out is not None else None
    reports: list[RunReport] = []
    with progress_bar(console) as progress:
        task = progress.add_task("eval", total=len(episodes) * len(cfg.engines))

        def done(row: dict[str, Any]) -> None:  # fed as each episode finishes, in any order
            mark = "ok" if row["success"] else "FAIL"
            progress.update(
                task, advance=1, description=plain(f"{row['engine']} {row['id']} {mark}")
            )

        rows = run_suite(
            episodes,
            engines=cfg.engines,
            planner=cfg.planner,
            perception=cfg.perception,
            partial=partial,
            on_row=done,
            runner=runner,
            report=reports,
        )
    runner = reports[0].summary()
    for attempt in runner["retries"]:
        why = "worker lost" if attempt["worker_lost"] else "error"
        console.print(
            plain(f"retried {attempt['key']} (attempt {attempt['attempt']}, {why}: ")
            + plain(f"{attempt['error']})")
        )
    for attempt in runner["failed"]:
        console.print(plain(f"LOST {attempt['key']} after every retry: {attempt['error']}"))
    summary = summarise(rows)
    table = Table(
        title=plain(
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
            table.add_row(engine, plain(fam), *cells)
    Console().print(table)
    results = {
        "suite": suite.name,
        "planner": cfg.planner,
        "perception": cfg.perception,
        "engines": cfg.engines,
        "episodes": rows,
        "summary": summary,
        "runner": runner,
    }
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(results, indent=2, default=str))
    return results


def register(app: typer.Typer) -> None:
    """Adds the `eval` verb."""

    @app.command("eval", cls=ray_command_class())
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
        ray: str | None = typer.Option(None, "--ray", help=RAY_HELP),
        workers: int | None = typer.Option(
            None, help="with --ray: worker processes (default: one per CPU of the cluster)"
        ),
    ) -> None:
        """Evaluate a planner on a suite; print success per family and split."""
        from corrigible.errors import CorrigibleError

        bad = [s for s in sim if s not in BACKENDS]
        if bad or perception not in ("camera", "privileged"):
            print(
                escape(
                    f"error: --sim must be {'/'.join(BACKENDS)} and --perception "
                    f"camera/privileged; got {sim}, {perception!r}"
                ),
                file=sys.stderr,
            )
            raise typer.Exit(2)
        try:
            cfg = EvalConfig(
                suite=suite,
                engines=list(sim),
                planner=planner,
                perception=perception,
                out=out,
                limit=limit,
                family=family,
                ray=ray,
                workers=workers,
            )
            # The suite is read and checked first (every episode's layout and predicate); an
            # episode that fails while it runs is a failed row, never an exit here.
            run(cfg)
        except CorrigibleError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
