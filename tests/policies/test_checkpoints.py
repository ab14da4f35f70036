"""Checkpoints with evidence: images, depth and a state snapshot per checkpoint, on real physics."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from corrigible.policies.controller import (
    CheckpointEvidence,
    CheckpointVerdict,
    HierarchicalController,
    MonitorError,
)
from corrigible.policies.planners.base import PlanContext, Program
from corrigible.policies.planners.checks import checkpoint_warnings
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import RobotAPI
from corrigible.sim_envs import TabletopEnv

SCENE = ["red block", "green block", "blue block", "red bowl", "blue bowl", "green bowl"]


@pytest.mark.parametrize(
    ("source", "warns"),
    [
        ("put_first_on_second('red block', 'blue bowl')\n", True),
        ("put_first_on_second('red block', 'blue bowl')\ncheckpoint('done')\n", True),
        (
            "put_first_on_second('pink block', 'blue bowl')\n"
            "checkpoint('done', expect='in(pink block, blue bowl)')\n",
            False,
        ),
        ("say('hello')\n", False),  # nothing to monitor
        ("def (:\n", False),  # the sandbox validator reports syntax, not this check
    ],
    ids=["no-checkpoint", "no-expectation", "monitored", "no-subgoal", "unparsable"],
)
def test_checkpoint_warnings(source: str, warns: bool) -> None:
    assert bool(checkpoint_warnings(source)) is warns


@pytest.mark.parametrize(
    "instruction",
    [
        "put the red and green blocks in the blue bowl",
        "put all the blocks in the red bowl",
        "put the warm blocks in one bowl and the cool ones in another",
        "put all the blocks in the matching bowls",
        "put the red block in the blue bowl",
    ],
)
def test_grammar_programs_checkpoint_every_subgoal(instruction: str) -> None:
    ctx = PlanContext(object_names=SCENE, positions={n: [0.5, 0.0, 0.02] for n in SCENE})
    program = GrammarPlanner().plan(instruction, ctx)
    assert checkpoint_warnings(program.source) == []
    lines = program.source.splitlines()
    for i, line in enumerate(lines):  # every put is followed by a checkpoint at its own depth
        if "put_first_on_second(" in line:
            indent = line[: len(line) - len(line.lstrip())]
            assert lines[i + 1].startswith(indent + "checkpoint("), program.source


class _Scripted:
    """A monitor with fixed answers (the controller's side of the interface, not a fake robot)."""

    name = "scripted"

    def __init__(self, answers: list[bool | None | Exception]) -> None:
        self.answers = list(answers)
        self.seen: list[CheckpointEvidence] = []

    def judge(self, evidence: CheckpointEvidence) -> CheckpointVerdict:
        self.seen.append(evidence)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return CheckpointVerdict(holds=answer, reason="scripted", monitor=self.name)


@pytest.fixture
def traced_env(tmp_path: Path):
    env = TabletopEnv("mujoco", obs_mode="state", trace_path=tmp_path / "run" / "trace.jsonl")
    env.reset(seed=0)
    yield env
    env.close()


def test_evidence_is_written_next_to_the_trace(traced_env: TabletopEnv) -> None:
    controller = HierarchicalController(RobotAPI(traced_env), GrammarPlanner())
    source = "x = 1\ncheckpoint('look', expect='in(pink block, blue bowl)')\n"
    result = controller.execute(Program(source=source, planner="test"))
    assert result.status == "ok", result.message
    folder = traced_env.trace.path.parent / "checkpoints"
    (event,) = traced_env.trace.of_kind("checkpoint.evidence")
    assert event["line"] == 2 and event["line_text"].startswith("checkpoint('look'")
    rgb = cv2.imread(event["rgb"], cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(event["depth"], cv2.IMREAD_UNCHANGED)
    assert Path(event["rgb"]).parent == folder
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8 and rgb.std() > 5
    assert depth.dtype == np.uint16 and depth.shape == (480, 640)
    # millimetres from a camera ~1.3-1.9 m from the table
    assert 1000 < np.median(depth[depth > 0]) < 2500
    state = json.loads(Path(event["state"]).read_text())
    truth = traced_env.backend.object_poses()["pink block"][0]
    assert np.allclose(state["objects"]["pink block"], truth, atol=1e-4)


def test_in_memory_trace_gets_a_fresh_run_folder(state_env: TabletopEnv) -> None:
    first = HierarchicalController(RobotAPI(state_env), GrammarPlanner())
    second = HierarchicalController(RobotAPI(state_env), GrammarPlanner())
    assert first.evidence_dir != second.evidence_dir
    assert first.evidence_dir.is_dir() and first.evidence_dir.name == "checkpoints"


def test_a_failed_verdict_stops_the_program_at_its_line(traced_env: TabletopEnv) -> None:
    monitor = _Scripted([True, False])
    controller = HierarchicalController(RobotAPI(traced_env), GrammarPlanner(), monitor=monitor)
    source = (
        "checkpoint('a', expect='in(pink block, blue bowl)')\n"
        "checkpoint('b', expect='in(pink block, blue bowl)')\n"
        "say('not reached')\n"
    )
    result = controller.execute(Program(source=source, planner="test"))
    assert result.status == "error" and result.line == 2
    assert "checkpoint 'b' failed" in result.message
    assert [v["holds"] for v in controller.verdicts] == [True, False]
    assert not traced_env.trace.of_kind("say")
    assert monitor.seen[1].line == 2 and monitor.seen[1].rgb.shape == (480, 640, 3)


def test_a_monitor_error_is_a_classified_safe_stop(traced_env: TabletopEnv) -> None:
    monitor = _Scripted([MonitorError("timeout", "no answer within 1 s")])
    controller = HierarchicalController(RobotAPI(traced_env), GrammarPlanner(), monitor=monitor)
    source = (
        "try:\n"
        "    checkpoint('a', expect='in(pink block, blue bowl)')\n"
        "except Exception:\n"
        "    pass\n"
        "put_first_on_second('pink block', 'blue bowl')\n"
    )
    before = traced_env.backend.object_poses()["pink block"][0]
    result = controller.execute(Program(source=source, planner="test"))
    assert result.status == "error" and result.error_class == "interrupted"
    assert controller.monitor_failure is not None
    assert controller.monitor_failure["kind"] == "timeout"
    (event,) = traced_env.trace.of_kind("checkpoint.monitor_error")
    assert event["error_kind"] == "timeout" and event["line"] == 2
    after = traced_env.backend.object_poses()["pink block"][0]
    assert np.allclose(before, after, atol=1e-3)  # the program caught it; the robot still stopped
