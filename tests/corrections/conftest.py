"""Fixtures for the corrections tests: one real MiniLM and one router per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from corrigible.corrections.interpret import InterpretContext  # noqa: E402
from corrigible.corrections.router import GrammarEmbeddingRouter  # noqa: E402
from corrigible.memory.text_embedder import MiniLMEmbedder, get_text_embedder  # noqa: E402

VISIBLE = (
    "red block",
    "green block",
    "blue block",
    "yellow cylinder",
    "red bowl",
    "green bowl",
    "blue bowl",
    "drawer",
)


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real MiniLM, loaded once for the whole session."""
    model = get_text_embedder()
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def router(embedder: MiniLMEmbedder) -> GrammarEmbeddingRouter:
    """The offline router on the shipped examples, sharing the session's MiniLM."""
    return GrammarEmbeddingRouter(embedder=embedder)


@pytest.fixture
def ctx() -> InterpretContext:
    """Placing the red block in the red bowl, with a small scene in view."""
    return InterpretContext(
        visible_objects=VISIBLE,
        current_skill="place",
        current_object="red block",
        current_target="red bowl",
    )
