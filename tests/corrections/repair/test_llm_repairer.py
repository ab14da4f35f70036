"""The LLM repair path: the prompt, the validator gate, the offline fallback.

The backend returns recorded chat-completion bodies (the wire format); the loop, controller,
robot API and simulator around it are real.
"""

from __future__ import annotations

import json
from typing import Any, Self

import pytest

from corrigible.corrections.repair.localise import FailureRecord
from corrigible.corrections.repair.loop import LLMRepairer, RepairLoop, RepairOverrides
from corrigible.corrections.repair.monitors import PerceptionMonitor
from corrigible.policies.controller import HierarchicalController
from corrigible.policies.llm.base import LLMBackend
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import RobotAPI
from corrigible.sim_envs import TabletopEnv

PROGRAM = (
    "'put the pink block in the blue bowl'\n"
    "put_first_on_second('pink block', 'blue bowl')\n"
    "checkpoint('pink block placed', expect='in(pink block, blue bowl)')\n"
)


class _Recorded(LLMBackend):
    """Answers with recorded chat-completion bodies, in order; keeps the requests."""

    spec_prefix = "recorded"

    def __init__(self, answers: list[str]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[list[dict[str, str]]] = []

    @classmethod
    def from_spec(cls, argument: str) -> Self:
        return cls([argument])

    @property
    def name(self) -> str:
        return "recorded:test"

    def _complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str] | None
    ) -> dict[str, Any]:
        self.requests.append(messages)
        content = self.answers.pop(0)
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "recorded",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def _close(self) -> None:
        pass


@pytest.fixture
def loop():
    env = TabletopEnv("mujoco", obs_mode="state")
    env.reset(seed=0)
    controller = HierarchicalController(RobotAPI(env), GrammarPlanner())
    repair_loop = RepairLoop(controller, PerceptionMonitor(), RepairOverrides())
    repair_loop.instruction = "put the pink block in the blue bowl"
    repair_loop.expect = "in(pink block, blue bowl)"
    repair_loop.attempt_events = [
        {"kind": "skill", "skill": "pick", "success": False, "message": "slipped"},
    ]
    yield repair_loop
    env.close()


FAILURE = FailureRecord(
    failure_class="grasp_failure",
    line=2,
    line_text="put_first_on_second('pink block', 'blue bowl')",
    subgoal=0,
    obj="pink block",
    target="blue bowl",
    message="'pink block' slipped out of the gripper while lifting",
)


def test_a_valid_patch_is_used(loop: RepairLoop) -> None:
    patch = (
        "```python\nput_first_on_second('pink block', 'blue bowl')\n"
        "checkpoint('pink block placed', expect='in(pink block, blue bowl)')\n```"
    )
    llm = _Recorded([patch])
    plan = LLMRepairer(llm).repair(FAILURE, loop, PROGRAM)
    assert plan.strategy == "llm_patch" and plan.program.startswith("put_first_on_second(")
    (messages,) = llm.requests
    user = messages[-1]["content"]
    assert "grasp_failure at line 2" in user and PROGRAM.splitlines()[1] in user
    assert (
        json.dumps({"kind": "skill", "skill": "pick", "message": "slipped", "success": False})[:20]
        in user
    )  # the trace excerpt


@pytest.mark.parametrize(
    "answer",
    [
        "```python\nimport os\nos.system('rm -rf /')\n```",  # forbidden
        "```python\nput_first_on_second('pink block', 'blue bowl'\n```",  # syntax
        "I would slow down the grasp.",  # no code at all
    ],
    ids=["forbidden", "syntax", "prose"],
)
def test_a_refused_or_missing_patch_falls_back_offline(loop: RepairLoop, answer: str) -> None:
    plan = LLMRepairer(_Recorded([answer])).repair(FAILURE, loop, PROGRAM)
    assert plan.strategy == "regrasp_slower"  # the offline strategy for the class
    assert plan.params["pink block"]["pick"]["speed"] == pytest.approx(0.125)
    assert "LLM" in plan.description
