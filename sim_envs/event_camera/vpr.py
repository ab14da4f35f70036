"""Event-based visual place recognition: count frames, patch normalisation, SAD, Recall@N.

Follows the protocol of fast-slow-biased-event-vpr (reference doc §5): events are binned into
66 ms windows with separate ON/OFF channels, each window becomes a patch-normalised feature, and
every query is matched to the reference windows by the sum of absolute differences (SAD). A
match is correct when the matched reference position lies within `tolerance_m` of the query's.

Deviation, for speed: counts are summed over `pool` x `pool` pixel blocks before the patch
normalisation (the paper's full-resolution SAD would cost ~40 G operations per query set on
the CPU); `patch` is then measured in pooled cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corrigible.errors import ConfigError
from corrigible.sim_envs.event_camera.events_io import EVENT_DTYPE


@dataclass(kw_only=True)
class VprConfig:
    """Place-recognition parameters (the `vpr:` section of the eval YAML)."""

    window_s: float = 0.066  # event-count frame length, s (paper: 66 ms)
    pool: int = 8  # pixels per side summed into one cell before normalisation
    patch: int = 4  # patch side for patch normalisation, in pooled cells
    tolerance_m: float = 2.0  # a match is correct within this distance, m
    recall_at: tuple[int, ...] = (1, 5)  # N of the reported Recall@N

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ConfigError(f"vpr.window_s={self.window_s!r} must be > 0 s.")
        if not (isinstance(self.pool, int) and self.pool >= 1):
            raise ConfigError(f"vpr.pool={self.pool!r} must be an int >= 1.")
        if not (isinstance(self.patch, int) and self.patch >= 1):
            raise ConfigError(f"vpr.patch={self.patch!r} must be an int >= 1.")
        if not self.tolerance_m > 0:
            raise ConfigError(f"vpr.tolerance_m={self.tolerance_m!r} must be > 0 m.")
        self.recall_at = tuple(int(n) for n in self.recall_at)
        if not self.recall_at or min(self.recall_at) < 1:
            raise ConfigError(f"vpr.recall_at={self.recall_at!r} must list Ns >= 1.")


class CountFrameAccumulator:
    """Bins a stream of events into pooled ON/OFF count frames of fixed duration."""

    def __init__(self, cfg: VprConfig, *, width: int, height: int, duration_s: float) -> None:
        self.cfg = cfg
        self.width, self.height = width, height
        self.cells_x = width // cfg.pool
        self.cells_y = height // cfg.pool
        self._window_us = cfg.window_s * 1e6
        self.n_windows = int(np.ceil(duration_s / cfg.window_s))
        self._cells = self.cells_x * self.cells_y
        self._counts = np.zeros(self.n_windows * 2 * self._cells, np.float64)

    def add(self, events: np.ndarray) -> None:
        """Adds events (of `EVENT_DTYPE`); events outside the pooled area or time are dropped."""
        if len(events) == 0:
            return
        if events.dtype != EVENT_DTYPE:
            raise ConfigError(f"events have dtype {events.dtype}, expected {EVENT_DTYPE}.")
        cx = events["x"] // self.cfg.pool
        cy = events["y"] // self.cfg.pool
        w = (events["t"] / self._window_us).astype(np.int64)
        ok = (cx < self.cells_x) & (cy < self.cells_y) & (w >= 0) & (w < self.n_windows)
        flat = ((w * 2 + events["p"]) * self.cells_y + cy) * self.cells_x + cx
        self._counts += np.bincount(flat[ok], minlength=len(self._counts))

    def frames(self) -> np.ndarray:
        """(n_windows, 2, cells_y, cells_x) counts; channel 0 OFF, 1 ON."""
        return self._counts.reshape(self.n_windows, 2, self.cells_y, self.cells_x).copy()

    def window_centers_s(self) -> np.ndarray:
        """Centre time of each window, s."""
        return (np.arange(self.n_windows) + 0.5) * self.cfg.window_s


def patch_normalise(frames: np.ndarray, patch: int) -> np.ndarray:
    """Zero-mean, unit-variance normalisation inside non-overlapping patches (per channel).

    Removes the overall event-count level, which is what changes most between lighting
    conditions and bias settings, and keeps the spatial pattern.

    Args:
        frames: (n, c, h, w) count frames; h and w are cropped to multiples of `patch`.
        patch: patch side in cells.

    Returns:
        (n, c * h' * w') float32 features.
    """
    n, c, h, w = frames.shape
    hh, ww = (h // patch) * patch, (w // patch) * patch
    if hh == 0 or ww == 0:
        raise ConfigError(f"patch={patch} is larger than the pooled frame {h}x{w}; lower it.")
    x = frames[:, :, :hh, :ww].reshape(n, c, hh // patch, patch, ww // patch, patch)
    mean = x.mean(axis=(3, 5), keepdims=True)
    std = x.std(axis=(3, 5), keepdims=True)
    x = (x - mean) / np.where(std > 1e-6, std, 1.0)
    return x.reshape(n, -1).astype(np.float32)


def sad_matrix(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Mean absolute difference between every query and reference feature, (nq, nr)."""
    import torch

    q = torch.from_numpy(np.ascontiguousarray(queries))
    r = torch.from_numpy(np.ascontiguousarray(references))
    with torch.no_grad():
        d = torch.cdist(q, r, p=1.0) / q.shape[1]
    return d.numpy()


def recall_at_n(
    distances: np.ndarray,
    query_xy: np.ndarray,
    ref_xy: np.ndarray,
    *,
    tolerance_m: float,
    ns: tuple[int, ...],
) -> dict[int, float]:
    """Recall@N: the fraction of queries with a correct match among their N best references.

    Args:
        distances: (nq, nr) SAD distances, smaller is better.
        query_xy: (nq, 2) query positions, m.
        ref_xy: (nr, 2) reference positions, m.
        tolerance_m: a reference within this distance of the query is correct.
        ns: the Ns to report.
    """
    if len(query_xy) == 0:
        return {n: float("nan") for n in ns}
    order = np.argsort(distances, axis=1, kind="stable")
    gap = np.linalg.norm(query_xy[:, None, :] - ref_xy[None, :, :], axis=2)
    correct_sorted = np.take_along_axis(gap <= tolerance_m, order, axis=1)
    hit_rank = np.where(correct_sorted.any(axis=1), correct_sorted.argmax(axis=1), np.inf)
    return {n: float(np.mean(hit_rank < n)) for n in ns}
