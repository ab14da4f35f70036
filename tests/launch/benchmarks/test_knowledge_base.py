"""Smoke test of `corrigible bench kb` rows at tiny sizes (the real run is the CLI's job)."""

from __future__ import annotations

from corrigible.launch.benchmarks import knowledge_base as bench


def test_retrieval_row_agrees_with_numpy():
    row = bench.retrieval_row(500, queries=10)
    assert row["flat_vs_numpy_top5_agreement"] == 1.0
    assert row["faiss_flat_p50_ms"] > 0 and row["numpy_p99_ms"] >= row["numpy_p50_ms"]
    assert 0.0 <= row["hnsw_recall_at_5"] <= 1.0


def test_appearance_row_counts_no_false_applications_with_visual(embedder):
    row = bench.appearance_row(poses=1)
    assert row["text_visual_false_applications"] == 0
    assert row["text_visual_missed"] == 0
    assert row["text_false_applications"] > 0  # words alone cannot tell the objects apart


def test_inserts_row_is_durable(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("CORRIGIBLE_BENCH_DIR", str(tmp_path))
    row = bench.inserts_row(10, batch=5)
    assert row["entries_after_reopen"] == 20 and row["fsync_each_add_per_s"] > 0
