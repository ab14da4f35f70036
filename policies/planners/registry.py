"""`--planner` specs -> planners.

Specs: `grammar` (default, offline), `openai:<model>`, `local:<path>`, `local:bundled`,
`replay:<file>` (LLM planners need `policies.llm`).
"""

from __future__ import annotations

from corrigible.errors import UnknownNameError, did_you_mean
from corrigible.policies.planners.base import Planner
from corrigible.registry import Registry

# planner name -> class built without arguments. Every other spec is `<LLM backend>:<argument>`
# and builds an LLM planner over that backend (`corrigible.policies.llm.LLM_BACKENDS`).
PLANNERS: Registry[type[Planner]] = Registry("planner")
PLANNERS.register("grammar", "corrigible.policies.planners.grammar:GrammarPlanner")


def make_planner(spec: str) -> Planner:
    """Builds the planner named by `spec`.

    Raises:
        UnknownNameError: the spec names no planner and no LLM backend.
        ConfigError, DependencyNotInstalled: as `make_llm`, for an LLM spec.
    """
    spec = spec.strip()
    if spec.startswith("grammar+"):  # the grammar planner, its refusals sent to the LLM
        from corrigible.policies.llm.hybrid import make_hybrid_planner

        return make_hybrid_planner(spec)
    if spec in PLANNERS:
        return PLANNERS.get(spec)()
    prefix, sep, _ = spec.partition(":")
    from corrigible.policies.llm.registry import LLM_BACKENDS, make_llm

    if sep and prefix in LLM_BACKENDS:
        from corrigible.policies.planners.llm_planner import LLMPlanner

        return LLMPlanner(make_llm(spec))
    choices = [*PLANNERS, "openai:<model>", "local:<path>", "local:bundled", "replay:<file>"]
    raise UnknownNameError(
        f"unknown planner {spec!r}; choose one of {choices}." + did_you_mean(spec, PLANNERS)
    )
