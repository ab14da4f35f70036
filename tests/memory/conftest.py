"""Shared fixtures for the knowledge-base tests: one real MiniLM per session, entries, crops."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from corrigible.memory.schema import KnowledgeEntry, ObjectScope, Provenance  # noqa: E402
from corrigible.memory.visual_embedder import embed_crop, render_crop  # noqa: E402

RED = (200, 30, 30)
GREEN = (30, 170, 50)
MPP = 0.001  # metres per pixel of the synthetic crops: a 40 px object is 4 cm across


@pytest.fixture
def make_entry() -> Callable[..., KnowledgeEntry]:
    """Builds a valid entry; keyword arguments override the defaults."""

    def _make(text: str = "grasp the red block lower", **overrides: Any) -> KnowledgeEntry:
        fields: dict[str, Any] = {
            "kind": "skill_params",
            "skill": "pick",
            "params": {"grasp_height": -0.01},
            "text": text,
            "provenance": [Provenance(episode="ep-1", step=3, correction_texts=["lower!"])],
        }
        fields.update(overrides)
        return KnowledgeEntry(**fields)

    return _make


def crop_descriptor(
    shape: str,
    color: tuple[int, int, int] = RED,
    *,
    size_px: int = 40,
    angle_deg: float = 0.0,
    seed: int = 0,
    shading: float = 0.35,
) -> np.ndarray:
    """Descriptor of a synthetic top-down crop, segmented without the ground-truth mask."""
    rgb, _ = render_crop(
        shape, color, size_px=size_px, angle_deg=angle_deg, seed=seed, shading=shading
    )
    return embed_crop(rgb, metres_per_pixel=MPP)


@pytest.fixture
def crops() -> Callable[..., np.ndarray]:
    """`crops(shape, color, size_px=..., angle_deg=..., seed=...)` -> descriptor."""
    return crop_descriptor


@pytest.fixture
def red_objects_kb_entries(make_entry: Callable[..., KnowledgeEntry]) -> list[KnowledgeEntry]:
    """A red cylinder entry and a red cube entry that only appearance tells apart."""
    cylinder = make_entry(
        "grasp slippery red cylinders lower and lift slowly",
        params={"grasp_height": -0.01, "speed": 0.05},
        scope=ObjectScope(color="red", shape="cylinder"),
        visual_embedding=crop_descriptor("cylinder").tolist(),
    )
    cube = make_entry(
        "grasp the red block lower",
        params={"grasp_height": -0.015},
        scope=ObjectScope(color="red", shape="cube"),
        visual_embedding=crop_descriptor("cube").tolist(),
    )
    return [cylinder, cube]
