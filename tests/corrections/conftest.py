"""Fixtures for the corrections tests (MiniLM and the router are shared: tests/conftest.py)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from corrigible.corrections.interpret import InterpretContext  # noqa: E402

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


@pytest.fixture
def ctx() -> InterpretContext:
    """Placing the red block in the red bowl, with a small scene in view."""
    return InterpretContext(
        visible_objects=VISIBLE,
        current_skill="place",
        current_object="red block",
        current_target="red bowl",
    )
