"""The knowledge base over an HNSW index: filters, deletions and snapshots stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from corrigible.memory.knowledge_base import KnowledgeBase, KnowledgeBaseConfig
from corrigible.memory.schema import KnowledgeEntry


class _QueryCache:
    """Serves fixed query vectors by name (the index, not MiniLM, is under test here)."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def embed(self, texts):
        return np.stack([self.vectors[text] for text in texts])


def _unit(rng, n):
    rows = rng.normal(size=(n, 384)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("fallback", [4096, 8], ids=["score-the-few", "page-then-exact-scan"])
def test_filtered_search_over_hnsw_matches_brute_force(tmp_path, fallback):
    rng = np.random.default_rng(3)
    n = 600
    data = _unit(rng, n)
    skills = ["pick"] * 500 + ["pour"] * 60 + ["wipe"] * 20 + [None] * 20
    kinds = ["skill_params"] * 580 + ["plan_rule"] * 20
    queries = {f"q{i}": v for i, v in enumerate(_unit(rng, 12))}
    config = KnowledgeBaseConfig(
        hnsw_threshold=200, text_threshold=-1.0, exact_fallback_pool=fallback, snapshot_every=0
    )
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, config=config, text_embedder=_QueryCache(queries)) as kb:
        entries = [
            KnowledgeEntry(kind=kinds[i], text=f"e{i}", skill=skills[i])
            if kinds[i] == "skill_params"
            else KnowledgeEntry(kind="plan_rule", text=f"e{i}")
            for i in range(n)
        ]
        ids = kb.add_many(entries, text_embeddings=data)
        assert kb._text_index.kind == "hnsw"
        for gone in ids[500:510]:  # tombstones in the graph
            kb.delete(gone)
        live = np.ones(n, bool)
        live[500:510] = False

    def check(kb):
        for name, query in queries.items():
            for kind, skill in ((None, None), (None, "pour"), ("plan_rule", None), (None, "wipe")):
                keep = live.copy()
                if skill is not None:
                    keep &= np.array([s == skill for s in skills])
                if kind is not None:
                    keep &= np.array([k == kind for k in kinds])
                scores = np.where(keep, data @ query, -np.inf)
                truth = [ids[j] for j in np.argsort(-scores)[:5] if keep[j]]
                assert len(truth) == 5
                hits = kb.search(name, k=5, kind=kind, skill=skill)
                assert [hit.entry.id for hit in hits] == truth, (name, kind, skill)

    with KnowledgeBase.open(path, config=config, text_embedder=_QueryCache(queries)) as kb:
        assert kb.index_status["snapshot"] == "ok"  # tombstones saved, no rebuild
        assert kb._text_index.kind == "hnsw" and len(kb._text_index) == n - 10
        check(kb)


def test_concurrent_deletes_of_one_entry_cannot_both_be_written(tmp_path):
    queries = {"q": _unit(np.random.default_rng(0), 1)[0]}
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=_QueryCache(queries)) as kb:
        entry_id = kb.add(KnowledgeEntry(kind="plan_rule", text="x"), text_embedding=queries["q"])
        kb._state.pending_gone.add(entry_id)  # as while another thread's delete is in flight
        with pytest.raises(Exception, match="being deleted or superseded"):
            kb.delete(entry_id)
        kb._state.pending_gone.clear()
        kb.delete(entry_id)
        assert len(kb) == 0
