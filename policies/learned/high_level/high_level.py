"""Yell At Your Robot's instructor: frames, task and recent instructions -> next instruction.

The network predicts a MiniLM sentence embedding; the instruction it chooses is the candidate
with the highest cosine similarity (so a correction's words are matched the same way). Loss is
the cross-entropy of the temperature-scaled cosines over the candidates. Checkpoints are plain
`torch.save` dicts (tensors and builtins only, loaded with `weights_only=True`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from corrigible.errors import CheckpointError, CorrigibleError
from corrigible.policies.learned.high_level.config_high_level import InstructorConfig

CHECKPOINT_FORMAT = "corrigible-high-level"
CHECKPOINT_VERSION = 1
NO_INSTRUCTION = "nothing done yet"  # what a history slot before the first instruction says


@dataclass(frozen=True)
class HLObservation:
    """What the high level sees before choosing the next instruction."""

    frames: np.ndarray  # (n_frames, H, W, 3) uint8, oldest first
    gripper_width_m: float  # distance between the fingers, m
    task: str  # the long-horizon task in words
    history: tuple[str, ...]  # the last instructions carried out, oldest first (padded)


class SentenceEmbedder(Protocol):
    """Anything that embeds texts as unit rows (`corrigible.text_embedding.MiniLMEmbedder`)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 rows of unit norm."""
        ...


class TextCache:
    """Embeddings of the few strings the high level uses, computed once each.

    Args:
        embedder: MiniLM (`corrigible.text_embedding.get_text_embedder()`). It is handed in by the
            caller (the launch layer, a test) because `memory` sits above `policies` in the
            package layering (tests/test_layering.py).
    """

    def __init__(self, embedder: SentenceEmbedder) -> None:
        self._embedder = embedder
        self._rows: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit rows."""
        # One string per call: a transformer's output for a text shifts in the last bits with
        # the padding of the batch it rides in, so batching by whatever happens to be missing
        # would make the embeddings, and training after them, depend on the call history
        # (measured: a `--stage all` run and separate stages fine-tuned differently).
        for text in sorted({t for t in texts if t not in self._rows}):
            self._rows[text] = self._embedder.embed([text])[0]
        return np.stack([self._rows[t] for t in texts]).astype(np.float32)


class InstructorNet(nn.Module):
    """A small CNN over the stacked frames and an MLP over [image, task, history, gripper]."""

    def __init__(self, cfg: InstructorConfig, text_dim: int = 384) -> None:
        super().__init__()
        self.cfg = cfg
        c = 3 * cfg.n_frames
        self.cnn = nn.Sequential(
            nn.Conv2d(c, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, c, cfg.frame_height, cfg.frame_width)).shape[1]
        self.image_head = nn.Sequential(nn.Linear(flat, cfg.image_features), nn.ReLU())
        width = cfg.image_features + text_dim * (1 + cfg.history) + 1
        self.mlp = nn.Sequential(
            nn.Linear(width, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, text_dim),
        )

    def forward(
        self, frames: torch.Tensor, task: torch.Tensor, history: torch.Tensor, grip: torch.Tensor
    ) -> torch.Tensor:
        """Unit-norm predicted instruction embeddings.

        Args:
            frames: (B, 3 * n_frames, H, W) in [0, 1].
            task: (B, 384) task embeddings.
            history: (B, history * 384) previous instructions' embeddings, concatenated.
            grip: (B, 1) gripper width in decimetres (so it is of order 1).
        """
        image = self.image_head(self.cnn(frames))
        out = self.mlp(torch.cat([image, task, history, grip], dim=1))
        return nn.functional.normalize(out, dim=1)


def scores(pred: torch.Tensor, candidates: torch.Tensor, temperature: float) -> torch.Tensor:
    """Temperature-scaled cosine logits (B, n_candidates); rows of both inputs are unit."""
    return pred @ candidates.T / temperature


