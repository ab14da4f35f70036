"""The hybrid planner (`grammar+<llm spec>`): the grammar answers, the LLM takes its refusals.

The grammar planner plans what it understands in milliseconds and refuses the rest with a
reason (`ParseError`, `UnknownObjectError`). Only those refusals go to the LLM planner, with the
grammar's reason among the episode's notes, so an LLM (slow, sometimes wrong) is asked only
about instructions the grammar could not read at all. A program the grammar wrote never reaches
the model.

Example:
    planner = make_hybrid_planner("grammar+openai:coder-1.5b")
"""

from __future__ import annotations

from corrigible.errors import ConfigError, ParseError, UnknownObjectError
from corrigible.policies.planners.base import PlanContext, Planner, Program

PREFIX = "grammar+"  # the spec prefix that builds a hybrid planner


class HybridPlanner(Planner):
    """Grammar first; on a refusal, the LLM planner.

    Args:
        grammar: the rule-based planner (answers or refuses).
        llm: the planner asked when the grammar refuses (an `LLMPlanner`).
    """

    name = "hybrid"

    def __init__(self, grammar: Planner, llm: Planner) -> None:
        self.grammar = grammar
        self.llm = llm
        self.name = f"grammar+{getattr(llm, 'name', 'llm').removeprefix('llm:')}"
        self.fallbacks = 0  # instructions handed to the LLM so far (for measurements)

    def plan(self, instruction: str, context: PlanContext) -> Program:
        """The grammar's program, or, if the grammar refuses, the LLM's (its errors propagate)."""
        try:
            return self.grammar.plan(instruction, context)
        except (ParseError, UnknownObjectError) as refusal:
            self.fallbacks += 1
            program = self.llm.plan(instruction, context)
            program.notes.append(f"the grammar planner refused ({refusal}); the LLM planned it")
            program.family = "llm-fallback"
            return program


def make_hybrid_planner(spec: str) -> HybridPlanner:
    """Builds `grammar+<llm spec>` (e.g. `grammar+openai:coder-1.5b`).

    Raises:
        ConfigError: the spec does not start with `grammar+` or names no LLM after it.
        UnknownNameError, DependencyNotInstalled: as `make_llm`, for the LLM part.
    """
    spec = spec.strip()
    if not spec.startswith(PREFIX) or not spec[len(PREFIX) :].strip():
        raise ConfigError(
            f"hybrid planner spec {spec!r} must be grammar+<llm spec>, e.g. "
            "grammar+openai:coder-1.5b."
        )
    from corrigible.policies.llm.registry import make_llm
    from corrigible.policies.planners.grammar import GrammarPlanner
    from corrigible.policies.planners.llm_planner import LLMPlanner

    return HybridPlanner(GrammarPlanner(), LLMPlanner(make_llm(spec[len(PREFIX) :])))
