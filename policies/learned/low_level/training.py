"""Behaviour cloning of the low level on recorded demonstrations, seeded and CPU only."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import ConfigError
from corrigible.policies.learned.low_level.config_low_level import (
    LowLevelModelConfig,
    TrainConfig,
)
from corrigible.policies.learned.low_level.demos import Demonstrations
from corrigible.policies.learned.low_level.low_level import PRIMITIVE_DIM, LowLevelPolicy


@dataclass
class TrainHistory:
    """Per-epoch losses and the wall time of training."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    train_samples: int = 0
    val_samples: int = 0
    best_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def split_episodes(episodes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of validation samples: whole layouts, never half an episode."""
    unique = np.unique(episodes)
    n_val = int(round(fraction * len(unique)))
    if fraction > 0 and len(unique) > 1:
        n_val = max(1, min(n_val, len(unique) - 1))
    else:
        n_val = 0
    chosen = np.random.default_rng(seed).permutation(unique)[:n_val]
    return np.isin(episodes, chosen)


def _heatmap_loss(torch: Any, logits: Any, kp: Any, has_kp: Any, height: int, width: int) -> Any:
    """Cross-entropy of the first map's softmax against a Gaussian bump on the object.

    A classification over positions gives the detector a strong gradient from the first step,
    where regressing the soft-argmax alone barely moves a near-uniform softmax.
    """
    ys = torch.linspace(-1, 1, height)[:, None].expand(height, width).reshape(-1)
    xs = torch.linspace(-1, 1, width)[None, :].expand(height, width).reshape(-1)
    sigma = 1.5 * 2 / width  # 1.5 feature cells
    d2 = (xs[None] - kp[:, :1]) ** 2 + (ys[None] - kp[:, 1:]) ** 2
    target = torch.softmax(-d2 / (2 * sigma**2), dim=-1)
    ce = -(target * torch.log_softmax(logits, dim=-1)).sum(-1)
    return (ce * has_kp).sum() / has_kp.sum().clamp(min=1)


def _loss(
    torch: Any,
    output: tuple[Any, Any],
    labels: Any,
    done: Any,
    kp: Any,
    has_kp: Any,
    chunk: int,
    shape: tuple[int, int],
) -> Any:
    """Position (dm, Huber), yaw (cos/sin of 4x), gripper and done (logistic) losses.

    Plus the auxiliary keypoint loss: the first feature map's keypoint should sit on the
    skill's object (the block to pick, the bowl to place in), which the simulator knows while
    demonstrations are recorded. It teaches the trunk to find the named object far sooner than
    the action loss alone; at run time the policy sees only the image.
    """
    f = torch.nn.functional
    out, logits = output
    aux = _heatmap_loss(torch, logits, kp, has_kp, *shape)
    pred = out[:, : chunk * PRIMITIVE_DIM].reshape(-1, chunk, PRIMITIVE_DIM)
    target = labels[:, :chunk]
    pos = f.smooth_l1_loss(pred[..., :3], target[..., :3], beta=0.05)
    yaw = f.mse_loss(pred[..., 3:5], target[..., 3:5])
    grip = f.binary_cross_entropy_with_logits(pred[..., 5] * 4, (target[..., 5] > 0).float())
    stop = f.binary_cross_entropy_with_logits(out[:, -1], done)
    return 4 * pos + yaw + 0.5 * grip + 0.5 * stop + 0.5 * aux


def train(
    demos: Demonstrations,
    train_config: TrainConfig,
    model_config: LowLevelModelConfig | None = None,
    *,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> tuple[LowLevelPolicy, TrainHistory]:
    """Trains a policy on `demos`; keeps the weights of the best validation epoch.

    Args:
        demos: the samples (`demos.collect`).
        train_config: epochs, batch size, learning rate, split and seed.
        model_config: the network (default shapes when None).
        meta: recorded in the checkpoint (engines, seeds, ...).
        progress: called as (epoch, epochs, train loss, validation loss) after each epoch.

    Raises:
        ConfigError: there are no samples.
    """
    import torch

    if len(demos) == 0:
        raise ConfigError(
            "no demonstrations to train on (every scripted execution failed?); "
            "collect more episodes with --episodes"
        )
    model_config = model_config or LowLevelModelConfig()
    torch.manual_seed(train_config.seed)
    torch.set_num_threads(train_config.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    t0 = time.perf_counter()
    data = demos.arrays()
    expected = (model_config.image_height, model_config.image_width, 3)
    if data["images"].shape[1:] != expected:
        raise ConfigError(
            f"demonstration images are {data['images'].shape[1:]}, the network reads {expected}"
        )
    policy = LowLevelPolicy(model_config, meta=meta)
    language = policy.embed(demos.texts)
    val_mask = split_episodes(data["episode"], train_config.val_fraction, train_config.seed)
    tensors = {
        "images": torch.from_numpy(np.ascontiguousarray(data["images"].transpose(0, 3, 1, 2))),
        "proprio": torch.from_numpy(data["proprio"]),
        "language": torch.from_numpy(language),
        "labels": torch.from_numpy(data["labels"]),
        "done": torch.from_numpy(data["done"]),
        "kp": torch.from_numpy(data["keypoints"]),
        "has_kp": torch.from_numpy(data["has_keypoint"]),
    }
    train_idx = np.flatnonzero(~val_mask)
    val_idx = np.flatnonzero(val_mask)
    history = TrainHistory(train_samples=len(train_idx), val_samples=len(val_idx))
    net = policy.net
    optimiser = torch.optim.AdamW(
        net.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay
    )
    steps = train_config.epochs * max(1, -(-len(train_idx) // train_config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=train_config.lr, total_steps=steps, pct_start=0.1
    )
    order_rng = np.random.default_rng(train_config.seed)
    chunk = model_config.chunk
    shape = ((model_config.image_height + 1) // 2, (model_config.image_width + 1) // 2)
    best, best_state = float("inf"), None

    def batch(idx: np.ndarray) -> list[Any]:
        i = torch.from_numpy(idx)
        names = ("images", "proprio", "language", "labels", "done", "kp", "has_kp")
        return [tensors[k][i] for k in names]

    for epoch in range(1, train_config.epochs + 1):
        net.train()
        total, count = 0.0, 0
        for start in range(0, len(train_idx), train_config.batch_size):
            idx = order_rng.permutation(train_idx)[start : start + train_config.batch_size]
            images, proprio, lang, labels, done, kp, has_kp = batch(idx)
            loss = _loss(torch, net(images, proprio, lang), labels, done, kp, has_kp, chunk, shape)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        history.train_loss.append(total / max(count, 1))
        net.eval()
        val = float("nan")
        if len(val_idx):
            with torch.no_grad():
                parts = []
                for start in range(0, len(val_idx), 256):
                    images, proprio, lang, labels, done, kp, has_kp = batch(
                        val_idx[start : start + 256]
                    )
                    out = net(images, proprio, lang)
                    loss = _loss(torch, out, labels, done, kp, has_kp, chunk, shape)
                    parts.append(float(loss) * len(labels))
                val = sum(parts) / len(val_idx)
        history.val_loss.append(val)
        score = val if len(val_idx) else history.train_loss[-1]
        if score < best:
            best, history.best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if progress is not None:
            progress(epoch, train_config.epochs, history.train_loss[-1], val)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    history.wall_s = time.perf_counter() - t0
    policy.meta.update({"best_epoch": history.best_epoch, "train_wall_s": history.wall_s})
    return policy, history


def plot_losses(history: TrainHistory, path: Path) -> Path:
    """Writes the training and validation loss curves as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = range(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, label="train")
    if any(np.isfinite(history.val_loss)):
        ax.plot(epochs, history.val_loss, label="validation")
    ax.axvline(history.best_epoch, color="gray", linestyle=":", label="kept")
    ax.set_xlabel("epoch")
    ax.set_ylabel("behaviour-cloning loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("learned low level")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