def encode(
    observations: Sequence[HLObservation], cfg: InstructorConfig, text: TextCache
) -> dict[str, torch.Tensor]:
    """The network's input tensors for a batch of observations."""
    frames = np.stack([o.frames for o in observations]).astype(np.float32) / 255.0
    b, n, h, w, _ = frames.shape
    if (n, h, w) != (cfg.n_frames, cfg.frame_height, cfg.frame_width):
        raise CheckpointError(
            f"observations hold {n} frames of {h} x {w} px; the model was built for "
            f"{cfg.n_frames} of {cfg.frame_height} x {cfg.frame_width}: record the data with "
            "the checkpoint's frame settings"
        )
    frames_t = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).reshape(b, n * 3, h, w)
    task = torch.from_numpy(text([o.task for o in observations]))
    hist_texts = [t or NO_INSTRUCTION for o in observations for t in _pad(o.history, cfg.history)]
    history = (
        torch.from_numpy(text(hist_texts)).reshape(b, -1)
        if cfg.history
        else torch.zeros(b, 0, dtype=torch.float32)
    )
    grip = torch.tensor([[o.gripper_width_m * 10.0] for o in observations], dtype=torch.float32)
    return {"frames": frames_t.contiguous(), "task": task, "history": history, "grip": grip}


def _pad(history: Sequence[str], n: int) -> list[str]:
    """The last `n` instructions, padded at the front with "" (no instruction yet)."""
    last = list(history)[-n:] if n else []
    return [""] * (n - len(last)) + last


class HighLevelPolicy:
    """The trained instructor: chooses the next instruction among `candidates`.

    Args:
        net: the network (eval mode is set here).
        candidates: the instructions it chooses among, in the checkpoint's order.
        text: the MiniLM cache (shared, so a process embeds each string once).
    """

    def __init__(self, net: InstructorNet, candidates: Sequence[str], text: TextCache) -> None:
        self.net = net.eval()
        self.cfg = net.cfg
        self.candidates = tuple(candidates)
        self.text = text
        self._cand = torch.from_numpy(self.text(list(self.candidates)))

    def scores(self, obs: HLObservation) -> np.ndarray:
        """Cosine similarity of the predicted embedding to each candidate."""
        inputs = encode([obs], self.cfg, self.text)
        with torch.no_grad():
            pred = self.net(**inputs)
        return (pred @ self._cand.T)[0].numpy()

    def __call__(self, obs: HLObservation) -> str:
        """The candidate whose embedding is closest to the predicted one."""
        return self.candidates[int(np.argmax(self.scores(obs)))]

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        """Writes the checkpoint atomically (a crash never leaves half a file under `path`)."""
        save_checkpoint(self.net, self.candidates, path, meta)

    @classmethod
    def load(cls, path: Path, text: TextCache) -> HighLevelPolicy:
        """Loads a checkpoint written by `save` (see `load_checkpoint`)."""
        net, candidates, _ = load_checkpoint(path)
        return cls(net, candidates, text)


def save_checkpoint(
    net: InstructorNet, candidates: Sequence[str], path: Path, meta: dict[str, Any] | None = None
) -> None:
    """Writes a checkpoint: format tag, version, config, candidates, weights and `meta`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": net.cfg.model_dump(),
            "candidates": list(candidates),
            "state_dict": net.state_dict(),
            "meta": dict(meta or {}),
        },
        tmp,
    )
    tmp.replace(path)


def load_checkpoint(path: Path) -> tuple[InstructorNet, list[str], dict[str, Any]]:
    """Rebuilds the network of a checkpoint.

    Returns:
        (network, candidates, meta).

    Raises:
        CheckpointError: the file is missing, not a torch file, not a high-level
            checkpoint, of another version, or its weights do not fit its config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no high-level checkpoint at {path}; train one with `corrigible train hl --stage base`"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({type(exc).__name__}: {exc}); "
            "retrain with `corrigible train hl`"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a high-level checkpoint (format "
            f"{blob.get('format') if isinstance(blob, dict) else type(blob).__name__!r}, "
            f"expected {CHECKPOINT_FORMAT!r}); a low-level checkpoint goes to --low-level"
        )
    if blob.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} is version {blob.get('version')!r}, this corrigible reads version "
            f"{CHECKPOINT_VERSION}; retrain with `corrigible train hl`"
        )
    try:
        cfg = InstructorConfig(**blob["config"])
        net = InstructorNet(cfg)
        net.load_state_dict(blob["state_dict"])
        candidates = [str(c) for c in blob["candidates"]]
    except (KeyError, TypeError, RuntimeError, CorrigibleError) as exc:
        raise CheckpointError(
            f"{path} is a damaged high-level checkpoint ({type(exc).__name__}: {exc}); "
            "retrain with `corrigible train hl`"
        ) from exc
    if not candidates:
        raise CheckpointError(f"{path} lists no candidate instructions; retrain it")
    return net, candidates, dict(blob.get("meta") or {})
