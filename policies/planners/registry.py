"""`--planner` specs -> planners.

Specs: `grammar` (default, offline), `openai:<model>`, `local:<path>`, `local:bundled`,
`replay:<file>` (LLM planners need `policies.llm`).
"""

from __future__ import annotations

from corrigible.errors import UnknownNameError, did_you_mean
from corrigible.policies.planners.base import Planner

_LLM_PREFIXES = ("openai", "local", "replay")


def make_planner(spec: str) -> Planner:
    """Builds the planner named by `spec`."""
    spec = spec.strip()
    if spec == "grammar":
        from corrigible.policies.planners.grammar import GrammarPlanner

        return GrammarPlanner()
    prefix = spec.split(":", 1)[0]
    if prefix in _LLM_PREFIXES and ":" in spec:
        from corrigible.policies.llm.registry import make_llm
        from corrigible.policies.planners.llm_planner import LLMPlanner

        return LLMPlanner(make_llm(spec))
    choices = ["grammar", "openai:<model>", "local:<path>", "local:bundled", "replay:<file>"]
    raise UnknownNameError(
        f"unknown planner {spec!r}; choose one of {choices}." + did_you_mean(spec, ["grammar"])
    )
