"""The simulated corrector's phrasings are its own and mean what they should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrigible.corrections.corrector import all_phrases
from corrigible.corrections.router import DEFAULT_EXAMPLES_PATH, load_examples, normalise

_DATA = Path(DEFAULT_EXAMPLES_PATH).parent


def test_phrases_disjoint_from_router_data() -> None:
    seen = {normalise(p) for ps in load_examples(DEFAULT_EXAMPLES_PATH).values() for p in ps}
    for line in (_DATA / "labelled_corrections.jsonl").read_text().splitlines():
        if line.strip():
            seen.add(normalise(json.loads(line)["text"]))
    overlap = sorted(p for p in all_phrases() if normalise(p) in seen)
    assert overlap == []


@pytest.fixture(scope="module")
def router():
    from corrigible.corrections.router import GrammarEmbeddingRouter

    return GrammarEmbeddingRouter()


def test_every_phrase_routes_and_interprets(router) -> None:
    from corrigible.corrections.interpret import InterpretContext, interpret

    ctx = InterpretContext(
        visible_objects=("red cylinder", "red block", "blue bowl", "yellow bowl", "drawer"),
        current_skill="pick",
        current_object="red cylinder",
    )
    for text in all_phrases():
        decision = router.route(text)
        assert decision.label in ("skill", "plan", "preference"), text
        assert interpret(text, decision.label, ctx).effects, text


@pytest.mark.parametrize("persona", ["terse", "polite"])
def test_persona_keeps_route_and_effect(router, persona) -> None:
    """A persona changes the words, not what the correction means."""
    from corrigible.corrections.corrector import in_persona

    plain = [p for p in all_phrases() if in_persona(p, "plain") == p]
    for text in plain:
        styled = in_persona(text, persona)
        assert router.route(styled).label == router.route(text).label, (text, styled)
