from __future__ import annotations

import numpy as np
import pytest

from corrigible.errors import ConfigError, IndexFormatError
from corrigible.memory.index import VectorIndex


def unit_rows(n, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("hnsw_threshold", [0, 100], ids=["flat", "hnsw"])
def test_search_agrees_with_brute_force(hnsw_threshold):
    data = unit_rows(500)
    ids = np.arange(1000, 1500)
    index = VectorIndex(32, hnsw_threshold=hnsw_threshold, ef_search=128)
    index.add(ids, data)
    assert index.is_hnsw == bool(hnsw_threshold)
    queries = unit_rows(20, seed=1)
    scores, found = index.search(queries, 5)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :5] + 1000
    recall = np.mean([len(set(found[i]) & set(exact[i])) / 5 for i in range(20)])
    assert recall >= (1.0 if not hnsw_threshold else 0.9)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


@pytest.mark.parametrize("hnsw_threshold", [0, 10], ids=["flat", "hnsw"])
def test_remove_and_round_trip(hnsw_threshold):
    data = unit_rows(50)
    index = VectorIndex(32, hnsw_threshold=hnsw_threshold)
    index.add(range(50), data)
    index.remove([3, 7, 7, 999])
    assert len(index) == 48
    _, found = index.search(data[3], 50)
    assert 3 not in found[0] and 7 not in found[0]
    with pytest.raises(KeyError):
        index.reconstruct(3)
    again = VectorIndex.from_bytes(index.to_bytes(), dim=32, hnsw_threshold=hnsw_threshold)
    assert sorted(again.ids().tolist()) == sorted(set(range(50)) - {3, 7})
    assert np.allclose(again.reconstruct(5), data[5])


def test_bad_inputs():
    index = VectorIndex(8)
    with pytest.raises(ConfigError, match="shape"):
        index.add([1], np.ones((1, 9), dtype=np.float32))
    with pytest.raises(ConfigError, match="NaN"):
        index.add([1], np.full((1, 8), np.nan, dtype=np.float32))
    with pytest.raises(IndexFormatError):
        VectorIndex.from_bytes(b"not an index", dim=8)
    scores, ids = index.search(np.ones(8, dtype=np.float32), 5)
    assert scores.shape == (1, 0) and ids.shape == (1, 0)
