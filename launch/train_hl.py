"""`corrigible train hl`: Yell At Your Robot's high level, trained, corrected and evaluated.

Example:
    corrigible train hl --stage all --workdir runs/hl

Stages (each reads what the one before wrote in `--workdir`):
    base      record the scripted planner's episodes of the pack family (seen orders only) in
              physics, `demos.npz`, and train the instructor on them: `base.pt`, `base_loss.png`
    finetune  run `base.pt` with the simulated person correcting it (the correction replaces the
              high level's output at that step) over `--corrected-episodes` episodes of every
              order, `corrections.npz`; fine-tune from `base.pt` on those mixed with the demos:
              `finetuned.pt`, `finetune_loss.png`
    eval      run `base.pt` and `finetuned.pt` on new seeds, with no corrections (success) and
              with the person watching (corrections needed); prints and writes `eval.json`
    all       the three in turn

Training is CPU only and deterministic for a `--seed`; each stage prints its wall time. The last
line printed is the stage's JSON. Exit status 0, or 2 for bad input (a missing or damaged
checkpoint or dataset, an unusable option).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import model_validator

from corrigible.boundary import check_output_path, escape
from corrigible.errors import ConfigError, CorrigibleError
from corrigible.launch.schema import VerbConfig

EXIT_OK, EXIT_BAD_INPUT = 0, 2
Stage = Literal["base", "finetune", "eval", "all"]


class TrainHLConfig(VerbConfig):
    """One `corrigible train hl` invocation."""

    stage: Stage = "all"  # base | finetune | eval | all
    workdir: Path = Path("runs/hl")  # datasets, checkpoints, plots and eval.json go here
    sim: str = "mujoco"  # physics engine of every episode
    seed: int = 0  # training seed (split, weights, shuffling, dropout)
    demos: int = 40  # scripted-planner episodes for the base data
    demo_seed: int = 1000  # first layout seed of the demos
    corrected_episodes: int = 20  # episodes the person corrects (N)
    corrected_seed: int = 2000  # first layout seed of the corrected episodes
    eval_episodes: int = 30  # new seeds for the evaluation
    eval_seed: int = 3000  # first layout seed of the evaluation
    epochs: int = 60  # base training epochs
    finetune_epochs: int = 60  # fine-tuning epochs
    lr: float = 1e-3  # base learning rate
    finetune_lr: float = 1e-3  # fine-tuning learning rate
    correction_repeat: int = 8  # each correction sample's repeats per fine-tuning epoch
    threads: int = 1  # torch CPU threads (1: see config_high_level.TrainConfig.threads)

    @model_validator(mode="after")
    def _check(self) -> TrainHLConfig:
        from corrigible.sim_envs.backends.registry import BACKENDS

        if self.sim not in BACKENDS:
            raise ConfigError(f"--sim must be one of {BACKENDS.names()}, got {self.sim!r}")
        for name in ("demos", "corrected_episodes", "eval_episodes", "epochs", "finetune_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        for name in ("lr", "finetune_lr"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be in (0, 1), got {getattr(self, name)}"
                )
        if self.correction_repeat < 1:
            raise ConfigError(f"--correction-repeat must be >= 1, got {self.correction_repeat}")
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"--threads must be 1-64, got {self.threads}")
        for name in ("seed", "demo_seed", "corrected_seed", "eval_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}"
                )
        ranges = {
            "demos": (self.demo_seed, self.demos),
            "corrected episodes": (self.corrected_seed, self.corrected_episodes),
            "evaluation": (self.eval_seed, self.eval_episodes),
        }
        names = list(ranges)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                (s1, n1), (s2, n2) = ranges[a], ranges[b]
                if s1 < s2 + n2 and s2 < s1 + n1:
                    raise ConfigError(
                        f"the {a} seeds [{s1}, {s1 + n1}) overlap the {b} seeds [{s2}, {s2 + n2}); "
                        "evaluation must run on new seeds: move one of the --*-seed options"
                    )
        check_output_path(self.workdir / "eval.json", option="--workdir")
        return self

    @property
    def paths(self) -> dict[str, Path]:
        """Every file the stages read and write."""
        names = ("demos.npz", "base.pt", "base_loss.png", "corrections.npz", "finetuned.pt")
        out = {n.split(".")[0]: self.workdir / n for n in names}
        out["finetune_loss"] = self.workdir / "finetune_loss.png"
        out["eval"] = self.workdir / "eval.json"
        return out


def _say(text: str) -> None:
    print(escape(text), file=sys.stderr, flush=True)


def _bar(console: Any, label: str, total: int, work: Any) -> Any:
    """Runs `work(advance)` under a rich progress bar of `total` steps."""
    from corrigible.launch.progress import plain, progress_bar

    with progress_bar(console, eta=True) as progress:
        task = progress.add_task(plain(label), total=total)
        return work(lambda *_: progress.advance(task))


def _stage_base(cfg: TrainHLConfig, console: Any, text: Any) -> dict[str, Any]:
    from corrigible.policies.learned.high_level.config_high_level import (
        InstructorConfig,
        TrainConfig,
    )
    from corrigible.policies.learned.high_level.evaluation import record_demos
    from corrigible.policies.learned.high_level.task_family import CANDIDATES
    from corrigible.policies.learned.high_level.training import train_instructor

    model_cfg = InstructorConfig()
    p = cfg.paths
    t0 = time.perf_counter()
    seeds = range(cfg.demo_seed, cfg.demo_seed + cfg.demos)
    demos = _bar(
        console,
        "scripted demos",
        cfg.demos,
        lambda tick: record_demos(seeds, model_cfg, engine=cfg.sim, tick=tick),
    )
    demos.save(p["demos"])
    record_s = time.perf_counter() - t0
    report = _bar(
        console,
        "base training (epochs)",
        cfg.epochs,
        lambda tick: train_instructor(
            demos,
            candidates=CANDIDATES,
            model_cfg=model_cfg,
            cfg=TrainConfig(epochs=cfg.epochs, lr=cfg.lr, seed=cfg.seed, threads=cfg.threads),
            out=p["base"],
            text=text,
            plot=p["base_loss"],
            on_epoch=tick,
            meta={"stage": "base"},
        ),
    )
    succeeded = sum(bool(e["success"]) for e in demos.manifest.episodes)
    _say(
        f"# base: {cfg.demos} demos recorded in {record_s:.1f} s, trained in {report.wall_s:.1f} s"
    )
    return {
        "stage": "base",
        "demos": cfg.demos,
        "demo_samples": len(demos),
        "demo_success": round(succeeded / cfg.demos, 4),
        "record_wall_s": round(record_s, 1),
        "train_wall_s": round(report.wall_s, 1),
        "best_epoch": report.best_epoch,
        "final_train_loss": round(report.train_loss[-1], 4),
        "best_val_loss": round(min(report.val_loss), 4) if report.val_loss else None,
        "best_val_accuracy": round(max(report.val_accuracy), 4) if report.val_accuracy else None,
        "checkpoint": str(p["base"]),
        "plot": report.plot,
    }


def _stage_finetune(cfg: TrainHLConfig, console: Any, text: Any) -> dict[str, Any]:
    from corrigible.policies.learned.high_level.config_high_level import TrainConfig
    from corrigible.policies.learned.high_level.episodes import HLDataset
    from corrigible.policies.learned.high_level.evaluation import collect_corrections
    from corrigible.policies.learned.high_level.high_level import HighLevelPolicy
    from corrigible.policies.learned.high_level.training import train_instructor

    p = cfg.paths
    base = HighLevelPolicy.load(p["base"], text)
    demos = HLDataset.load(p["demos"])
    t0 = time.perf_counter()
    seeds = range(cfg.corrected_seed, cfg.corrected_seed + cfg.corrected_episodes)
    corrected = _bar(
        console,
        "corrected episodes",
        cfg.corrected_episodes,
        lambda tick: collect_corrections(base, seeds, engine=cfg.sim, tick=tick),
    )
    corrected.save(p["corrections"])
    collect_s = time.perf_counter() - t0
    n_fix = sum(s.source == "correction" for s in corrected.manifest.samples)
    report = _bar(
        console,
        "fine-tuning (epochs)",
        cfg.finetune_epochs,
        lambda tick: train_instructor(
            HLDataset.concat([demos, corrected]),
            candidates=base.candidates,
            model_cfg=base.cfg,
            cfg=TrainConfig(
                epochs=cfg.finetune_epochs,
                lr=cfg.finetune_lr,
                seed=cfg.seed,
                threads=cfg.threads,
                correction_repeat=cfg.correction_repeat,
                val_on="corrected",
            ),
            out=p["finetuned"],
            init=base.net,
            text=text,
            plot=p["finetune_loss"],
            on_epoch=tick,
            meta={"stage": "finetune", "base": str(p["base"])},
        ),
    )
    _say(
        f"# finetune: {cfg.corrected_episodes} corrected episodes ({n_fix} corrections) in "
        f"{collect_s:.1f} s, fine-tuned in {report.wall_s:.1f} s"
    )
    return {
        "stage": "finetune",
        "corrected_episodes": cfg.corrected_episodes,
        "corrections": n_fix,
        "corrections_per_episode": round(n_fix / cfg.corrected_episodes, 4),
        "collect_wall_s": round(collect_s, 1),
        "train_wall_s": round(report.wall_s, 1),
        "best_epoch": report.best_epoch,
        "final_train_loss": round(report.train_loss[-1], 4),
        "best_val_loss": round(min(report.val_loss), 4) if report.val_loss else None,
        "checkpoint": str(p["finetuned"]),
        "plot": report.plot,
    }


def _stage_eval(cfg: TrainHLConfig, console: Any, text: Any) -> dict[str, Any]:
    from corrigible.policies.learned.high_level.evaluation import evaluate
    from corrigible.policies.learned.high_level.high_level import HighLevelPolicy

    p = cfg.paths
    policies = {name: HighLevelPolicy.load(p[name], text) for name in ("base", "finetuned")}
    seeds = list(range(cfg.eval_seed, cfg.eval_seed + cfg.eval_episodes))
    t0 = time.perf_counter()
    results = {
        name: _bar(
            console,
            f"evaluating {name} (2 runs per seed)",
            2 * len(seeds),
            lambda tick, pol=pol: evaluate(pol, seeds, engine=cfg.sim, tick=tick),
        )
        for name, pol in policies.items()
    }
    before, after = results["base"], results["finetuned"]
    summary = {
        "stage": "eval",
        "eval_episodes": len(seeds),
        "success_before": before["success"],
        "success_after": after["success"],
        "success_gain_points": round(100 * (after["success"] - before["success"]), 1),
        "corrections_per_episode_before": before["corrections_per_episode"],
        "corrections_per_episode_after": after["corrections_per_episode"],
        "eval_wall_s": round(time.perf_counter() - t0, 1),
        "before": before,
        "after": after,
    }
    p["eval"].parent.mkdir(parents=True, exist_ok=True)
    p["eval"].write_text(json.dumps(summary, indent=2))
    return summary


def run(cfg: TrainHLConfig) -> int:
    """Runs the stage(s), prints each stage's JSON line, and returns the exit status."""
    from rich.console import Console

    from corrigible.policies.learned.high_level.high_level import TextCache
    from corrigible.text_embedding import get_text_embedder

    console = Console(stderr=True)
    stages = ("base", "finetune", "eval") if cfg.stage == "all" else (cfg.stage,)
    steps = {"base": _stage_base, "finetune": _stage_finetune, "eval": _stage_eval}
    text = TextCache(get_text_embedder())
    for name in stages:
        t0 = time.perf_counter()
        try:
            result = steps[name](cfg, console, text)
        except CorrigibleError as exc:
            _say(f"error: {exc}")
            return EXIT_BAD_INPUT
        result["stage_wall_s"] = round(time.perf_counter() - t0, 1)
        _say(f"# stage {name} took {result['stage_wall_s']:.1f} s")
        shown = {k: v for k, v in result.items() if k not in ("before", "after")}
        if name == "eval":
            shown["per_episode_in"] = str(cfg.paths["eval"])
        print(json.dumps(shown), flush=True)
    return EXIT_OK


