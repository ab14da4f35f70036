"""Planner -> sandboxed program -> skills, on real physics and camera perception."""

import threading
import time

import pytest

from corrigible.policies.controller import HierarchicalController
from corrigible.policies.planners.base import Program
from corrigible.policies.planners.grammar import GrammarPlanner
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.sandbox import SandboxLimits
from corrigible.sim_envs.predicates import WorldState, parse_predicate


def holds(env, text):
    return parse_predicate(text, env.scene).evaluate(WorldState.from_info(env.scene, env._info()))


def test_stack_with_camera_perception(state_env):
    controller = HierarchicalController(RobotAPI(state_env), GrammarPlanner())
    outcome = controller.run("stack all the blocks")
    assert outcome.status == "ok", outcome.message
    ok, details = holds(state_env, "stacked(all blocks)")
    assert ok, details
    kinds = {e["kind"] for e in state_env.trace.events}
    assert {"plan", "api", "skill", "checkpoint", "program.result"} <= kinds
    assert any(e["kind"] == "api" and e["perception"] == "camera" for e in state_env.trace.events)


def test_session_undo_and_same(state_env):
    controller = HierarchicalController(RobotAPI(state_env), GrammarPlanner())
    start = state_env.backend.object_poses()["purple block"][0]
    assert controller.run("put the purple block in the gray bowl").status == "ok"
    assert controller.run("undo that").status == "ok"
    back = state_env.backend.object_poses()["purple block"][0]
    assert ((back[:2] - start[:2]) ** 2).sum() ** 0.5 < 0.03
    assert controller.run("do the same with the pink block").status == "ok"
    assert holds(state_env, "in(pink block, gray bowl)")[0]


def test_infinite_loop_is_stopped_and_episode_ends_cleanly(state_env):
    # The CPU limit stops the loop; wall time counts skills too, so it leaves the pick-place
    # below room to run.
    controller = HierarchicalController(
        RobotAPI(state_env),
        GrammarPlanner(),
        limits=SandboxLimits(wall_time_s=60.0, cpu_time_s=1.0),
    )
    result = controller.execute(Program(source="while True:\n    x = 1\n", planner="test"))
    assert result.status == "error" and result.error_class == "timeout"
    assert result.line in (1, 2)  # the loop header or its body, wherever the limit struck
    assert controller.run("put the purple block in the gray bowl").status == "ok"  # still usable


def test_pause_resume_interrupt_inside_a_skill(state_env):
    controller = HierarchicalController(RobotAPI(state_env), GrammarPlanner())
    outcome = {}
    worker = threading.Thread(
        target=lambda: outcome.update(o=controller.run("stack all the blocks"))
    )
    worker.start()
    deadline = time.time() + 60
    while (
        not any(e["kind"] == "arm.move_to" for e in state_env.trace.events)
        and time.time() < deadline
    ):
        time.sleep(0.01)
    controller.control.pause()
    time.sleep(0.3)
    t_paused = state_env.backend.time
    time.sleep(0.5)
    assert state_env.backend.time == t_paused  # frozen mid-skill
    controller.control.resume()
    time.sleep(0.3)
    assert state_env.backend.time > t_paused
    controller.control.interrupt("operator said stop")
    worker.join(timeout=60)
    assert outcome["o"].status == "error" and outcome["o"].error_class == "interrupted"


@pytest.mark.parametrize(
    "program", ["import os\n", "open('/etc/passwd')\n", "().__class__.__bases__\n"]
)
def test_hostile_program_is_refused(state_env, program):
    controller = HierarchicalController(RobotAPI(state_env), GrammarPlanner())
    result = controller.execute(Program(source=program, planner="test"))
    assert result.status == "error" and result.error_class == "forbidden"
