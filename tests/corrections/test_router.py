from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from pathlib import Path

import pytest
import yaml

from corrigible.corrections.correction import Correction
from corrigible.corrections.router import (
    LABELS,
    CorrectionRouter,
    GrammarEmbeddingRouter,
    GrammarEmbeddingRouterConfig,
    RouteDecision,
    default_router_config,
    load_examples,
    make_router,
)
from corrigible.errors import ConfigError, ParseError, UnknownNameError


def _load_dev_phrasings() -> list[tuple[str, str]]:
    # Tests are not a package (pytest runs with --import-mode=importlib), so load it by path.
    path = Path(__file__).with_name("dev_phrasings.py")
    spec = importlib.util.spec_from_file_location("corrections_dev_phrasings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEV_PHRASINGS


DEV_PHRASINGS = _load_dev_phrasings()
DATA = Path(__file__).resolve().parents[2] / "corrections" / "data"
FROZEN = DATA / "labelled_corrections.jsonl"
FROZEN_SHA256 = "4dda9cba4d22faebe11364cfd22c42e6fa1346f11618701f4908f27236f5b3c4"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _frozen_rows() -> list[dict]:
    return [json.loads(line) for line in FROZEN.read_text().splitlines() if line.strip()]


def test_frozen_set_is_unchanged_and_balanced():
    assert hashlib.sha256(FROZEN.read_bytes()).hexdigest() == FROZEN_SHA256
    rows = _frozen_rows()
    assert len(rows) >= 220
    counts = {label: sum(r["label"] == label for r in rows) for label in LABELS}
    assert min(counts.values()) >= 50, counts


def test_frozen_set_and_examples_are_disjoint():
    examples = load_examples(DATA / "router_examples.yaml")
    example_texts = {_norm(t) for phrases in examples.values() for t in phrases}
    frozen_texts = {_norm(r["text"]) for r in _frozen_rows()}
    assert not example_texts & frozen_texts
    dev_texts = {_norm(t) for t, _ in DEV_PHRASINGS}
    assert not dev_texts & frozen_texts


def test_examples_file_sizes():
    examples = load_examples(DATA / "router_examples.yaml")
    assert all(25 <= len(examples[label]) <= 45 for label in LABELS)


def test_accuracy_on_frozen_set(router):
    rows = _frozen_rows()
    decisions = router.route_many([r["text"] for r in rows])
    correct = sum(d.label == r["label"] for d, r in zip(decisions, rows, strict=True))
    accuracy = correct / len(rows)
    print(f"frozen-set accuracy: {accuracy:.4f} ({correct}/{len(rows)})")
    assert accuracy >= 0.9


def test_route_many_matches_route(router):
    texts = [r["text"] for r in _frozen_rows()[::20]]
    assert [d.label for d in router.route_many(texts)] == [router.route(t).label for t in texts]


def test_accuracy_on_dev_phrasings(router):
    decisions = router.route_many([t for t, _ in DEV_PHRASINGS])
    correct = sum(d.label == label for d, (_, label) in zip(decisions, DEV_PHRASINGS, strict=True))
    assert correct / len(DEV_PHRASINGS) >= 0.95


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("no, the blue bowl", "plan"),
        ("put it in the drawer instead", "plan"),
        ("open the drawer first", "plan"),
        ("not that one, the other block", "plan"),
        ("a bit more to the left", "skill"),
        ("grasp it lower", "skill"),
        ("go higher before you move", "skill"),
        ("slower", "skill"),
        ("lift it higher", "skill"),
        ("pull the drawer further", "skill"),
        ("you're too far right", "skill"),
        ("I like the red things in the left bowl", "preference"),
        ("always put cubes in the drawer", "preference"),
        ("I prefer the blue bowl for green blocks", "preference"),
        ("stop!", "control"),
        ("hold on", "control"),
        ("ok continue", "control"),
        ("wait a second", "control"),
        ("never mind, carry on", "control"),
    ],
)
def test_brief_examples(router, text, label):
    assert router.route(text).label == label


@pytest.mark.parametrize("text", ["stop!", "STOP", "wait", "ok, carry on please"])
def test_control_is_a_rule_and_needs_no_model(text):
    class _NoModel:
        name, dim = "none", 384

        def embed(self, texts):
            raise AssertionError("a control phrase must not reach the embedder")

    router = GrammarEmbeddingRouter(embedder=_NoModel())
    start = time.perf_counter()
    decision = router.route(text)
    assert decision.label == "control" and decision.method == "rule"
    assert decision.confidence == 1.0
    assert time.perf_counter() - start < 0.05


def test_embedding_decision_fields(router):
    decision = router.route("erm, hmm, that bowl looks off")
    assert decision.method in ("rule", "embedding")
    if decision.method == "embedding":
        assert set(decision.scores) == set(LABELS)
        assert decision.matched_example is not None
        assert 0.0 <= decision.confidence <= 1.0
    json.dumps(decision.to_dict())


def test_rules_off_still_routes(embedder):
    router = GrammarEmbeddingRouter(
        GrammarEmbeddingRouterConfig(use_rules=False), embedder=embedder
    )
    decision = router.route("hold on a sec")
    assert decision.method == "embedding" and decision.label == "control"


def test_tie_break_prefers_the_cautious_label(embedder):
    # A margin of 1.0 makes every label "close", so the tie-break order decides alone.
    cfg = GrammarEmbeddingRouterConfig(use_rules=False, margin=0.99)
    decision = GrammarEmbeddingRouter(cfg, embedder=embedder).route("always put cubes in it")
    assert decision.label == "control" and decision.is_ambiguous


def test_route_correction(router):
    c = Correction(text="slower please", time=1.0, episode="ep", source="spoken")
    assert router.route_correction(c).label == "skill"


@pytest.mark.parametrize("text", ["", "   ", "?!"])
def test_empty_text_is_a_parse_error(router, text):
    with pytest.raises(ParseError):
        router.route(text)


def test_registry_and_configs(embedder):
    assert isinstance(make_router(default_router_config("grammar_embedding")), CorrectionRouter)
    with pytest.raises(UnknownNameError, match="did you mean|registered"):
        default_router_config("grammar_embeding")
    with pytest.raises(ConfigError, match="top_k"):
        GrammarEmbeddingRouterConfig(top_k=0)
    with pytest.raises(ConfigError, match="tie_break"):
        GrammarEmbeddingRouterConfig(tie_break=("plan", "skill"))
    with pytest.raises(ConfigError):
        RouteDecision(label="nonsense", confidence=0.5, method="rule")


def test_subclass_must_set_class_attributes():
    with pytest.raises(TypeError, match="must set"):

        class _Broken(CorrectionRouter):  # noqa: F841
            def route(self, text):
                raise NotImplementedError


def test_bad_examples_file(tmp_path):
    path = tmp_path / "ex.yaml"
    path.write_text(yaml.safe_dump({"examples": {"plan": ["x"], "skil": ["y"]}}))
    with pytest.raises(ParseError, match="skil"):
        load_examples(path)
    path.write_text(yaml.safe_dump({"examples": {"plan": ["x"]}}))
    with pytest.raises(ParseError, match="no examples"):
        load_examples(path)
