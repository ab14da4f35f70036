"""A real MuJoCo session behind the rosbridge server, driven by the real roslibpy client.

Instructions published on /corrigible/instruction run as episodes; a correction published on
/corrigible/correction while one runs changes it (the place target moves to the bowl the
person named, and the episode's expected predicate then holds); /corrigible/stop ends a
running episode and the bridge goes on serving.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import roslibpy
from PIL import Image
from rosbridge_testing import EventLog, ros_client, wait_for

from corrigible.robots.bridge.server import RosbridgeServer
from corrigible.robots.bridge.session_node import NodeConfig, SessionNode
from corrigible.session import Session, SessionConfig

PICK_THEN_PLACE = "pick up the red block then place it in the red bowl"
TO_GRAY = "in(red block, gray bowl)"
CLI = [sys.executable, "-m", "corrigible.launch.cli"]


@pytest.fixture
def node(router) -> Iterator[SessionNode]:
    """A server and a node whose episodes are interactive MuJoCo sessions (shared router).

    Objects are seen through privileged perception: the bridge does not depend on how the
    planner sees, and it shortens each episode (`corrigible bridge` uses the camera).
    """

    def make(episode: str) -> Session:
        config = SessionConfig(interactive=True, episode=episode, perception="privileged")
        return Session(config, router=router)

    with RosbridgeServer(port=0) as server, SessionNode(server, make, NodeConfig()) as started:
        yield started


def _instruct(ros: Any, instruction: str, expect: str | None = None) -> None:
    topic = roslibpy.Topic(ros, "/corrigible/instruction", "std_msgs/String")
    data = json.dumps({"instruction": instruction, "expect": expect}) if expect else instruction
    topic.publish(roslibpy.Message({"data": data}))


def _result(log: EventLog, count: int, timeout_s: float = 180.0) -> dict[str, Any]:
    assert wait_for(lambda: len(log.of_kind("bridge.episode.result")) >= count, timeout_s), (
        log.kinds()[-20:]
    )
    return log.of_kind("bridge.episode.result")[count - 1]["data"]


def test_a_correction_over_the_bridge_changes_the_running_episode(node: SessionNode) -> None:
    log, states, poses, images = EventLog(), [], [], []
    with ros_client(node.server.port) as ros:
        roslibpy.Topic(ros, "/corrigible/events", "std_msgs/String").subscribe(log)
        roslibpy.Topic(ros, "/joint_states", "sensor_msgs/JointState").subscribe(states.append)
        roslibpy.Topic(ros, "/ee_pose", "geometry_msgs/PoseStamped").subscribe(poses.append)
        camera = roslibpy.Topic(ros, "/camera/image/compressed", "sensor_msgs/CompressedImage")
        camera.subscribe(images.append)
        correction = roslibpy.Topic(ros, "/corrigible/correction", "std_msgs/String")
        assert wait_for(lambda: node.server.subscriber_count("/corrigible/events") == 1)

        _instruct(ros, PICK_THEN_PLACE, TO_GRAY)
        assert wait_for(lambda: "skill.start" in log.kinds(), 120)  # the pick has started
        correction.publish(roslibpy.Message({"data": "no, the gray bowl"}))
        corrected = _result(log, 1)

    (reply,) = log.of_kind("correction.reply")
    assert reply["data"]["status"] == "applied" and "gray bowl" in reply["data"]["reply"]
    assert corrected["expect_holds"] is True, corrected["expect_details"]
    places = [s for step in corrected["steps"] for s in step["skills"] if s["skill"] != "pick"]
    assert places[-1]["args"]["target"] == "gray bowl"  # the instruction said the red bowl
    kinds = log.kinds()
    for kind in ("bridge.instruction.accepted", "bridge.episode.start", "program.lines"):
        assert kind in kinds, kind
    assert kinds.index("skill.start") < kinds.index("correction.reply")  # taken mid-episode

    assert len(states) > 20
    assert states[-1]["name"][:2] == ["panda_joint1", "panda_joint2"]
    assert len(states[-1]["position"]) == len(states[-1]["name"]) == 9
    assert abs(states[-1]["header"]["stamp"]["secs"] - time.time()) < 60
    pose = poses[-1]["pose"]
    quat = [pose["orientation"][k] for k in "xyzw"]
    assert sum(q * q for q in quat) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 < pose["position"]["z"] < 1.0 and poses[-1]["header"]["frame_id"] == "world"
    assert images and images[-1]["format"] == "jpeg"
    picture = Image.open(io.BytesIO(base64.b64decode(images[-1]["data"])))
    assert picture.size == (320, 240)


@pytest.mark.slow
def test_without_the_correction_the_same_episode_ends_in_the_red_bowl(node: SessionNode) -> None:
    log = EventLog()
    with ros_client(node.server.port) as ros:
        roslibpy.Topic(ros, "/corrigible/events", "std_msgs/String").subscribe(log)
        assert wait_for(lambda: node.server.subscriber_count("/corrigible/events") == 1)
        _instruct(ros, PICK_THEN_PLACE, "in(red block, red bowl)")
        plain = _result(log, 1)
    assert plain["expect_holds"] is True, plain["expect_details"]
    assert not log.of_kind("correction.reply")


def test_stop_ends_the_running_episode_and_bad_messages_are_answered(node: SessionNode) -> None:
    log = EventLog()
    with ros_client(node.server.port) as ros:
        roslibpy.Topic(ros, "/corrigible/events", "std_msgs/String").subscribe(log)
        stop = roslibpy.Service(ros, "/corrigible/stop", "std_srvs/Trigger")
        assert wait_for(lambda: node.server.subscriber_count("/corrigible/events") == 1)
        idle = stop.call(roslibpy.ServiceRequest(), timeout=10)
        assert idle["success"] is False and "no episode" in idle["message"]

        _instruct(ros, "put the red block in the gray bowl", TO_GRAY)
        assert wait_for(lambda: "arm.move_to" in log.kinds(), 120)
        stopped = stop.call(roslibpy.ServiceRequest(), timeout=10)
        assert stopped["success"] is True
        first = _result(log, 1)

        instruction = roslibpy.Topic(ros, "/corrigible/instruction", "std_msgs/String")
        for data in ("   ", '{"instruction": ', '{"instruction": "x", "speed": 3}'):
            instruction.publish(roslibpy.Message({"data": data}))
        instruction.publish(roslibpy.Message({"data": 42}))
        assert wait_for(lambda: len(log.of_kind("bridge.instruction.refused")) == 4)
        _instruct(ros, "put the red block in the gray bowl", TO_GRAY)  # the bridge goes on
        second = _result(log, 2)

    (step,) = first["steps"]
    assert step["error_class"] == "interrupted" and first["expect_holds"] is False
    assert second["expect_holds"] is True, second["expect_details"]
    refusals = [e["data"]["error"] for e in log.of_kind("bridge.instruction.refused")]
    assert "empty" in refusals[0] and "JSON" in refusals[1]
    assert "speed" in refusals[2] and "data" in refusals[3]


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [*CLI, "bridge", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "# rosbridge v2 on ws://127.0.0.1:PORT (...)"
    if "ws://" not in line:
        proc.kill()
        pytest.fail(f"no URL printed: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    port = int(line.split("ws://127.0.0.1:")[1].split()[0])
    return proc, port


def test_the_bridge_verb_serves_and_stops_on_sigterm() -> None:
    proc, port = _start_cli("--sim", "mujoco")
    try:
        states: list[dict[str, Any]] = []
        with ros_client(port) as ros:
            topics = set(ros.get_topics())
            services = set(ros.get_services())
            roslibpy.Topic(ros, "/joint_states", "sensor_msgs/JointState").subscribe(states.append)
            assert wait_for(lambda: len(states) >= 3, 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0
    assert {"/joint_states", "/ee_pose", "/camera/image/compressed", "/corrigible/events"} <= topics
    assert {"/corrigible/instruction", "/corrigible/correction"} <= topics
    assert {"/corrigible/stop", "/rosapi/topics", "/rosapi/get_time"} <= services


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "without authentication"),
        (["--host", "0.0.0.0", "--token-file", "short"], "at least 16"),
        (["--token-file", "missing"], "token file"),
        (["--sim", "mujco"], "--sim must be"),
    ],
    ids=["no-token", "short-token", "missing-token-file", "bad-sim"],
)
def test_the_bridge_verb_refuses_unsafe_or_bad_options(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "short").write_text("tooshort\n")
    args = [str(tmp_path / a) if a in ("short", "missing") else a for a in args]
    out = subprocess.run(
        [*CLI, "bridge", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
