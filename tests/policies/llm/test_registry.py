"""`make_llm` spec parsing, the backend base class contract, and message validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from corrigible.errors import ConfigError, LLMClosedError, LLMError, UnknownNameError
from corrigible.policies.llm import (
    LLM_BACKENDS,
    ChatMessage,
    LLMBackend,
    LLMResponse,
    make_llm,
)
from corrigible.policies.llm.registry import backend_class

FIXTURE = Path(__file__).parent / "data" / "tiny_chat.jsonl"


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("grammar", ConfigError, "planner handles it itself"),
        ("grammar:x", ConfigError, "planner handles it itself"),
        ("gramar", ConfigError, "Did you mean 'grammar'"),
        ("opnai:gpt-4o", UnknownNameError, "Did you mean 'openai'"),
        ("llama:x", UnknownNameError, "choose one of"),
        ("openai", ConfigError, "openai:<model>"),
        ("openai:", ConfigError, "openai:<model>"),
        ("local:", ConfigError, "local:bundled"),
        ("replay:", ConfigError, "replay:<file>"),
        ("replay:/no/such/file.jsonl", ConfigError, "does not exist"),
        ("local:/no/such/dir", ConfigError, "does not exist"),
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", None),
)
def test_bad_specs_say_what_to_do(spec: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make_llm(spec)


def test_unknown_backend_is_also_a_key_error() -> None:
    with pytest.raises(KeyError):
        make_llm("vllm:qwen")


def test_every_registered_backend_resolves_to_its_prefix() -> None:
    assert set(LLM_BACKENDS) == {"openai", "local", "replay"}
    for prefix in LLM_BACKENDS:
        cls = backend_class(prefix)
        assert issubclass(cls, LLMBackend)
        assert cls.spec_prefix == prefix


def test_replay_spec_builds_a_replay_backend() -> None:
    with make_llm(f"  replay:{FIXTURE}  ") as llm:
        assert llm.spec_prefix == "replay"
        assert not llm.is_closed
    assert llm.is_closed


class _EchoBackend(LLMBackend):
    spec_prefix: ClassVar[str] = "echo"

    def __init__(self) -> None:
        self.closes = 0

    @classmethod
    def from_spec(cls, argument: str) -> _EchoBackend:
        return cls()

    @property
    def name(self) -> str:
        return "echo:"

    def _complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None
    ) -> dict[str, Any]:
        text = messages[-1]["content"]
        return {"model": "echo", "choices": [{"message": {"content": text}}], "usage": {}}

    def _close(self) -> None:
        self.closes += 1


def test_base_class_guards_the_lifecycle() -> None:
    llm = _EchoBackend()
    reply = llm.complete([ChatMessage.user("put_first_on_second('a', 'b') STOP tail")])
    assert reply.text == "put_first_on_second('a', 'b') STOP tail"
    assert reply.usage.total_tokens == 0
    assert llm.complete([ChatMessage.user("abc STOP def")], stop=["STOP"]).text == "abc "
    with llm:
        pass
    llm.close()
    assert llm.closes == 1  # close() is idempotent
    with pytest.raises(LLMClosedError, match="closed"):
        llm.complete([ChatMessage.user("hi")])


@pytest.mark.parametrize(
    ("messages", "kwargs", "match"),
    [
        ([], {}, "at least one"),
        ([{"role": "user", "content": "hi"}], {}, "ChatMessage objects"),
        ([ChatMessage.user("hi")], {"max_tokens": 0}, "max_tokens"),
        ([ChatMessage.user("hi")], {"stop": [""]}, "stop"),
        ([ChatMessage.user("hi")], {"stop": []}, "stop"),
    ],
    ids=["empty", "dicts", "zero-tokens", "empty-stop-string", "empty-stop-list"],
)
def test_complete_validates_arguments(messages: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _EchoBackend().complete(messages, **kwargs)


def test_backend_without_prefix_fails_at_class_creation() -> None:
    with pytest.raises(TypeError, match="spec_prefix"):

        class _NoPrefix(LLMBackend):
            @classmethod
            def from_spec(cls, argument: str) -> _NoPrefix:
                return cls()

            @property
            def name(self) -> str:
                return "x"

            def _complete(self, messages: Any, *, max_tokens: int, stop: Any) -> dict:
                return {}

            def _close(self) -> None:
                pass


def test_chat_message_validates_role() -> None:
    assert ChatMessage.user("hi").to_wire() == {"role": "user", "content": "hi"}
    assert ChatMessage.system("s").role == "system"
    assert ChatMessage.assistant("a").role == "assistant"
    with pytest.raises(ConfigError, match="role"):
        ChatMessage(role="tool", content="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="content"):
        ChatMessage(role="user", content=None)  # type: ignore[arg-type]


def test_malformed_wire_reply_is_an_llm_error() -> None:
    with pytest.raises(LLMError, match="not a chat completion"):
        LLMResponse.from_wire({"error": "boom"}, latency_s=0.1)


def test_missing_client_package_is_dependency_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from corrigible.errors import DependencyNotInstalled

    for name in list(sys.modules):
        if name.startswith("corrigible.policies.llm.") and name.endswith(
            ("openai_backend", "replay_backend", "recorder")
        ):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "httpx2", None)
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(DependencyNotInstalled, match="pip install"):
        make_llm("openai:gpt-4o-mini")
