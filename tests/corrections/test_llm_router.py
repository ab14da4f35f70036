"""`LLMRouter`: real loopback server, hand-written wire recordings, real sockets, and the CLI.

The replay recordings in `data/llm_router.jsonl` are HAND-WRITTEN (see
`data/make_llm_recordings.py`): the requests are the router's own, sent through the stock
`openai` client; the answers were written by hand, not by a model. The loopback tests run a
real `transformers serve` with the tiny test model, whose answers are junk for routing, so they
check the live wire path and the fallback-with-reason.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corrigible.corrections.correction import Correction
from corrigible.corrections.llm_router import (
    LLMRouteDecision,
    LLMRouter,
    LLMRouterConfig,
    extract_json_object,
    parse_label,
)
from corrigible.corrections.router import (
    LABELS,
    GrammarEmbeddingRouter,
    default_router_config,
    make_router,
    router_names,
)
from corrigible.errors import ConfigError, InvalidLabelError, LLMOutputError, ParseError
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
from corrigible.text_embedding import MiniLMEmbedder
from loopback_llm import (
    LoopbackServer,
    free_loopback_port,
)


def _load_recordings_module():
    # Tests are not a package (pytest runs with --import-mode=importlib), so load it by path.
    path = Path(__file__).parent / "data" / "make_llm_recordings.py"
    spec = importlib.util.spec_from_file_location("corrections_llm_recordings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REC = _load_recordings_module()
REPLAY = f"replay:{REC.ROUTER_FILE}"
STALE = "re-run tests/corrections/data/make_llm_recordings.py if a prompt changed"
CLI = [sys.executable, "-m", "corrigible.launch.cli", "route"]


@pytest.fixture(scope="module")
def llm_router(embedder: MiniLMEmbedder) -> Iterator[LLMRouter]:
    """The LLM router on the hand-written recording, built through the registry."""
    with make_router(LLMRouterConfig(llm=REPLAY), embedder=embedder) as router:
        yield router


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ('{"label": "skill", "reason": "lower"}', "skill"),
        ('```json\n{"label": "plan", "reason": "x"}\n```', "plan"),
        ('Sure. Here it is: {"label": "preference"} Hope that helps.', "preference"),
        ('{"Label": " CONTROL ", "reason": "stop"}', "control"),
        ('{"reason": "no label here"} then {"label": "skill"}', "skill"),
        ('```json\n{"label": "plan", "reason": "x"}\n', "plan"),  # cut before the closing fence
    ],
    ids=["bare", "fenced", "prose", "case", "second-object", "open-fence"],
)
def test_parse_label_finds_json_anywhere(answer: str, label: str) -> None:
    assert parse_label(answer)[0] == label


@pytest.mark.parametrize(
    "answer",
    [
        '{"label": "adjustment"}',
        '{"label": "skill-level"}',
        '{"label": "planning"}',
        '{"label": 2}',
    ],
    ids=["invented", "suffixed", "synonym", "number"],
)
def test_synonyms_and_other_labels_are_not_guessed(answer: str) -> None:
    with pytest.raises(InvalidLabelError, match="not one of"):
        parse_label(answer)


@pytest.mark.parametrize(
    "answer",
    ["skill", "The label is skill.", "```python\nprint('skill')\n```", '{"label": skill}', ""],
    ids=["bare-word", "prose", "code", "invalid-json", "empty"],
)
def test_answers_without_a_json_label_are_unparsable(answer: str) -> None:
    with pytest.raises(LLMOutputError, match="no JSON object"):
        parse_label(answer)
    with pytest.raises(LLMOutputError):
        extract_json_object(answer, key="label")


# --------------------------------------------------------------------------- replayed answers


@pytest.mark.parametrize("text", list(REC.ROUTER_GOOD), ids=range(len(REC.ROUTER_GOOD)))
def test_recorded_good_answer_routes_by_llm(llm_router: LLMRouter, text: str) -> None:
    decision = llm_router.route(text)
    assert isinstance(decision, LLMRouteDecision)
    assert decision.fallback is None, f"{decision.fallback} ({STALE})"
    assert decision.method == "llm"
    assert decision.label == REC.ROUTER_GOOD[text][0]
    assert decision.confidence == 1.0
    assert decision.scores == {lab: float(lab == decision.label) for lab in LABELS}
    assert decision.reason and decision.llm_text == REC.ROUTER_GOOD[text][1]
    assert decision.llm == REPLAY and decision.latency_s is not None
    as_dict = decision.to_dict()
    assert as_dict["method"] == "llm" and as_dict["fallback"] is None
    json.dumps(as_dict)


@pytest.mark.parametrize("text", list(REC.ROUTER_FLAWED), ids=range(len(REC.ROUTER_FLAWED)))
def test_recorded_flawed_answer_falls_back_with_reason(
    llm_router: LLMRouter, router: GrammarEmbeddingRouter, text: str
) -> None:
    _, answer, kind = REC.ROUTER_FLAWED[text]
    decision = llm_router.route(text)
    assert decision.is_fallback and decision.fallback_kind == kind, decision.fallback
    assert decision.method in ("rule", "embedding")  # never claims to be the LLM's
    assert decision.llm_text == answer  # what the model said is kept for debugging
    offline = router.route(text)
    assert (decision.label, decision.method, decision.rule) == (
        offline.label,
        offline.method,
        offline.rule,
    )
    assert decision.to_dict()["fallback"].startswith(f"{kind}: ")


def test_unrecorded_request_falls_back_naming_the_miss(llm_router: LLMRouter) -> None:
    decision = llm_router.route("push it a little further along")
    assert decision.fallback_kind == "llm_error"
    assert "no recorded exchange" in decision.fallback


@pytest.mark.parametrize("text", ["stop!", "hold on", "ok, continue", "STOP STOP"])
def test_control_routes_by_the_grammar_without_the_llm(llm_router: LLMRouter, text: str) -> None:
    decision = llm_router.route(text)  # not in the recording: asking would be a replay miss
    assert (decision.label, decision.method, decision.rule) == ("control", "rule", "control_only")
    assert decision.fallback is None and decision.llm is None and decision.latency_s is None


def test_grammar_first_answers_rule_hits_without_the_llm(embedder: MiniLMEmbedder) -> None:
    cfg = LLMRouterConfig(llm=REPLAY, grammar_first=True)
    with LLMRouter(cfg, embedder=embedder) as router:
        rule = router.route("whenever there's a cylinder, it belongs in the drawer")
        assert (rule.method, rule.rule, rule.llm) == ("rule", "standing_marker", None)
        assert router.route("you are grabbing it too close to the top").method == "llm"


def test_route_correction_and_route_many(llm_router: LLMRouter) -> None:
    texts = ["stop!", *REC.ROUTER_GOOD]
    decisions = llm_router.route_many(texts)
    assert [d.label for d in decisions] == ["control", *(v[0] for v in REC.ROUTER_GOOD.values())]
    correction = Correction(text="take the green cylinder instead", time=1.0, episode="ep-1")
    assert llm_router.route_correction(correction).label == "plan"


def test_empty_text_is_refused(llm_router: LLMRouter) -> None:
    with pytest.raises(ParseError, match="empty"):
        llm_router.route(" ?! ")


# --------------------------------------------------------------------------- registry, config


def test_registered_and_needs_an_llm(embedder: MiniLMEmbedder) -> None:
    assert "llm" in router_names() and "grammar_embedding" in router_names()
    cfg = default_router_config("llm")
    assert isinstance(cfg, LLMRouterConfig) and cfg.llm is None
    with pytest.raises(ConfigError, match="--llm"):
        make_router(cfg, embedder=embedder)
    assert default_router_config("grammar_embedding").type == "grammar_embedding"  # default kept


@pytest.mark.parametrize(
    "kwargs",
    [{"max_tokens": 0}, {"timeout_s": 0.0}, {"llm": " "}],
    ids=["max_tokens", "timeout", "empty-spec"],
)
def test_config_checks_name_the_field(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        LLMRouterConfig(**kwargs)


def test_bad_spec_and_missing_prompt_fail_at_construction(
    embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        LLMRouter(LLMRouterConfig(llm=f"replay:{tmp_path / 'none.jsonl'}"), embedder=embedder)
    missing = LLMRouterConfig(llm=REPLAY, system_prompt_path=tmp_path / "nope.md")
    with pytest.raises(ConfigError, match="prompt file"):
        LLMRouter(missing, embedder=embedder)


def test_router_closes_only_the_backend_it_built(embedder: MiniLMEmbedder) -> None:
    with LLMRouter(LLMRouterConfig(llm=REPLAY), embedder=embedder) as owned:
        pass
    assert owned.is_closed
    owned.close()  # idempotent
    config = OpenAIBackendConfig(model="m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with OpenAIBackend(config) as backend:
        with LLMRouter(llm=backend, embedder=embedder):
            pass
        assert not backend.is_closed


# --------------------------------------------------------------------------- real sockets


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback TCP port that completes handshakes (listen backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


def test_router_deadline_falls_back_on_a_silent_server(
    silent_server: str, embedder: MiniLMEmbedder
) -> None:
    config = OpenAIBackendConfig(model="m", base_url=silent_server, timeout_s=5, max_retries=0)
    with OpenAIBackend(config) as backend:
        router = LLMRouter(LLMRouterConfig(timeout_s=0.5), llm=backend, embedder=embedder)
        start = time.perf_counter()
        decision = router.route("you are grabbing it too close to the top")
        assert time.perf_counter() - start < 3.0
        assert decision.fallback_kind == "timeout", decision.fallback
        assert "0.5 s" in decision.fallback
        start = time.perf_counter()
        stop = router.route("stop!")  # the server is still silent: control must not wait
        assert time.perf_counter() - start < 0.1
        assert (stop.label, stop.method) == ("control", "rule")


def test_backend_timeout_is_reported_as_timeout(
    silent_server: str, embedder: MiniLMEmbedder
) -> None:
    config = OpenAIBackendConfig(model="m", base_url=silent_server, timeout_s=0.5, max_retries=0)
    with OpenAIBackend(config) as backend:
        router = LLMRouter(LLMRouterConfig(timeout_s=None), llm=backend, embedder=embedder)
        decision = router.route("you are grabbing it too close to the top")
    assert decision.fallback_kind == "timeout", decision.fallback
    assert "did not answer" in decision.fallback


def test_unreachable_server_falls_back(embedder: MiniLMEmbedder) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}/v1"
    config = OpenAIBackendConfig(model="m", base_url=url, max_retries=0)
    with OpenAIBackend(config) as backend:
        router = LLMRouter(llm=backend, embedder=embedder)
        decision = router.route("you are grabbing it too close to the top")
    assert decision.fallback_kind == "unreachable", decision.fallback
    assert "could not reach the LLM server" in decision.fallback
    assert decision.label in LABELS and decision.method != "llm"


# --------------------------------------------------------------------------- live loopback


def test_live_server_junk_answer_falls_back_with_reason(
    loopback_server: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    embedder: MiniLMEmbedder,
    router: GrammarEmbeddingRouter,
) -> None:
    # The documented path: an openai:<model> spec, the server from CORRIGIBLE_LLM_BASE_URL.
    monkeypatch.setenv("CORRIGIBLE_LLM_BASE_URL", loopback_server.base_url)
    monkeypatch.delenv("CORRIGIBLE_LLM_RECORD", raising=False)
    spec = f"openai:{loopback_server.model_id}"
    text = "you are grabbing it too close to the top"
    with make_router(LLMRouterConfig(llm=spec, max_tokens=24), embedder=embedder) as llm_router:
        decision = llm_router.route(text)
    assert decision.llm == spec
    assert decision.llm_text  # the tiny model really answered over HTTP...
    assert decision.latency_s is not None and decision.latency_s > 0
    assert decision.fallback_kind == "unparsable", decision.fallback  # ...with no JSON label
    assert decision.label == router.route(text).label and decision.method != "llm"


# --------------------------------------------------------------------------- the CLI


def _route(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180)


def test_cli_text_routes_by_llm() -> None:
    text = "take the green cylinder instead"
    visible = "red block,green cylinder,blue bowl"
    proc = _route("--router", "llm", "--llm", REPLAY, "--text", text, "--visible", visible)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decision"]["label"] == "plan" and result["decision"]["method"] == "llm"
    assert result["decision"]["fallback"] is None, STALE
    effect = result["interpretation"]["effects"][0]
    assert (effect["kind"], effect["new_object"]) == ("object_substitution", "green cylinder")


def test_cli_text_control_skips_the_llm() -> None:
    proc = _route("--router", "llm", "--llm", REPLAY, "--text", "stop!")
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)["decision"]
    assert (decision["label"], decision["method"], decision["llm"]) == ("control", "rule", None)


def test_cli_scores_a_file_and_counts_fallbacks(tmp_path: Path) -> None:
    rows = [{"text": t, "label": lab} for t, (lab, _) in REC.ROUTER_GOOD.items()]
    rows += [{"text": t, "label": lab} for t, (lab, _, _) in REC.ROUTER_FLAWED.items()]
    rows.append({"text": "stop!", "label": "control"})
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = _route("--router", "llm", "--llm", REPLAY, "--file", str(path))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["router"] == "llm" and result["n"] == len(rows)
    assert result["methods"]["llm"] == len(REC.ROUTER_GOOD)
    kinds = [kind for _, _, kind in REC.ROUTER_FLAWED.values()]
    assert result["fallbacks"] == {k: kinds.count(k) for k in sorted(set(kinds))}
    assert sum(map(sum, result["confusion"])) == len(rows)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--router", "llm", "--text", "slower"], "--llm"),
        (["--llm", REPLAY, "--text", "slower"], "--router llm"),
        (["--router", "llm", "--llm", "replay:/no/such.jsonl", "--text", "slower"], "not exist"),
        (["--router", "llm", "--llm", "gpt4", "--text", "slower"], "openai:<model>"),
    ],
    ids=["no-spec", "spec-without-llm-router", "missing-file", "bad-spec"],
)
def test_cli_llm_errors_exit_2(args: list[str], needle: str) -> None:
    proc = _route(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
