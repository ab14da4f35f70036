"""`corrigible eval`: run a suite of instructions and report success per family and split.

Example:
    corrigible eval --suite smoke --sim mujoco --out runs/eval-smoke.json
    corrigible eval --suite tabletop --ray              # a local Ray instance, one actor per CPU
    corrigible eval --suite tabletop --ray HEAD:6379    # a Ray cluster (launch/README.md#ray)
    corrigible eval --suite tabletop-faults --sim mujoco --seeds 2 --out runs/faults.json

`--family`, `--split`, `--per-family N` and `--limit N` select episodes (in that order), e.g.
`--split heldout --per-family 3` for a comparison of slow planners on every family.

`--suite` takes a built-in name (`tabletop`, `smoke`) or a YAML path (schema in
policies/suites/schema.py). Success is the suite's predicate on the final state. Perception is
the camera unless `--perception privileged`.

Results JSON: {suite, planner, perception, engines, episodes: [{id, family, split, engine,
instruction, expect, success, status, error_class, message, details, wall_s, programs, plans:
[{planner, plan_s, llm_calls, plan_error_type}]}], summary: {engine: {family: {split: {n,
successes, rate}}}}, planning: {engine: {plans, written_by_llm, refusals, invalid,
invalid_per_100_plans, error_types, llm_calls, fgen_calls, plan_s_p50, plan_s_p95,
episode_wall_s}}, runner: {backend, workers, wall_s, retries, failed}}. A refusal (the planner
said it cannot do that) is not an invalid program; an invalid one is LLM output the sandbox
refused or that held no program. With `--ray` the episodes are the same and so are their
rows (`launch/distributed.py`); an episode whose worker died is retried, and one that failed
every retry is a row with status "lost", listed under `runner.failed`.

`--suite tabletop-faults` is the repair evaluation (`launch/evaluations/repair.py`,
`corrections/repair/README.md`): per engine and seed one episode with an injected fault (the
four built-in faults in turn, or `--faults FILE`), run with repair on and with repair off
(`--repair on|off`; absent: both, side by side, same seeds and faults), checkpoints judged by
`--monitor perception|oracle|vlm:<model>` (default perception), success judged by the oracle.
It prints success, repair iterations per episode, the gain in points and a histogram of failure
classes, and writes the JSON to `--out` and a PNG beside it (same name, `.png`); traces and
checkpoint images go to the folder of the same name without suffix. Its options `--repair`,
`--monitor`, `--seeds` (default 20), `--faults` and `--max-iterations` (default 3) belong to
this suite only; it runs serially (no `--ray`, `--limit` or `--family`). JSON: {summary:
{settings: {on|off: {episodes, successes, success, mean_iterations, mean_iterations_to_success,
iterations_per_episode, by_engine: {engine: same}}}, success_gain_points: {all, engine...},
failure_classes, failure_classes_by_setting, class_accuracy, class_accuracy_by_engine,
faults_acted, faults_unnoticed, class_confusion, monitor_agreement: {kind: {agree, checks,
abstained, rate}}, monitor_agreement_all, ...}, episodes: [...]}.
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

FAULTS_SUITE = "tabletop-faults"  # the repair evaluation's suite name (no suite YAML)
FAULTS_SEEDS = 20  # its default seeds per engine and setting (the acceptance protocol)


class EvalConfig(VerbConfig):
    """What to evaluate (`corrigible schema eval`)."""

    suite: str = "tabletop"  # built-in name or YAML path
    engines: list[str] = Field(default_factory=lambda: ["mujoco"])  # physics engines, in order
    planner: str = "grammar"  # grammar | openai:<model> | local:<path> | replay:<file>
    perception: str = "camera"  # camera | privileged
    low_level: str = "scripted"  # scripted | learned:<checkpoint> (who runs pick and place)
    out: Path | None = Path("runs/eval.json")  # results JSON (rows also go to .partial.jsonl)
    limit: int | None = None  # run only the first N episodes (>= 1; smoke runs)
    family: str | None = None  # run only one family
    split: str | None = None  # run only one split ("train" | "heldout")
    per_family: int | None = None  # run only the first N episodes of each family (>= 1)
    ray: str | None = None  # None: serial; "local": a local Ray instance; "auto" / HOST:PORT
    workers: int | None = None  # Ray actors (None: one per CPU of the cluster)
    # The repair suite's own options (`--suite tabletop-faults` only):
    repair: list[str] | None = None  # settings run: [on], [off] or [on, off]; None: both
    monitor: str | None = None  # perception | oracle | vlm:<model>; None: perception
    seeds: int | None = None  # episodes per engine and setting (>= 1); None: 20
    faults: Path | None = None  # fault file (YAML); None: the four built-in faults in turn
    max_iterations: int | None = None  # repairs per episode (>= 0); None: 3

    @model_validator(mode="after")
    def _usable(self) -> EvalConfig:
        if not self.planner.strip():
            raise ConfigError(
                "--planner is empty; use 'grammar' or an LLM spec like openai:<model>"
            )
        if self.low_level.strip() != "scripted":
            from corrigible.policies.learned.low_level.skills import parse_low_level

            _, checkpoint = parse_low_level(self.low_level)  # ConfigError naming the forms
            if checkpoint is not None and not checkpoint.is_file():
                raise ConfigError(f"--low-level: no checkpoint file at {checkpoint}")
        if self.suite == FAULTS_SUITE:
            self._faults_usable()
            return self
        own = {
            "--repair": self.repair,
            "--monitor": self.monitor,
            "--seeds": self.seeds,
            "--faults": self.faults,
            "--max-iterations": self.max_iterations,
        }
        given = [k for k, v in own.items() if v is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)} belong(s) to --suite {FAULTS_SUITE} (the repair "
                f"evaluation), not to suite {escape(repr(self.suite))}; drop the option or "
                f"use --suite {FAULTS_SUITE}"
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1 episode, got {self.limit}")
        if self.per_family is not None and self.per_family < 1:
            raise ConfigError(f"--per-family must be >= 1 episode, got {self.per_family}")
        if self.out is not None:
            check_output_path(self.out, option="--out")
        if self.workers is not None and self.ray is None:
            raise ConfigError("--workers counts Ray workers; give --ray too (without, serial)")
        self.runner()  # checks the address and the worker count
        return self

    def runner(self) -> RunnerConfig:
        """Where the episodes run."""
        return RunnerConfig(ray=self.ray, workers=self.workers)

    def _faults_usable(self) -> None:
        """The repair suite runs serially, every seed: the suite loop's options do not apply."""
        alien = {
            "--ray": self.ray,
            "--workers": self.workers,
            "--limit": self.limit,
            "--family": self.family,
            "--split": self.split,
            "--per-family": self.per_family,
        }
        given = [k for k, v in alien.items() if v is not None]
        if given:
            raise ConfigError(
                f"--suite {FAULTS_SUITE} runs serially over --seeds: {', '.join(given)} "
                "do(es) not apply; use --seeds N (and --sim for engines)"
            )
        if self.out is not None:
            check_output_path(self.out, option="--out")
        self.repair_config()  # checks --repair, --monitor, --seeds, engines, the fault file

    def repair_config(self) -> Any:
        """The repair evaluation this config asks for (`RepairEvalConfig`)."""
        from corrigible.launch.evaluations.repair import RepairEvalConfig

        report = self.out if self.out is not None else Path("runs/repair-eval.json")
        if self.faults is not None and not self.faults.is_file():
            raise ConfigError(
                f"--faults {escape(str(self.faults))}: no such file; write a fault file "
                "(corrections/repair/README.md) or drop --faults for the built-in faults"
            )
        return RepairEvalConfig(
            seeds=FAULTS_SEEDS if self.seeds is None else self.seeds,
            engines=list(self.engines),
            repair=["on", "off"] if self.repair is None else list(self.repair),
            monitor=self.monitor or "perception",
            faults=self.faults,
            max_iterations=3 if self.max_iterations is None else self.max_iterations,
            planner=self.planner,
            perception=self.perception,  # type: ignore[arg-type]
            out=report.with_suffix(""),
            report=report,
        )


