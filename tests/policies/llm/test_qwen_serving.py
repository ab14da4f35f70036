"""`corrigible llm serve`, the `openai:coder-*` defaults, the hybrid planner, Qwen-style answers.

The default tests check configuration, the CLI's refusals, the hybrid planner's routing and the
classification of the malformed answers Qwen2.5-Coder typically gives. The slow tests serve the
real bundled 0.5B model with llama-cpp-python on loopback and plan through it (when installed).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corrigible.errors import ConfigError, DependencyNotInstalled, LLMOutputError
from corrigible.policies.llm.base import LLMBackend
from corrigible.policies.llm.hybrid import HybridPlanner, make_hybrid_planner
from corrigible.policies.llm.llama_server import ServeConfig, default_base_url
from corrigible.policies.llm.openai_backend import OpenAIBackendConfig
from corrigible.policies.planners.base import PlanContext
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.planners.llm_planner import LLMPlanner

CTX = PlanContext(
    object_names=["red block", "green block", "blue block", "green bowl", "blue bowl"],
    positions={},
)


class _Scripted(LLMBackend):
    """Answers from a list and counts the calls (the planner logic around it is the real one)."""

    spec_prefix = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    @classmethod
    def from_spec(cls, argument: str) -> _Scripted:
        return cls([argument])

    @property
    def name(self) -> str:
        return "scripted"

    def _complete(self, messages: Any, *, max_tokens: int, stop: Any) -> dict[str, Any]:
        self.calls += 1
        text = self.answers.pop(0)
        return {
            "model": "scripted",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"content": text}}],
        }

    def _close(self) -> None:
        pass


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_serve_accepts_loopback_hosts(host: str) -> None:
    assert ServeConfig(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.4", "example.org"])
def test_serve_refuses_other_hosts(host: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        ServeConfig(host=host)


def test_serve_refuses_a_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a bundled model"):
        ServeConfig(model=str(tmp_path / "nothing.gguf")).gguf()
    assert ServeConfig(model=str(tmp_path / "my-model.gguf")).alias == "my-model"
    assert ServeConfig(model="coder-0.5b").alias == "coder-0.5b"


def test_cli_refuses_a_public_host_with_exit_2() -> None:
    from corrigible.launch.llm import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `llm` a sub-command group
        pass

    result = CliRunner().invoke(app, ["llm", "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "loopback" in result.output


def test_bundled_model_ids_default_to_the_loopback_server() -> None:
    assert OpenAIBackendConfig.from_env("coder-1.5b", environ={}).base_url == default_base_url()
    assert default_base_url() == "http://127.0.0.1:8080/v1"
    other = "http://127.0.0.1:9000/v1"
    given = {"CORRIGIBLE_LLM_BASE_URL": other}
    assert OpenAIBackendConfig.from_env("coder-1.5b", environ=given).base_url == other
    assert OpenAIBackendConfig.from_env("gpt-4o-mini", environ={}).base_url is None


def test_hybrid_asks_the_llm_only_about_what_the_grammar_refuses() -> None:
    llm = _Scripted(["```python\nput_first_on_second('green block', 'blue bowl')\n```"])
    planner = HybridPlanner(GrammarPlanner(), LLMPlanner(llm))
    program = planner.plan("put the red block in the green bowl", CTX)
    assert llm.calls == 0 and program.family != "llm-fallback"
    program = planner.plan("put the block that looks like grass on the ocean", CTX)
    assert llm.calls == 1 and planner.fallbacks == 1
    assert program.family == "llm-fallback"
    assert "put_first_on_second('green block', 'blue bowl')" in program.source
    assert any("grammar planner refused" in note for note in program.notes)


def test_hybrid_spec_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"grammar\+<llm spec>"):
        make_hybrid_planner("grammar+")
    with pytest.raises(ConfigError):
        make_hybrid_planner("openai:coder-1.5b")


# Shapes of answers Qwen2.5-Coder gives: prose around a fence, an import the sandbox refuses,
# code cut off mid-statement by max_tokens, an explanation without code.
_QWEN_ANSWERS_OK = [
    "Here is the code:\n```python\nput_first_on_second('red block', 'green bowl')\n```\n"
    "This moves the red block into the green bowl.",
    "```python\n# Move the red block\nput_first_on_second('red block', 'green bowl')\n"
    "checkpoint('done', expect='in(red block, green bowl)')\n```",
]
_QWEN_ANSWERS_BAD = [
    "```python\nimport numpy as np\nimport os\nos.system('ls')\n```",
    "```python\nfor block in get_obj_names(:\n    put_first_on_second(block,\n```",
    "To do that, the robot should pick up the red block and place it in the green bowl.",
    "",
]


@pytest.mark.parametrize("answer", _QWEN_ANSWERS_OK, ids=["prose-around", "comments"])
def test_qwen_style_answers_are_extracted(answer: str) -> None:
    program = LLMPlanner(_Scripted([answer])).plan("put the red block in the green bowl", CTX)
    assert "put_first_on_second('red block', 'green bowl')" in program.source


@pytest.mark.parametrize("answer", _QWEN_ANSWERS_BAD, ids=["import", "cut-off", "prose", "empty"])
def test_malformed_qwen_answers_are_classified(answer: str) -> None:
    with pytest.raises(LLMOutputError):
        LLMPlanner(_Scripted([answer])).plan("put the red block in the green bowl", CTX)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:  # loopback only
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def served_coder_05b() -> Any:
    """`corrigible llm serve --model coder-0.5b` on a free loopback port (a subprocess)."""
    from corrigible.policies.llm.llama_server import require_llama_cpp
    from corrigible.policies.llm.model_cache import bundled_model, part_paths

    try:
        require_llama_cpp()
        part_paths(bundled_model("coder-0.5b"))
    except DependencyNotInstalled as exc:
        pytest.skip(str(exc))
    port = _free_port()
    code = (
        "import typer; from corrigible.launch.llm import register\n"
        "app = typer.Typer(); register(app)\n"
        "app.command('noop')(lambda: None)\n"
        f"app(['llm', 'serve', '--model', 'coder-0.5b', '--port', '{port}', '--ctx', '4096'])\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, env={**os.environ}
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}")
            try:
                _get_json(f"{base}/models")
                break
            except (urllib.error.URLError, OSError):
                time.sleep(1)
        else:
            pytest.fail("the server did not answer within 180 s")
        yield base
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_real_coder_05b_plans_through_the_loopback_server(
    served_coder_05b: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One real plan through `openai:coder-0.5b` (the fixed prompt prefix is cached after it)."""
    monkeypatch.setenv("CORRIGIBLE_LLM_BASE_URL", served_coder_05b)
    from corrigible.policies.llm.registry import make_llm

    models = _get_json(f"{served_coder_05b}/models")
    assert [m["id"] for m in models["data"]] == ["coder-0.5b"]
    with make_llm("openai:coder-0.5b") as llm:
        program = LLMPlanner(llm).plan("put the red block in the green bowl", CTX)
    assert "put_first_on_second" in program.source
    assert "red block" in program.source and "green bowl" in program.source
