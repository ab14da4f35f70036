"""memory: the knowledge base of distilled corrections (DROC-style), with hybrid retrieval.

Importing this package is cheap: FAISS, OpenCV and the MiniLM model load only when the
corresponding attribute is first used (`from corrigible.memory import KnowledgeBase`).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> defining submodule
_EXPORTS: dict[str, str] = {
    "KnowledgeBase": "knowledge_base",
    "FaissKnowledgeBase": "knowledge_base",
    "KnowledgeBaseConfig": "knowledge_base",
    "RetrievalHit": "knowledge_base",
    "KnowledgeEntry": "schema",
    "ObjectScope": "schema",
    "Provenance": "schema",
    "Effect": "effects",
    "SkillParamChange": "effects",
    "TargetSubstitution": "effects",
    "ObjectSubstitution": "effects",
    "AddedPrecondition": "effects",
    "Ordering": "effects",
    "PreferenceMapping": "effects",
    "ControlCommand": "effects",
    "SCHEMA_VERSION": "schema",
    "embed_crop": "visual_embedder",
    "get_text_embedder": "corrigible.text_embedding",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corrigible.memory' has no attribute {name!r}")
    full = module if module.startswith("corrigible.") else f"corrigible.memory.{module}"
    return getattr(importlib.import_module(full), name)
