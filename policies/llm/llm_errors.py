"""Errors raised by the LLM backends, each a `CorrigibleError` and the matching builtin.

They live here rather than in `corrigible/errors.py` because only `corrigible.policies.llm` raises
them; callers that do not care can still catch `CorrigibleError` or the builtin.
"""

from __future__ import annotations

from corrigible.errors import CorrigibleError


class LLMError(CorrigibleError, RuntimeError):
    """An LLM backend could not produce a completion (server down, model missing, bad reply)."""


class LLMUnreachableError(LLMError, ConnectionError):
    """The LLM server could not be reached or did not answer in time."""


class LLMModelNotFoundError(LLMError, LookupError):
    """The server is up but does not serve the requested model."""


class LLMClosedError(LLMError):
    """A backend was used after `close()`."""


class LLMOutputError(CorrigibleError, ValueError):
    """The model answered, but the answer holds no usable code.

    A `ValueError` rather than an `LLMError`: the backend worked, the *content* is wrong, so the
    planner should re-prompt or fall back, not restart the server. Weak models (`local:bundled`)
    raise this routinely; it is a validation result, never a crash.
    """


class ReplayMissError(LLMError, LookupError):
    """A replayed request matches no recorded exchange; the message names the closest one."""
