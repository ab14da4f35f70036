"""`kind: real_arm`: corrigible's session (planner, skills) on an arm behind rosbridge.

The "real" arm is the simulated robot in another process; the session drives it only through
its rosbridge server with `RosbridgeArm`, and the outcome is judged on that robot's physics.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from corrigible.launch.launch_file import LaunchConfig, run


@pytest.mark.slow  # about 20 s: the session's scene, planner and a full put-in-bowl at 20 Hz
def test_a_session_puts_a_block_in_a_bowl_on_the_arm_behind_rosbridge(
    robot, status, tmp_path: Path, capsys
) -> None:
    objects = status.fresh()["objects"]
    assert {"gray block", "blue bowl"} <= set(objects), sorted(objects)  # seed 0's table
    robot_cfg = {  # generous timeouts: a shared CPU can starve the robot process
        "url": robot.url,
        "camera_topic": None,
        "state_timeout_s": 10.0,
        "connect_timeout_s": 30.0,
    }
    spec = tmp_path / "real_arm.launch.yaml"
    spec.write_text(
        "kind: real_arm\n"
        "instruction: put the gray block in the blue bowl\n"
        f"robot: {json.dumps(robot_cfg)}\n"
        "session: {engine: mujoco, seed: 0, perception: camera}\n",
        encoding="utf-8",
    )
    status_code = run(LaunchConfig(file=spec))
    captured = capsys.readouterr()
    out = captured.out + captured.err
    after = status.fresh()["objects"]
    gap = np.linalg.norm(np.array(after["gray block"][:2]) - np.array(after["blue bowl"][:2]))
    assert status_code == 0, out
    assert gap < 0.05, f"the gray block is {gap * 100:.1f} cm from the blue bowl's centre\n{out}"


def test_a_lost_robot_stops_the_session_and_says_so(
    robot_factory, status_reader, tmp_path: Path, capsys
) -> None:
    process = robot_factory()
    robot_cfg = {"url": process.url, "camera_topic": None, "connect_timeout_s": 20.0}
    spec = tmp_path / "real_arm.launch.yaml"
    spec.write_text(
        "kind: real_arm\n"
        "instruction: put the gray block in the blue bowl\n"
        f"robot: {json.dumps(robot_cfg)}\n"
        "session: {engine: mujoco, seed: 0, perception: privileged}\n",
        encoding="utf-8",
    )
    reader = status_reader(process.port)
    done = threading.Event()

    def kill_mid_motion() -> None:  # once the arm is streaming set-points, in its first skill
        while not done.is_set():
            if reader.fresh()["commands"] > 20:
                process.kill()
                return

    killer = threading.Thread(target=kill_mid_motion, daemon=True)
    killer.start()
    try:
        status_code = run(LaunchConfig(file=spec))
    finally:
        done.set()
        killer.join(10)
        reader.close()
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert status_code == 1, text
    assert "the arm was stopped and the e-stop engaged" in text, text