def register(train_app: typer.Typer) -> None:
    """Adds `hl` to the `train` verb."""

    @train_app.command("hl")
    def hl_cmd(
        stage: str = typer.Option("all", help="base | finetune | eval | all"),
        workdir: Path = typer.Option(Path("runs/hl"), help="where data, checkpoints, plots go"),
        sim: str = typer.Option("mujoco", "--sim", help="mujoco | pybullet"),
        seed: int = typer.Option(0, help="training seed"),
        demos: int = typer.Option(40, help="scripted-planner episodes (base data)"),
        corrected_episodes: int = typer.Option(20, help="episodes the person corrects"),
        eval_episodes: int = typer.Option(30, help="new seeds for the evaluation"),
        epochs: int = typer.Option(60, help="base training epochs"),
        finetune_epochs: int = typer.Option(60, help="fine-tuning epochs"),
        lr: float = typer.Option(1e-3, help="base learning rate"),
        finetune_lr: float = typer.Option(1e-3, help="fine-tuning learning rate"),
        correction_repeat: int = typer.Option(
            8, help="repeats of each correction sample per fine-tuning epoch"
        ),
        demo_seed: int = typer.Option(1000, help="first layout seed of the demos"),
        corrected_seed: int = typer.Option(2000, help="first seed of the corrected episodes"),
        eval_seed: int = typer.Option(3000, help="first seed of the evaluation"),
        threads: int = typer.Option(1, help="torch CPU threads (1 is fastest on shared cores)"),
    ) -> None:
        """Train the high level (YAY instructor), fine-tune it on corrections, evaluate it."""
        try:
            cfg = TrainHLConfig(
                stage=stage,
                workdir=workdir,
                sim=sim,
                seed=seed,
                demos=demos,
                corrected_episodes=corrected_episodes,
                eval_episodes=eval_episodes,
                epochs=epochs,
                finetune_epochs=finetune_epochs,
                lr=lr,
                finetune_lr=finetune_lr,
                correction_repeat=correction_repeat,
                demo_seed=demo_seed,
                corrected_seed=corrected_seed,
                eval_seed=eval_seed,
                threads=threads,
            )
        except CorrigibleError as exc:
            _say(f"error: {exc}")
            raise typer.Exit(EXIT_BAD_INPUT) from exc
        raise typer.Exit(run(cfg))
