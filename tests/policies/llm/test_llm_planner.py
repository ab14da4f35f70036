"""The LLM planner end to end: a real OpenAI-compatible server on loopback writes the program,
the sandbox runs it, the robot does it; the exchange is recorded and replayed offline."""

from __future__ import annotations

from typing import Any

import pytest

from corrigible.errors import LLMOutputError
from corrigible.policies.llm.base import LLMBackend
from corrigible.policies.llm.registry import make_llm
from corrigible.policies.planners.base import PlanContext
from corrigible.policies.planners.llm_planner import LLMPlanner
from corrigible.session import Session


def test_openai_planner_drives_the_robot_and_replays(openai_env, tmp_path, monkeypatch):
    recording = tmp_path / "planner.jsonl"
    monkeypatch.setenv("CORRIGIBLE_LLM_RECORD", str(recording))
    # The loopback model has a 512-token context, so it gets the compact prompt.
    planner = LLMPlanner(make_llm(f"openai:{openai_env.model_id}"), prompt_style="compact")
    with Session(planner=planner) as session:
        live = session.run("put the red block in the blue bowl", expect="in(red block, blue bowl)")
    assert live.expect_holds, (live.steps[0]["message"], live.steps[0]["program"])
    assert "put_first_on_second('red block', 'blue bowl')" in live.steps[0]["program"]
    monkeypatch.delenv("CORRIGIBLE_LLM_RECORD")
    replay_planner = LLMPlanner(make_llm(f"replay:{recording}"), prompt_style="compact")
    with Session(planner=replay_planner) as session:
        replayed = session.run(
            "put the red block in the blue bowl", expect="in(red block, blue bowl)"
        )
    assert replayed.expect_holds and replayed.steps[0]["program"] == live.steps[0]["program"]


class _Scripted(LLMBackend):
    """Answers from a list, for the fgen recursion logic only (no wire involved)."""

    spec_prefix = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self._closed = False
        self.answers = list(answers)
        self.prompts: list[str] = []

    @classmethod
    def from_spec(cls, argument: str) -> _Scripted:
        return cls([argument])

    @property
    def name(self) -> str:
        return "scripted"

    def _complete(self, messages: Any, *, max_tokens: int, stop: Any) -> dict[str, Any]:
        last = messages[-1]
        self.prompts.append(last["content"] if isinstance(last, dict) else last.content)
        text = self.answers.pop(0)
        return {
            "model": "scripted",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
        }

    def _close(self) -> None:
        pass


CTX = PlanContext(object_names=["green block", "purple block", "gray bowl"], positions={})


def test_fgen_writes_missing_functions_recursively():
    llm = _Scripted(
        [
            "```python\nname = get_block_left_of('gray bowl')\n"
            "put_first_on_second(name, 'top right corner')\n```",
            "```python\ndef get_block_left_of(ref):\n    return closest_block(ref)\n```",
            "```python\ndef closest_block(ref):\n"
            "    return [n for n in get_obj_names() if n.endswith(' block')][0]\n```",
        ]
    )
    program = LLMPlanner(llm).plan(
        "move the block left of the gray bowl to the top right corner", CTX
    )
    assert program.source.index("def closest_block") < program.source.index("def get_block_left_of")
    assert "define function: get_block_left_of(arg0)" in llm.prompts[1]
    assert program.llm_calls == 3  # the program and two fgen definitions, as evals count them


def test_invalid_llm_output_is_a_validation_error():
    with pytest.raises(LLMOutputError, match="refuses|no code|no such"):
        LLMPlanner(_Scripted(["```python\nimport os\nos.remove('x')\n```"])).plan("do it", CTX)
    with pytest.raises(LLMOutputError):
        LLMPlanner(_Scripted(["I am sorry, I cannot help with that."])).plan("do it", CTX)
    with pytest.raises(LLMOutputError, match="undefined"):
        LLMPlanner(
            _Scripted(
                [
                    "```python\nf()\n```",
                    "```python\ndef f():\n    g()\n```",
                    "```python\ndef g():\n    h()\n```",
                ]
            ),
            fgen_depth=2,
        ).plan("do it", CTX)
