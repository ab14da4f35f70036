"""Errors raised by the knowledge base, each a `CorrigibleError` and the matching builtin.

They live here rather than in `corrigible/errors.py` because only `corrigible.memory` raises them;
callers that do not care can still catch `CorrigibleError` or the builtin.
"""

from __future__ import annotations

from corrigible.errors import CorrigibleError, ParseError, UnknownNameError


class UnknownEntryError(UnknownNameError):
    """No knowledge entry has the given id (or it was deleted)."""


class CorruptStoreError(ParseError):
    """A knowledge-base file is damaged in a way that cannot be repaired without a decision."""


class SchemaVersionError(CorrigibleError, ValueError):
    """The knowledge base was written by a newer, incompatible schema version."""


class StoreLockedError(CorrigibleError, RuntimeError):
    """Another process holds the writer lock of the knowledge-base directory."""


class ReadOnlyError(CorrigibleError, PermissionError):
    """A write was attempted on a knowledge base opened read-only."""


class KnowledgeBaseClosedError(CorrigibleError, RuntimeError):
    """The knowledge base was used after `close()`."""
