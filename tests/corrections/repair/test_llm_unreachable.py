"""An LLM repairer whose server hangs, is unreachable or answers junk: a classified error.

The server is a real HTTP server on loopback (the `vlm_server` fixture) and the client the
real `openai:` backend; the loop, controller and simulator are real. A failed LLM repair is
never a crash: the error is classified (its type named in the attempt) and the offline
strategy for the failure class runs instead, so the robot is never left mid-repair.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corrigible.corrections.repair.localise import FailureRecord
from corrigible.corrections.repair.loop import LLMRepairer, RepairLoop, RepairOverrides
from corrigible.corrections.repair.monitors import PerceptionMonitor
from corrigible.policies.controller import HierarchicalController
from corrigible.policies.llm.openai_backend import OpenAIBackend, OpenAIBackendConfig
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import RobotAPI
from corrigible.sim_envs import TabletopEnv

PROGRAM = (
    "put_first_on_second('pink block', 'blue bowl')\n"
    "checkpoint('pink block placed', expect='in(pink block, blue bowl)')\n"
)
FAILURE = FailureRecord(
    failure_class="grasp_failure",
    line=1,
    line_text="put_first_on_second('pink block', 'blue bowl')",
    subgoal=0,
    obj="pink block",
    target="blue bowl",
    message="'pink block' slipped out of the gripper while lifting",
)


def _free_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def loop() -> Iterator[RepairLoop]:
    env = TabletopEnv("mujoco", obs_mode="state")
    env.reset(seed=0)
    controller = HierarchicalController(RobotAPI(env), GrammarPlanner())
    repair_loop = RepairLoop(controller, PerceptionMonitor(), RepairOverrides())
    repair_loop.instruction = "put the pink block in the blue bowl"
    repair_loop.expect = "in(pink block, blue bowl)"
    yield repair_loop
    env.close()


def _llm(base_url: str) -> OpenAIBackend:
    return OpenAIBackend(
        OpenAIBackendConfig(
            model="coder-test",
            base_url=base_url,
            timeout_s=0.5,
            connect_timeout_s=0.5,
            max_retries=0,
        )
    )


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (("hang", 10.0), "LLMUnreachableError"),
        (("raw", 200, "<html>gateway</html>"), "LLMError"),
        (("raw", 200, '{"choices": []}'), "LLMError"),
        (("raw", 500, '{"error": {"message": "out of memory"}}'), "LLMError"),
        (("recording", "junk_prose"), "LLMOutputError"),  # prose: no code in it
    ],
    ids=["hang", "html", "no-choices", "http-500", "prose"],
)
def test_a_failing_llm_falls_back_with_the_error_named(
    vlm_server, loop: RepairLoop, reply: tuple, error: str
) -> None:
    vlm_server.replies.append(reply)
    llm = _llm(vlm_server.base_url)
    t0 = time.perf_counter()
    plan = LLMRepairer(llm).repair(FAILURE, loop, PROGRAM)
    llm.close()
    assert time.perf_counter() - t0 < 8  # a hung server costs its timeout, not forever
    assert len(vlm_server.requests) == 1  # it was really asked, over HTTP
    assert plan.strategy == "regrasp_slower" and error in plan.description
    assert "LLM" in plan.description


def test_an_unreachable_llm_falls_back(loop: RepairLoop) -> None:
    llm = _llm(f"http://127.0.0.1:{_free_port()}/v1")
    plan = LLMRepairer(llm).repair(FAILURE, loop, PROGRAM)
    llm.close()
    assert plan.strategy == "regrasp_slower"
    assert "LLM repair failed: LLMUnreachableError" in plan.description


def test_an_unreachable_llm_mid_episode_still_repairs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`--repairer openai:<model>` with the server down: the episode ends, classified."""
    from corrigible.corrections.repair.faults import Fault
    from corrigible.launch.evaluations.repair import run_episode

    monkeypatch.setenv("CORRIGIBLE_LLM_BASE_URL", f"http://127.0.0.1:{_free_port()}/v1")
    monkeypatch.setenv("CORRIGIBLE_LLM_TIMEOUT_S", "1")
    episode = run_episode(
        engine="mujoco",
        seed=0,
        instruction="put the red block in the blue bowl",
        expect="in(red block, blue bowl)",
        fault=Fault(kind="grasp_slip"),
        repairer="openai:coder-test",
        trace=tmp_path / "run" / "trace.jsonl",
    )
    assert episode["failures"][0]["failure_class"] == "grasp_failure"
    first = episode["attempts"][0]
    assert "LLMUnreachableError" in first["description"]
    assert first["strategy"] == "regrasp_slower"
    assert episode["status"] in ("ok", "gave_up") and episode["success"] == (
        episode["status"] == "ok"
    )
    assert "repair.attempt" in (tmp_path / "run" / "trace.jsonl").read_text()