def run_faults(cfg: EvalConfig) -> dict[str, Any]:
    """The repair suite: prints success, iterations and failure classes; returns the summary."""
    from rich.console import Console

    from corrigible.launch.evaluations.repair import evaluate, print_summary

    repair_cfg = cfg.repair_config()
    console = Console(stderr=True)
    total = len(repair_cfg.engines) * repair_cfg.seeds * len(repair_cfg.repair)
    with progress_bar(console) as progress:
        task = progress.add_task(FAULTS_SUITE, total=total)

        def done(episode: dict[str, Any]) -> None:
            mark = "ok" if episode["success"] else "FAIL"
            setting = "on" if episode["repair"] else "off"
            progress.update(
                task,
                advance=1,
                description=plain(
                    f"{episode['engine']} s{episode['seed']} {episode['fault']} "
                    f"repair {setting} {mark}"
                ),
            )

        summary = evaluate(repair_cfg, on_episode=done)
    print_summary(summary, Console())
    return summary


def run(cfg: EvalConfig) -> dict[str, Any]:
    """Runs the suite; prints a table; writes and returns the results."""
    from rich.console import Console
    from rich.table import Table

    if cfg.suite == FAULTS_SUITE:
        return run_faults(cfg)

    from corrigible.launch.distributed import RunReport
    from corrigible.launch.evaluations.suite import run_suite, summarise, summarise_planning
    from corrigible.policies.suites.schema import load_suite

    suite = load_suite(cfg.suite)
    families = sorted({e.family for e in suite.episodes})
    if cfg.family is not None and cfg.family not in families:
        raise ConfigError(
            f"--family {escape(repr(cfg.family))} is no family of suite {suite.name!r}; its "
            f"families are {families}." + did_you_mean(cfg.family, families)
        )
    splits = sorted({e.split for e in suite.episodes})
    if cfg.split is not None and cfg.split not in splits:
        raise ConfigError(
            f"--split {escape(repr(cfg.split))} is no split of suite {suite.name!r}; its "
            f"splits are {splits}." + did_you_mean(cfg.split, splits)
        )
    episodes = [
        e
        for e in suite.episodes
        if (cfg.family is None or e.family == cfg.family)
        and (cfg.split is None or e.split == cfg.split)
    ]
    if cfg.per_family is not None:  # the first N of each family, in file order
        taken: dict[str, int] = {}
        kept = []
        for e in episodes:
            taken[e.family] = taken.get(e.family, 0) + 1
            if taken[e.family] <= cfg.per_family:
                kept.append(e)
        episodes = kept
    episodes = episodes[: cfg.limit]
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
            low_level=cfg.low_level,
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
    planning = summarise_planning(rows)
    for engine, stats in planning.items():
        Console().print(
            plain(
                f"{engine} planning: {stats['plans']} plans ({stats['written_by_llm']} by an "
                f"LLM), {stats['refusals']} refused, {stats['invalid']} invalid "
                f"({stats['invalid_per_100_plans']} per 100), {stats['fgen_calls']} fgen calls, "
                f"plan p50 {stats['plan_s_p50']} s / p95 {stats['plan_s_p95']} s, "
                f"episodes {stats['episode_wall_s']} s"
            )
        )
    results = {
        "suite": suite.name,
        "planner": cfg.planner,
        "perception": cfg.perception,
        "engines": cfg.engines,
        "episodes": rows,
        "summary": summary,
        "planning": planning,
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
        suite: str = typer.Option(
            "tabletop", help=f"built-in suite name, YAML path, or {FAULTS_SUITE} (repair)"
        ),
        sim: list[str] = typer.Option(["mujoco"], "--sim", help="mujoco | pybullet (repeatable)"),
        planner: str = typer.Option(
            "grammar", help="grammar | openai:<model> | local:<path> | replay:<file>"
        ),
        perception: str = typer.Option("camera", help="camera | privileged"),
        low_level: str = typer.Option(
            "scripted", "--low-level", help="scripted | learned:<checkpoint> (pick and place)"
        ),
        out: Path = typer.Option(Path("runs/eval.json"), help="results JSON"),
        limit: int | None = typer.Option(None, help="only the first N episodes"),
        family: str | None = typer.Option(None, help="only this family"),
        split: str | None = typer.Option(None, help="only this split (train | heldout)"),
        per_family: int | None = typer.Option(
            None, "--per-family", help="only the first N episodes of each family"
        ),
        ray: str | None = typer.Option(None, "--ray", help=RAY_HELP),
        workers: int | None = typer.Option(
            None, help="with --ray: worker processes (default: one per CPU of the cluster)"
        ),
        repair: str | None = typer.Option(
            None,
            help=f"{FAULTS_SUITE} only: on | off | on,off (default: on,off side by side)",
        ),
        monitor: str | None = typer.Option(
            None,
            help=f"{FAULTS_SUITE} only: perception (default) | oracle | vlm:<model>",
        ),
        seeds: int | None = typer.Option(
            None, help=f"{FAULTS_SUITE} only: seeds per engine and setting (default 20)"
        ),
        faults: Path | None = typer.Option(
            None, help=f"{FAULTS_SUITE} only: fault file YAML (default: built-in faults)"
        ),
        max_iterations: int | None = typer.Option(
            None, help=f"{FAULTS_SUITE} only: repairs per episode (default 3)"
        ),
    ) -> None:
        """Evaluate a planner on a suite (or repair on tabletop-faults); print success."""
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
                low_level=low_level,
                out=out,
                limit=limit,
                family=family,
                split=split,
                per_family=per_family,
                ray=ray,
                workers=workers,
                repair=None if repair is None else repair.split(","),
                monitor=monitor,
                seeds=seeds,
                faults=faults,
                max_iterations=max_iterations,
            )
            # The suite is read and checked first (every episode's layout and predicate); an
            # episode that fails while it runs is a failed row, never an exit here.
            run(cfg)
        except CorrigibleError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
