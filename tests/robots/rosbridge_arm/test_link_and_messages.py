"""RosbridgeArm's link checks against a live in-process RosbridgeServer, and its message codecs.

The server is the project's real websocket server on a free loopback port; the robot side is a
thread publishing joint states through it (then falling silent, to make the state stale).
"""

from __future__ import annotations

import base64
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from corrigible.errors import ConfigError, EmergencyStopError
from corrigible.robots.arm import Pose
from corrigible.robots.bridge.server import RosbridgeServer
from corrigible.robots.kinematics import top_down_rotation
from corrigible.robots.rosbridge_arm import (
    RobotLinkError,
    RobotLinkLostError,
    RosbridgeArm,
    RosbridgeArmConfig,
    decode_image,
    quaternion_of,
    rotation_of,
)

_HOME = [0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785]
_NAMES = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]


class _SilentRobot:
    """Publishes a still arm's joint states for `talk_s`, then nothing (the server stays up)."""

    def __init__(self, server: RosbridgeServer, talk_s: float, names: list[str]) -> None:
        self.server = server
        self.commands: list[dict] = []
        server.advertise("/joint_states", "sensor_msgs/JointState")
        server.on_publish(
            "/arm_controller/command", "trajectory_msgs/JointTrajectory", self.commands.append
        )
        self._end = time.monotonic() + talk_s
        self._names = names
        self._thread = threading.Thread(target=self._talk, daemon=True)
        self._thread.start()

    def _talk(self) -> None:
        while time.monotonic() < self._end:
            self.server.publish(
                "/joint_states",
                {"name": self._names, "position": [*_HOME, 0.04, 0.04], "velocity": []},
            )
            time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_server_is_a_clear_error() -> None:
    cfg = RosbridgeArmConfig(url=f"ws://127.0.0.1:{_free_port()}", connect_timeout_s=1.0)
    arm = RosbridgeArm(cfg)
    t0 = time.monotonic()
    with pytest.raises(RobotLinkError, match="no rosbridge server answered") as info:
        arm.connect()
    assert "Nothing was sent" in str(info.value) and time.monotonic() - t0 < 5
    with pytest.raises(RobotLinkError, match="not connected|closed"):
        arm.move_to(Pose([0.5, 0.0, 0.2]))


def test_wrong_joint_names_are_a_clear_error() -> None:
    with RosbridgeServer(port=0, rosapi=False) as server:
        _SilentRobot(server, talk_s=3.0, names=[f"j{i}" for i in range(9)])
        cfg = RosbridgeArmConfig(url=server.url, connect_timeout_s=1.5, camera_topic=None)
        with pytest.raises(RobotLinkError, match="joint_names"):
            RosbridgeArm(cfg).connect()


def test_stale_joint_states_stop_the_arm_and_say_so() -> None:
    with RosbridgeServer(port=0, rosapi=False) as server:
        robot = _SilentRobot(server, talk_s=1.0, names=_NAMES)
        cfg = RosbridgeArmConfig(url=server.url, camera_topic=None, state_timeout_s=0.3)
        arm = RosbridgeArm(cfg).connect()
        try:
            # the arm never moves (nobody obeys), so the client waits for it at `max_lead`
            with pytest.raises(RobotLinkLostError, match="no joint state on /joint_states") as e:
                arm.move_to(Pose([0.5, 0.25, 0.3]), speed=0.1)
            assert "the arm was stopped" in str(e.value) and arm.is_stopped
            time.sleep(0.3)  # let the hold arrive
            assert robot.commands, "no set-point was streamed before the state went stale"
            hold = robot.commands[-1]["points"][0]["positions"]
            assert np.allclose(hold, _HOME, atol=1e-6)  # the last measured joints
            with pytest.raises(EmergencyStopError):
                arm.grasp()
            with pytest.raises(RobotLinkLostError):
                arm.joint_state()
        finally:
            arm.close()


