"""`corrigible train ll`: train the learned low level on the scripted skills' executions.

Example:
    corrigible train ll --episodes 40 --epochs 5 --sim mujoco --seed 0 --out runs/ll.pt
    corrigible train ll --eval-only runs/ll.pt --sim mujoco,pybullet --layouts 20

Collects demonstrations (scripted pick, correction phrasings, place on random training layouts;
`policies/learned/low_level/README.md`), trains the policy by behaviour cloning with a
validation split of whole layouts, and writes the checkpoint (`--out`, the best validation
epoch), the last epoch's weights (`<out>.last.pt`), the loss plot (`<out>.png`) and a summary
(`<out>.json`: wall times of collection and training, losses, sample counts). Seeded and CPU
only: one seed gives the same checkpoint. `--demos FILE` keeps the demonstrations: an existing
file is trained on instead of collecting again.

`--eval-only CKPT` measures pick and place success of the learned vs the scripted low level on
held-out layouts in each engine of `--sim`, judged from the simulator's state, and prints JSON.

Exit status: 0 on success, 2 for bad input (an option, a checkpoint or a demonstrations file
that cannot be used).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, field_validator

from corrigible.boundary import check_output_path, escape
from corrigible.errors import ConfigError
from corrigible.launch.schema import VerbConfig

EXIT_OK, EXIT_BAD_INPUT = 0, 2


class TrainLowLevelConfig(VerbConfig):
    """`corrigible train ll` options."""

    episodes: int = Field(default=240, ge=1)  # training layouts to record
    # engines, episodes split across them in turn (comma list; repeat one to weight it)
    sim: tuple[str, ...] = ("mujoco", "mujoco", "pybullet")
    seed: int = Field(default=0, ge=0)  # seeds collection, initial weights, batches, split
    out: Path = Path("runs/ll.pt")  # checkpoint; .png plot, .json summary, .last.pt beside it
    epochs: int = Field(default=30, ge=1)  # training epochs
    batch_size: int = Field(default=16, ge=1)  # samples per gradient step
    lr: float = Field(default=2e-3, gt=0, allow_inf_nan=False)  # AdamW learning rate
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)  # layouts held for validation
    nudges: int = Field(default=2, ge=0, le=6)  # correction phrasings per episode
    channels: int = Field(default=16, ge=4, le=128)  # conv feature maps of the network
    # torch CPU threads; 1 by default: on a shared 2-core machine two OpenMP threads ran
    # epochs 3-6x slower than one whenever another process held a core
    threads: int = Field(default=1, ge=1, le=64)
    demos: Path | None = None  # demonstrations .npz: read if present, else written
    collect_only: bool = False  # only record the demonstrations (into --demos)
    eval_only: Path | None = None  # evaluate this checkpoint instead of training
    eval_after: bool = False  # also evaluate the trained checkpoint
    layouts: int = Field(default=20, ge=1)  # held-out layouts per engine for evaluation
    perception: str = "camera"  # where the scripted skills aim in evaluation

    @field_validator("sim", mode="before")
    @classmethod
    def _engines(cls, value: Any) -> tuple[str, ...]:
        from corrigible.sim_envs.backends.registry import BACKENDS

        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not value:
            raise ConfigError("--sim is empty; give e.g. mujoco or mujoco,pybullet")
        return tuple(BACKENDS.canonical(v.strip()) for v in value)

    @field_validator("perception")
    @classmethod
    def _perception(cls, value: str) -> str:
        if value not in ("camera", "privileged"):
            raise ConfigError(f"--perception must be camera or privileged, got {value!r}")
        return value


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def evaluate_checkpoint(cfg: TrainLowLevelConfig, checkpoint: Path) -> dict[str, Any]:
    """Runs the held-out evaluation with a progress bar; returns the report."""
    from corrigible.launch.progress import progress_bar
    from corrigible.policies.learned.low_level.evaluate import evaluate

    with progress_bar(_console(), eta=True) as bar:
        engines = tuple(dict.fromkeys(cfg.sim))
        tasks = {e: bar.add_task(f"evaluate {e}", total=cfg.layouts) for e in engines}
        t0 = time.perf_counter()
        report = evaluate(
            checkpoint,
            engines,
            cfg.layouts,
            perception=cfg.perception,
            progress=lambda engine, done, _total: bar.update(tasks[engine], completed=done),
        )
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    return report


def run(cfg: TrainLowLevelConfig) -> dict[str, Any]:
    """Collects, trains and writes the checkpoint (or only evaluates); returns the summary.

    Raises:
        ConfigError: an unusable option, checkpoint or demonstrations file.
    """
    from corrigible.launch.progress import progress_bar
    from corrigible.policies.learned.low_level.config_low_level import (
        CollectConfig,
        LowLevelModelConfig,
        TrainConfig,
    )
    from corrigible.policies.learned.low_level.demos import Demonstrations, collect
    from corrigible.policies.learned.low_level.training import plot_losses, train

    if cfg.eval_only is not None:
        return evaluate_checkpoint(cfg, cfg.eval_only)
    if cfg.collect_only and cfg.demos is None:
        raise ConfigError("--collect-only needs --demos FILE to write the demonstrations to")
    if cfg.collect_only and cfg.demos is not None and cfg.demos.exists():
        raise ConfigError(f"--demos {escape(cfg.demos)} exists; give a new file to collect into")
    check_output_path(cfg.out, option="--out")
    collect_cfg = CollectConfig(
        episodes=cfg.episodes, engines=cfg.sim, seed=cfg.seed, nudges=cfg.nudges
    )
    t0 = time.perf_counter()
    read = cfg.demos is not None and cfg.demos.exists()
    if read:
        demos = Demonstrations.load(cfg.demos)
        recorded = demos.stats.get("collect_wall_s")
        when = "collection time not recorded" if recorded is None else f"collected in {recorded} s"
        print(f"# read {len(demos)} samples from {escape(cfg.demos)} ({when})", file=sys.stderr)
    else:
        with progress_bar(_console(), eta=True) as bar:
            task = bar.add_task("collect demonstrations", total=cfg.episodes)
            demos = collect(
                collect_cfg,
                progress=lambda done, _n, engine: bar.update(
                    task, completed=done, description=f"collect ({engine})"
                ),
            )
        if len(demos) == 0:
            raise ConfigError(
                "every scripted execution failed, so there is nothing to train on; "
                "try more --episodes or another --seed"
            )
        demos.stats["collect_wall_s"] = round(time.perf_counter() - t0, 1)
        if cfg.demos is not None:
            demos.save(cfg.demos)
    # the collection's own wall time, also when the demonstrations were read from --demos
    collect_s = float(demos.stats.get("collect_wall_s", time.perf_counter() - t0))
    if cfg.collect_only:
        print(
            f"# collection {collect_s:.1f} s: {len(demos)} samples into {escape(cfg.demos)}",
            file=sys.stderr,
        )
        return {
            "demos": str(cfg.demos),
            "collect_wall_s": round(collect_s, 1),
            "samples": len(demos),
            "collect_stats": demos.stats,
        }
    meta = {
        "engines": list(cfg.sim),
        "episodes": cfg.episodes,
        "seed": cfg.seed,
        "layout_seeds": [collect_cfg.layout_seed(0), collect_cfg.layout_seed(cfg.episodes - 1)],
        "pick_kinds": ["block"],
        "place_kinds": ["bowl"],
        "samples": len(demos),
        "collect_stats": demos.stats,
    }
    train_cfg = TrainConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        val_fraction=cfg.val_fraction,
        seed=cfg.seed,
        threads=cfg.threads,
    )
    with progress_bar(_console(), label="{task.description}", eta=True) as bar:
        task = bar.add_task("train", total=cfg.epochs)
        policy, history = train(
            demos,
            train_cfg,
            LowLevelModelConfig(channels=cfg.channels),
            meta=meta,
            progress=lambda epoch, _n, tr, va: bar.update(
                task, completed=epoch, description=f"train loss {tr:.4f} val {va:.4f}"
            ),
        )
    policy.meta["collect_wall_s"] = collect_s
    policy.save(cfg.out)
    plot = plot_losses(history, cfg.out.with_suffix(".png"))
    summary: dict[str, Any] = {
        "checkpoint": str(cfg.out),
        "plot": str(plot),
        "fingerprint": policy.fingerprint(),
        "collect_wall_s": round(collect_s, 1),
        "demos_read_from": str(cfg.demos) if read else None,
        "train_wall_s": round(history.wall_s, 1),
        "samples": len(demos),
        "collect_stats": demos.stats,
        "history": history.to_dict(),
    }
    if cfg.eval_after:
        summary["evaluation"] = evaluate_checkpoint(cfg, cfg.out)
    cfg.out.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    print(
        f"# collection {collect_s:.1f} s ({len(demos)} samples"
        f"{', read from --demos' if read else ''}), training {history.wall_s:.1f} s "
        f"({cfg.epochs} epochs, best {history.best_epoch}); checkpoint {escape(cfg.out)}, "
        f"plot {escape(plot)}",
        file=sys.stderr,
    )
    return summary


def register(train_app: typer.Typer) -> None:
    """Adds the `ll` sub-command to `corrigible train`."""

    @train_app.command("ll")
    def train_ll(
        episodes: int = typer.Option(240, help="training layouts to record"),
        sim: str = typer.Option(
            "mujoco,mujoco,pybullet", help="engines in turn, comma separated (repeat to weight)"
        ),
        seed: int = typer.Option(0, help="seed of collection, weights, batches and split"),
        out: Path = typer.Option(Path("runs/ll.pt"), help="checkpoint (+ .png, .json)"),
        epochs: int = typer.Option(30, help="training epochs"),
        batch_size: int = typer.Option(16, help="samples per gradient step"),
        lr: float = typer.Option(2e-3, help="AdamW learning rate"),
        val_fraction: float = typer.Option(0.1, help="share of layouts held for validation"),
        nudges: int = typer.Option(2, help="correction phrasings per episode"),
        channels: int = typer.Option(16, help="conv feature maps of the network"),
        threads: int = typer.Option(1, help="torch CPU threads"),
        demos: Path | None = typer.Option(None, help="demonstrations .npz: read or written"),
        collect_only: bool = typer.Option(False, help="only record demonstrations (--demos)"),
        eval_only: Path | None = typer.Option(None, help="only evaluate this checkpoint"),
        eval_after: bool = typer.Option(False, help="evaluate the trained checkpoint too"),
        layouts: int = typer.Option(20, help="held-out layouts per engine (evaluation)"),
        perception: str = typer.Option("camera", help="scripted aim in evaluation"),
    ) -> None:
        """Train (or evaluate) the learned low level: pick and place from camera and language."""
        try:
            cfg = TrainLowLevelConfig(
                episodes=episodes,
                sim=sim,
                seed=seed,
                out=out,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                val_fraction=val_fraction,
                nudges=nudges,
                channels=channels,
                threads=threads,
                demos=demos,
                collect_only=collect_only,
                eval_only=eval_only,
                eval_after=eval_after,
                layouts=layouts,
                perception=perception,
            )
            summary = run(cfg)
        except ConfigError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from exc
        if cfg.eval_only is not None or cfg.collect_only:
            print(json.dumps(summary, indent=2))
        else:
            print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
