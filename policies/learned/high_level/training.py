"""Training the instructor: a seeded episode-level split, Adam, a best-on-validation checkpoint.

Used for both stages. The base run starts from seeded random weights on the scripted planner's
episodes; fine-tuning starts from the base weights on the corrected episodes mixed with the
original data, each correction sample repeated `correction_repeat` times per epoch (YAY
fine-tunes on the corrections mixed with the original data).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from corrigible.errors import ConfigError
from corrigible.policies.learned.high_level.config_high_level import InstructorConfig, TrainConfig
from corrigible.policies.learned.high_level.episodes import HLDataset
from corrigible.policies.learned.high_level.high_level import (
    InstructorNet,
    TextCache,
    encode,
    save_checkpoint,
    scores,
)


@dataclass
class TrainReport:
    """What a training run did."""

    checkpoint: str  # where the best-on-validation weights were written
    epochs: int
    best_epoch: int  # 1-based
    train_loss: list[float] = field(default_factory=list)  # per epoch
    val_loss: list[float] = field(default_factory=list)  # per epoch (empty without validation)
    val_accuracy: list[float] = field(default_factory=list)  # per epoch, fraction
    n_train: int = 0  # samples per epoch (with repeated corrections)
    n_val: int = 0
    n_corrections: int = 0  # correction samples in the training split
    wall_s: float = 0.0  # the whole run, encoding included
    plot: str | None = None


def seed_everything(seed: int, threads: int) -> torch.Generator:
    """Deterministic torch on CPU: seeded weights and dropout, deterministic kernels."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def split_episodes(
    data: HLDataset, val_fraction: float, seed: int, *, only_corrected: bool = False
) -> tuple[list[int], list[int]]:
    """Sample indices of the training and validation splits, whole episodes to each side.

    Args:
        data: the samples.
        val_fraction: fraction of the eligible episodes held out.
        seed: seeds which episodes are held out.
        only_corrected: draw validation episodes only among those a person watched (with
            samples not from the scripted planner); the others all train.
    """
    samples = data.manifest.samples
    episodes = sorted({s.episode for s in samples})
    if only_corrected:
        episodes = sorted({s.episode for s in samples if s.source != "demo"})
    rng = np.random.default_rng([seed, 7])
    n_val = int(round(val_fraction * len(episodes)))
    if val_fraction > 0 and len(episodes) >= 2:
        n_val = min(max(n_val, 1), len(episodes) - 1)
    else:
        n_val = 0
    val_eps = set(rng.permutation(episodes)[:n_val].tolist())
    train = [i for i, s in enumerate(samples) if s.episode not in val_eps]
    val = [i for i, s in enumerate(samples) if s.episode in val_eps]
    return train, val


def _tensors(
    data: HLDataset, cfg: InstructorConfig, text: TextCache, candidates: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    inputs = encode([data.observation(i) for i in range(len(data))], cfg, text)
    index = {c: k for k, c in enumerate(candidates)}
    unknown = sorted({s.label for s in data.manifest.samples} - set(index))
    if unknown:
        raise ConfigError(f"labels {unknown} are not candidate instructions {list(candidates)}")
    labels = torch.tensor([index[s.label] for s in data.manifest.samples], dtype=torch.long)
    return inputs, labels


def train_instructor(
    data: HLDataset,
    *,
    candidates: tuple[str, ...],
    model_cfg: InstructorConfig,
    cfg: TrainConfig,
    out: Path,
    init: InstructorNet | None = None,
    text: TextCache,
    plot: Path | None = None,
    on_epoch: Callable[[int, float, float | None], None] | None = None,
    meta: dict[str, object] | None = None,
) -> TrainReport:
    """Trains (or fine-tunes `init`) and writes the best-on-validation checkpoint to `out`.

    Args:
        data: the samples (demo, policy and correction samples alike: the label is the target).
        candidates: the instructions the network chooses among.
        model_cfg: the network's shape (ignored when `init` is given: its own is used).
        cfg: the run's settings.
        out: checkpoint path.
        init: weights to start from (fine-tuning); None starts from seeded random weights.
        text: the MiniLM cache (`TextCache`).
        plot: where to draw the loss curves (PNG); None draws none.
        on_epoch: called after each epoch with (epoch, train loss, val loss or None).
        meta: stored in the checkpoint next to the run's figures.

    Raises:
        ConfigError: no samples, or a label that is not a candidate.
    """
    if len(data) == 0:
        raise ConfigError("no samples to train on; record episodes first")
    t0 = time.perf_counter()
    gen = seed_everything(cfg.seed, cfg.threads)
    # Fine-tuning trains a copy: the caller's network (the base policy) stays as it was.
    net = copy.deepcopy(init) if init is not None else InstructorNet(model_cfg)
    mcfg = net.cfg
    inputs, labels = _tensors(data, mcfg, text, candidates)
    cand = torch.from_numpy(text(list(candidates)))
    train_idx, val_idx = split_episodes(
        data, cfg.val_fraction, cfg.seed, only_corrected=cfg.val_on == "corrected"
    )
    is_fix = [data.manifest.samples[i].source == "correction" for i in train_idx]
    epoch_idx = torch.tensor(
        [
            i
            for i, fix in zip(train_idx, is_fix, strict=True)
            for _ in range(cfg.correction_repeat if fix else 1)
        ],
        dtype=torch.long,
    )
    val_t = torch.tensor(val_idx, dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    report = TrainReport(
        checkpoint=str(out),
        epochs=cfg.epochs,
        best_epoch=0,
        n_train=len(epoch_idx),
        n_val=len(val_idx),
        n_corrections=sum(is_fix),
    )
    best = float("inf")
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        order = epoch_idx[torch.randperm(len(epoch_idx), generator=gen)]
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            logits = scores(net(**{k: v[batch] for k, v in inputs.items()}), cand, mcfg.temperature)
            loss = loss_fn(logits, labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        report.train_loss.append(total / len(order))
        val_loss = None
        if len(val_t):
            net.eval()
            with torch.no_grad():
                logits = scores(
                    net(**{k: v[val_t] for k, v in inputs.items()}), cand, mcfg.temperature
                )
                val_loss = float(loss_fn(logits, labels[val_t]))
                acc = float((logits.argmax(1) == labels[val_t]).float().mean())
            report.val_loss.append(val_loss)
            report.val_accuracy.append(acc)
        watched = val_loss if val_loss is not None else report.train_loss[-1]
        if watched < best:
            best, report.best_epoch = watched, epoch
            save_checkpoint(
                net, candidates, out, {**(meta or {}), "epoch": epoch, "seed": cfg.seed}
            )
        if on_epoch is not None:
            on_epoch(epoch, report.train_loss[-1], val_loss)
    report.wall_s = time.perf_counter() - t0
    if plot is not None:
        report.plot = str(plot_losses(report, plot))
    return report


def plot_losses(report: TrainReport, path: Path) -> Path:
    """Draws training and validation loss per epoch to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = range(1, len(report.train_loss) + 1)
    ax.plot(epochs, report.train_loss, label="train")
    if report.val_loss:
        ax.plot(epochs, report.val_loss, label="validation")
    ax.axvline(report.best_epoch, color="grey", linestyle=":", label="checkpoint")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy over candidate instructions")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
