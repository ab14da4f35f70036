"""LLM backends behind one interface, selected with `--planner` (see README.md).

Only the light modules are imported here; `make_llm` imports a backend's module (and the
`openai` client or torch) when that backend is asked for.
"""

from corrigible.policies.llm.base import ChatMessage, LLMBackend, LLMResponse, TokenUsage
from corrigible.policies.llm.registry import LLM_BACKENDS, make_llm
from corrigible.policies.llm.validation import extract_code

__all__ = [
    "LLM_BACKENDS",
    "ChatMessage",
    "LLMBackend",
    "LLMResponse",
    "TokenUsage",
    "extract_code",
    "make_llm",
]
