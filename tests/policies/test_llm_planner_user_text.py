"""The LLM planner puts user text into its prompt one line at a time, never as extra lines."""

from __future__ import annotations

from typing import Any

import pytest

from corrigible.policies.llm.base import LLMBackend
from corrigible.policies.planners.base import PlanContext
from corrigible.policies.planners.llm_planner import LLMPlanner


class _Recorder(LLMBackend):
    """Answers one fixed program and keeps every prompt it was sent."""

    spec_prefix = "recorder"

    def __init__(self) -> None:
        self._closed = False
        self.prompts: list[list[dict[str, str]]] = []

    @classmethod
    def from_spec(cls, argument: str) -> _Recorder:
        return cls()

    @property
    def name(self) -> str:
        return "recorder"

    def _complete(self, messages: Any, *, max_tokens: int, stop: Any) -> dict[str, Any]:
        self.prompts.append(
            [m if isinstance(m, dict) else {"role": m.role, "content": m.content} for m in messages]
        )
        text = "```python\nput_first_on_second('red block', 'blue bowl')\n```"
        message = {"role": "assistant", "content": text}
        return {
            "model": "recorder",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        }

    def _close(self) -> None:
        pass


@pytest.mark.parametrize("style", ["full", "compact"])
def test_instruction_corrections_and_knowledge_stay_on_one_line(style):
    llm = _Recorder()
    context = PlanContext(
        object_names=["red block", "blue bowl"],
        positions={},
        corrections=["slower\nINJECTED()"],
        knowledge=["grip harder\u2028INJECTED()"],
    )
    instruction = "put the red block in the blue bowl\nINJECTED()\x1b[2J"
    program = LLMPlanner(llm, prompt_style=style).plan(instruction, context)
    assert program.source.strip() == "put_first_on_second('red block', 'blue bowl')"
    for message in llm.prompts[0]:
        for line in message["content"].splitlines():
            assert not line.startswith("INJECTED"), (message["role"], line)
        assert "\x1b" not in message["content"]
    last = llm.prompts[0][-1]["content"]
    assert "put the red block in the blue bowl INJECTED()" in last
