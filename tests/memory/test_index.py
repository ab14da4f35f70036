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


def compositional_rows(n, dim=384, seed=0):
    """Unit vectors that share some of three factors (the hard case for approximate search)."""
    rng = np.random.default_rng(seed)
    values = max(4, 2 * round(n ** (1 / 3)))
    factors = [rng.normal(size=(values, dim)) / np.sqrt(dim) for _ in range(3)]
    rows = 0.7 * rng.normal(size=(n, dim)) / np.sqrt(dim)
    for factor in factors:
        rows += factor[rng.integers(0, values, n)]
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_index_kind_is_chosen_by_size_and_hnsw_recall_is_high():
    data = compositional_rows(4000)
    index = VectorIndex(384, hnsw_threshold=3000)
    index.add(range(2000), data[:2000])
    assert index.kind == "flat"
    index.add(range(2000, 4000), data[2000:])
    assert index.kind == "hnsw"
    rng = np.random.default_rng(1)
    queries = data[rng.integers(0, 4000, 50)] + 0.5 * rng.normal(size=(50, 384)) / np.sqrt(384)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    _, found = index.search(queries, 10)
    scores, exact = index.search(queries, 10, exact=True)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    assert (exact == truth).mean() > 0.99  # the exact scan is brute force (ties aside)
    assert np.allclose(scores, np.take_along_axis(queries @ data.T, truth, axis=1), atol=1e-5)
    recall = np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(50)])
    assert recall >= 0.98


def test_hnsw_tombstones_are_saved_and_compacted():
    data = unit_rows(1500)
    index = VectorIndex(32, hnsw_threshold=100)
    index.add(range(1500), data)
    index.remove(range(0, 500))  # below the compaction point: tombstones
    assert len(index) == 1000 and index._removed
    again = VectorIndex.from_bytes(index.to_bytes(), dim=32, hnsw_threshold=100)
    assert again.is_hnsw and len(again) == 1000
    assert sorted(again.ids().tolist()) == list(range(500, 1500))
    _, found = again.search(data[:20], 5, exact=True)
    assert found.min() >= 500
    again.remove(range(500, 1100))  # 1100 tombstones >= 1024: the graph is rebuilt without them
    assert not again._removed and again.is_hnsw and len(again) == 400
    assert again._index.ntotal == 400
    assert np.allclose(again.reconstruct(1200), data[1200])


def test_search_among_scores_only_those_ids_exactly():
    data = unit_rows(300)
    for threshold in (0, 50):
        index = VectorIndex(32, hnsw_threshold=threshold)
        index.add(range(100, 400), data)
        index.remove([105])
        among = np.array([105, 110, 120, 130, 999, 250])  # 105 removed, 999 unknown
        scores, found = index.search(data[:3], 10, among=among)
        assert found.shape == (3, 4)
        for row in range(3):
            expected = sorted([110, 120, 130, 250], key=lambda i: -float(data[row] @ data[i - 100]))
            assert found[row].tolist() == expected
            assert np.all(np.diff(scores[row]) <= 1e-6)


def test_an_older_bare_faiss_snapshot_is_read_and_converted_above_the_threshold():
    import faiss

    data = unit_rows(200)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    flat.add_with_ids(data, np.arange(200, dtype=np.int64))
    raw = faiss.serialize_index(flat).tobytes()
    assert VectorIndex.from_bytes(raw, dim=32, hnsw_threshold=0).kind == "flat"
    converted = VectorIndex.from_bytes(raw, dim=32, hnsw_threshold=100)
    assert converted.kind == "hnsw" and sorted(converted.ids().tolist()) == list(range(200))
    with pytest.raises(IndexFormatError, match="cut short"):
        VectorIndex.from_bytes(converted.to_bytes()[:10], dim=32)