def test_set_points_stay_in_the_box_and_within_one_tick() -> None:
    with RosbridgeServer(port=0, rosapi=False) as server:
        robot = _SilentRobot(server, talk_s=20.0, names=_NAMES)
        cfg = RosbridgeArmConfig(url=server.url, camera_topic=None)
        with RosbridgeArm(cfg) as arm:
            start = arm.commanded_pos
            arm.move_to(Pose(start + [0.0, 0.0, -0.05]), speed=0.3)  # within the lead cap
            sent = len(robot.commands)
        assert sent > 3
        tips = [
            arm.kin.forward(np.array(c["points"][0]["positions"]))[:3, 3]
            for c in robot.commands[:sent]
        ]
        steps = np.linalg.norm(np.diff(np.array([start, *tips]), axis=0), axis=1)
        assert steps.max() <= 0.6 * 0.05 + 2e-3  # max_speed x tick, IK error allowed
        assert all(arm.envelope.contains(t, tol=2e-3) for t in tips)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "rgba8"])
def test_raw_images_decode(encoding: str) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)
    channels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1]}
    if encoding == "rgba8":
        raw = np.concatenate([rgb, np.full((6, 5, 1), 255, np.uint8)], axis=2)
    else:
        raw = channels[encoding]
    step = raw.shape[1] * raw.shape[2] + 3  # padded rows, as drivers send
    padded = np.zeros((6, step), np.uint8)
    padded[:, : raw.shape[1] * raw.shape[2]] = raw.reshape(6, -1)
    msg = {
        "height": 6,
        "width": 5,
        "encoding": encoding,
        "step": step,
        "data": base64.b64encode(padded.tobytes()).decode(),
    }
    out = decode_image(msg, "sensor_msgs/Image")
    expected = np.repeat(rgb[:, :, :1], 3, axis=2) if encoding == "mono8" else rgb
    assert out.shape == (6, 5, 3) and np.array_equal(out, expected)


def test_compressed_images_decode_and_bad_ones_are_refused() -> None:
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[:, :12] = (200, 30, 30)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = {"format": "png", "data": base64.b64encode(png.tobytes()).decode()}
    assert np.array_equal(decode_image(msg, "sensor_msgs/CompressedImage"), rgb)
    with pytest.raises(ValueError, match="could not decode"):
        decode_image({"format": "jpeg", "data": "AAAA"}, "sensor_msgs/CompressedImage")
    with pytest.raises(ValueError, match="unsupported Image encoding"):
        decode_image({"encoding": "32FC1", "height": 1, "width": 1}, "sensor_msgs/Image")
    with pytest.raises(ValueError, match="does not match"):
        bad = {"encoding": "rgb8", "height": 4, "width": 4, "step": 12, "data": "AAAA"}
        decode_image(bad, "sensor_msgs/Image")


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.9, np.pi])
def test_quaternions_round_trip(yaw: float) -> None:
    rot = top_down_rotation(yaw)
    x, y, z, w = quaternion_of(rot)
    assert abs(x * x + y * y + z * z + w * w - 1) < 1e-9
    assert np.allclose(rotation_of({"x": x, "y": y, "z": z, "w": w}), rot, atol=1e-9)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"url": "http://robot:9090"}, "url must be ws://"),
        ({"url": "ws://robot:notaport"}, "bad port"),
        ({"command_topic": "arm command"}, "topic name must start with '/'"),
        ({"joint_names": ["a", "b"]}, "seven arm joints"),
        ({"home_q": [0.0] * 6}, "7 finite joint angles"),
        ({"state_timeout_s": 0}, "state_timeout_s"),
        ({"command_type": "std_msgs/String"}, "command_type"),
        ({"safety": {"max_speed": -1}}, "max_speed"),
    ],
    ids=["scheme", "port", "topic", "joints", "home", "timeout", "type", "safety"],
)
def test_bad_configs_name_the_field(fields: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RosbridgeArmConfig(**fields)
