"""The router's embedding cache: a repeated phrasing is routed without MiniLM, identically.

Real MiniLM behind a counting wrapper: the wrapper only counts the texts it passes on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from corrigible.corrections import router as router_module
from corrigible.corrections.router import GrammarEmbeddingRouter

# None of these is caught by a grammar rule, so each needs an embedding.
EMBEDDED = (
    "that one belongs in the blue bowl",
    "it needs to come out further",
    "I would like it a little higher",
)


class CountingEmbedder:
    """Passes texts on to the real embedder and keeps every batch it was asked for."""

    def __init__(self, inner) -> None:  # noqa: ANN001 - the session's MiniLM
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.batches: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return self.inner.embed(texts)


@pytest.fixture
def counting(embedder) -> CountingEmbedder:  # noqa: ANN001
    return CountingEmbedder(embedder)


def _warm(router: GrammarEmbeddingRouter, counting: CountingEmbedder) -> None:
    router.warm_up()  # embeds the examples: not a correction
    counting.batches.clear()


def test_a_repeated_text_is_routed_from_the_cache_with_the_same_decision(counting) -> None:
    router = GrammarEmbeddingRouter(embedder=counting)
    _warm(router, counting)
    first = [router.route(t).to_dict() for t in EMBEDDED]
    assert [d["method"] for d in first] == ["embedding"] * len(EMBEDDED)
    assert len(counting.batches) == len(EMBEDDED)
    again = [router.route(t).to_dict() for t in EMBEDDED]
    assert again == first
    assert len(counting.batches) == len(EMBEDDED)  # no further MiniLM call


def test_cached_decisions_equal_those_of_a_fresh_router(counting, embedder) -> None:  # noqa: ANN001
    warmed = GrammarEmbeddingRouter(embedder=counting)
    _warm(warmed, counting)
    for text in EMBEDDED:
        warmed.route(text)
    for text in EMBEDDED:
        fresh = GrammarEmbeddingRouter(embedder=embedder)
        assert warmed.route(text).to_dict() == fresh.route(text).to_dict()


def test_a_batch_embeds_each_new_text_once(counting) -> None:
    router = GrammarEmbeddingRouter(embedder=counting)
    _warm(router, counting)
    texts = [EMBEDDED[0], EMBEDDED[1], EMBEDDED[0], "stop!"]  # "stop!" is a grammar rule
    decisions = router.route_many(texts)
    assert counting.batches == [
        [router_module.embedding_text(EMBEDDED[0]), router_module.embedding_text(EMBEDDED[1])]
    ]
    assert decisions[0] == decisions[2] and decisions[3].method == "rule"


def test_the_cache_is_bounded_and_evicts_the_oldest(counting, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(router_module, "_VECTOR_CACHE_SIZE", 2)
    router = GrammarEmbeddingRouter(embedder=counting)
    _warm(router, counting)
    for text in EMBEDDED:
        router.route(text)
    assert len(router._vectors) == 2
    router.route(EMBEDDED[0])  # evicted: embedded again
    router.route(EMBEDDED[2])  # most recent: still cached
    assert [b[0] for b in counting.batches[3:]] == [router_module.embedding_text(EMBEDDED[0])]
