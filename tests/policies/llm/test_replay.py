"""Recording against the live server, and replaying through the real `openai` client path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrigible.errors import ConfigError, ParseError, ReplayMissError
from corrigible.policies.llm import ChatMessage, make_llm
from corrigible.policies.llm.recorder import httpx
from corrigible.policies.llm.replay_backend import (
    ReplayBackend,
    ReplayBackendConfig,
    ReplayTransport,
)
from loopback_llm import TINY_ANSWER, LoopbackServer

FIXTURE = Path(__file__).parent / "data" / "tiny_chat.jsonl"
CHATS = [
    ([ChatMessage.system("Robot code only."), ChatMessage.user("put the red block away")], None),
    ([ChatMessage.user("stack the blocks")], ["blue"]),
]


def _chat_of(request_body: dict) -> list[ChatMessage]:
    return [ChatMessage(role=m["role"], content=m["content"]) for m in request_body["messages"]]


def test_record_then_replay_is_byte_identical(
    openai_env: LoopbackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recording = tmp_path / "session.jsonl"
    monkeypatch.setenv("CORRIGIBLE_LLM_RECORD", str(recording))
    with make_llm(f"openai:{openai_env.model_id}") as live:
        live_replies = [live.complete(chat, max_tokens=40, stop=stop) for chat, stop in CHATS]
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert len(lines) == len(CHATS)
    assert lines[0]["request"]["method"] == "POST"
    assert lines[0]["request"]["path"] == "/v1/chat/completions"
    assert lines[0]["request"]["body"]["temperature"] == 0.0
    assert lines[0]["response"]["status"] == 200
    assert lines[0]["response"]["body"] == live_replies[0].raw

    monkeypatch.delenv("CORRIGIBLE_LLM_RECORD")
    with make_llm(f"replay:{recording}") as replay:
        assert isinstance(replay, ReplayBackend)
        # The stock `openai` client with only its transport swapped: the live code path.
        assert type(replay._client).__module__.startswith("openai")
        assert "replay.invalid" in replay.base_url
        for (chat, stop), live_reply in zip(CHATS, live_replies, strict=True):
            replayed = replay.complete(chat, max_tokens=40, stop=stop)
            assert replayed.text == live_reply.text
            assert replayed.text.encode() == live_reply.text.encode()
            assert replayed.raw == live_reply.raw
            assert replayed.usage == live_reply.usage
    assert live_replies[0].text == TINY_ANSWER
    assert "blue" not in live_replies[1].text  # stop strings are cut, whatever the server does


def test_committed_fixture_replays_without_a_server() -> None:
    exchanges = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert exchanges, "regenerate with python tests/policies/llm/data/make_replay_fixture.py"
    with make_llm(f"replay:{FIXTURE}") as llm:
        assert llm.name == f"replay:{FIXTURE}"
        for exchange in exchanges:
            body = exchange["request"]["body"]
            reply = llm.complete(
                _chat_of(body), max_tokens=body["max_tokens"], stop=body.get("stop")
            )
            recorded = exchange["response"]["body"]["choices"][0]["message"]["content"]
            assert recorded.startswith(reply.text)
            assert reply.raw == exchange["response"]["body"]
    first = exchanges[0]["response"]["body"]["choices"][0]["message"]["content"]
    assert first == TINY_ANSWER


def test_replay_miss_names_the_closest_request() -> None:
    with make_llm(f"replay:{FIXTURE}") as llm, pytest.raises(ReplayMissError) as info:
        llm.complete(
            [
                ChatMessage.system("You write Python code for a tabletop robot."),
                ChatMessage.user("put the red block in the GREEN bowl"),
            ],
            max_tokens=48,
        )
    message = str(info.value)
    assert "no recorded exchange" in message
    assert "messages[1].content" in message  # names the field that differs
    assert "put the red block in the blue bowl" in message  # shows the closest recording
    assert "re-record" in message


def test_replay_miss_on_max_tokens() -> None:
    with make_llm(f"replay:{FIXTURE}") as llm, pytest.raises(ReplayMissError, match="max_tokens"):
        llm.complete([ChatMessage.user("stack the blocks")], max_tokens=47, stop=["bowl"])


def test_recorded_error_replies_replay_as_errors(tmp_path: Path) -> None:
    from corrigible.errors import LLMModelNotFoundError

    body = {"model": "gone", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    body["temperature"] = 0.0
    line = {
        "request": {"method": "POST", "path": "/v1/chat/completions", "body": body},
        "response": {"status": 404, "body": {"error": {"message": "model 'gone' not found"}}},
    }
    path = tmp_path / "err.jsonl"
    path.write_text(json.dumps(line) + "\n")
    llm = make_llm(f"replay:{path}")
    with llm, pytest.raises(LLMModelNotFoundError, match="model 'gone' not found"):
        llm.complete([ChatMessage.user("hi")], max_tokens=8)


def test_replay_transport_ignores_client_added_fields() -> None:
    transport = ReplayTransport(FIXTURE)
    body = json.loads(FIXTURE.read_text().splitlines()[0])["request"]["body"]
    body = {**body, "stream": False, "user": "x", "temperature": 0}  # int 0 == 0.0
    with httpx.Client(transport=transport) as client:
        reply = client.post("http://replay.invalid/v1/chat/completions", json=body)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["choices"][0]["message"]["content"] == TINY_ANSWER


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ("not json\n", ParseError, ":1 is not a recorded exchange"),
        ('{"request": {}}\n', ParseError, "is not a recorded exchange"),
    ],
    ids=["not-json", "no-response"],
)
def test_bad_recording_is_a_parse_error(
    tmp_path: Path, content: str, error: type[Exception], match: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(error, match=match):
        make_llm(f"replay:{path}")


def test_recording_with_several_models_needs_a_choice(tmp_path: Path) -> None:
    lines = FIXTURE.read_text().splitlines()
    other = json.loads(lines[0])
    other["request"]["body"]["model"] = "other-model"
    path = tmp_path / "two.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(other)]) + "\n")
    with pytest.raises(ConfigError, match="other-model"):
        make_llm(f"replay:{path}")
    with ReplayBackend(ReplayBackendConfig(path=path, model="other-model")) as llm:
        reply = llm.complete(_chat_of(other["request"]["body"]), max_tokens=48)
    assert reply.text == TINY_ANSWER
