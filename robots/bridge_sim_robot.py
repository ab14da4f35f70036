"""`BridgeSimRobot`: a simulated arm behind a rosbridge server, as a ROS robot would present it.

Client mode (`robots.rosbridge_arm.RosbridgeArm`) drives a real robot through that robot's
rosbridge server. This module plays that robot with the simulator, so client mode can be run
and tested without hardware, in another process, over the same wire a lab's robot uses:

| direction | topic (default) | type |
|-|-|-|
| subscribed | `/arm_controller/command` | `trajectory_msgs/JointTrajectory` or `PoseStamped` |
| subscribed | `/gripper_controller/command` | `trajectory_msgs/JointTrajectory` (finger joints) |
| published | `/joint_states` | `sensor_msgs/JointState`, every control tick |
| published | `/camera/image/compressed` | `sensor_msgs/CompressedImage` (JPEG), `camera_hz` |
| published | `/sim/status` | `std_msgs/String`: JSON ground truth (object positions, counts) |

The robot behaves as a position-controlled arm does: it servos to the last joint set-point it
received (its own controller limits each joint to `max_joint_speed`), holds it when the stream
stops, and steps the physics in real time (one control tick of the scene, 50 ms, per 50 ms of
wall time). `/sim/status` is simulation-only ground truth, for tests and demos to judge an
outcome; a real robot has no such topic and client mode never reads it.

`robots` sits below `sim_envs`, so the caller builds the scene and hands over its `SimArm`,
a render function and an object-pose function (`launch/launch_file.py`, kind `sim_robot`).
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from corrigible.config import StrictConfig
from corrigible.errors import BackendError
from corrigible.robots.bridge.server import RosbridgeServer
from corrigible.robots.kinematics import top_down_rotation
from corrigible.robots.rosbridge_arm import (
    COMPRESSED_IMAGE,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    rotation_of,
    stamp,
    stamp_seconds,
)
from corrigible.robots.sim_arm import SimArm

_STRING = "std_msgs/String"


class SimRobotConfig(StrictConfig):
    """Where the simulated robot serves rosbridge and which topics it speaks."""

    host: str = "127.0.0.1"  # address to bind; another than loopback needs `token`
    port: int = Field(default=9090, ge=0, le=65535)  # TCP port; 0 picks a free one
    token: str | None = None  # shared secret for the `auth` op (needed off loopback)
    command_topic: str = "/arm_controller/command"  # motion set-points it obeys
    command_type: Literal["trajectory_msgs/JointTrajectory", "geometry_msgs/PoseStamped"] = (
        JOINT_TRAJECTORY
    )
    gripper_topic: str = "/gripper_controller/command"  # JointTrajectory over the fingers
    joint_states_topic: str = "/joint_states"  # sensor_msgs/JointState, each control tick
    camera_topic: str | None = "/camera/image/compressed"  # CompressedImage; None: no camera
    status_topic: str = "/sim/status"  # std_msgs/String JSON ground truth (simulation only)
    joint_names: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))  # arm joints
    finger_joint_names: tuple[str, str] = ("panda_finger_joint1", "panda_finger_joint2")
    stamp_style: Literal["ros1", "ros2"] = "ros1"  # header stamps {secs,nsecs} or {sec,nanosec}
    camera_hz: float = Field(default=2.0, ge=0, le=30, allow_inf_nan=False)  # Hz; 0: none
    jpeg_quality: int = Field(default=80, ge=10, le=100)  # JPEG quality of camera frames
    status_hz: float = Field(default=5.0, gt=0, le=50, allow_inf_nan=False)  # Hz of /sim/status
    max_joint_speed: float = Field(default=2.0, gt=0, allow_inf_nan=False)  # rad/s, controller


class BridgeSimRobot:
    """A `SimArm`'s physics served over rosbridge as a position-controlled ROS arm.

    Args:
        arm: the simulated arm (its backend is stepped here, from one thread only).
        config: address and topics.
        render: returns the camera's RGB image (H, W, 3) uint8; None: no camera.
        object_poses: returns object name -> (position [3] m, quaternion (w, x, y, z)), for
            `/sim/status` (the engine backends' `object_poses` has this shape).
    """

    def __init__(
        self,
        arm: SimArm,
        config: SimRobotConfig | None = None,
        *,
        render: Callable[[], np.ndarray] | None = None,
        object_poses: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.arm = arm
        self.config = config or SimRobotConfig()
        self._render = render
        self._object_poses = object_poses
        self.server = RosbridgeServer(self.config.host, self.config.port, token=self.config.token)
        self._lock = threading.Lock()
        q, _, fingers = arm.backend.joint_state()
        self._q_target = q.copy()  # the controller's set-point, rad
        self._due = 0.0  # time.monotonic() by which the set-point is to be reached
        self._q_servo = q.copy()  # what the servo is given this tick (speed-limited)
        self._finger_target = float(fingers.mean())
        self.commands = 0  # motion set-points received
        self.gripper_commands = 0  # gripper set-points received
        self.rejected = 0  # set-points that did not name this arm's joints, or not finite
        # recent delays from a command's header stamp (the client's clock) to its arrival here,
        # s; meaningful when both ends share a clock (one machine)
        self.command_latency_s: list[float] = []
        self._dt = arm.backend.scene.physics.control_dt
        self._substeps = arm.backend.scene.physics.substeps
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.ticks = 0
        self._epoch = time.time() - float(arm.backend.time)  # wall time at simulated time 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> BridgeSimRobot:
        """Starts the server and the real-time physics loop; returns when clients can connect."""
        cfg, server = self.config, self.server
        server.start()
        server.advertise(cfg.joint_states_topic, JOINT_STATE)
        server.advertise(cfg.status_topic, _STRING)
        if cfg.camera_topic is not None and self._render is not None and cfg.camera_hz > 0:
            server.advertise(cfg.camera_topic, COMPRESSED_IMAGE)
        server.on_publish(cfg.command_topic, cfg.command_type, self._on_command)
        server.on_publish(cfg.gripper_topic, JOINT_TRAJECTORY, self._on_gripper)
        self._thread = threading.Thread(target=self._loop, name="sim-robot", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stops the physics loop and the server (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.server.stop()

    def __enter__(self) -> BridgeSimRobot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self.server.port

    def clock(self) -> float:
        """The robot's clock, s: simulated time, anchored to the wall clock at start.

        Stamps come from it as a real robot's come from its controller's clock: the interval
        between two joint states is the time the arm really moved in, even when this process
        falls behind real time (a wall-clock stamp would then make the arm look faster).
        """
        return self._epoch + float(self.arm.backend.time)

    def raise_if_failed(self) -> None:
        """Re-raises a failure of the physics loop (as `BackendError`)."""
        if self._failure is not None:
            raise BackendError(f"the simulated robot stopped: {self._failure}") from self._failure

    # -- commands (the server's dispatcher thread) ---------------------------------------------
    def _positions(self, msg: dict[str, Any], names: tuple[str, ...]) -> np.ndarray | None:
        try:
            points = msg["points"]
            index = {n: i for i, n in enumerate(msg["joint_names"])}
            values = [float(points[-1]["positions"][index[n]]) for n in names]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        out = np.array(values)
        return out if np.all(np.isfinite(out)) else None

    def _on_command(self, msg: dict[str, Any]) -> None:
        sent = stamp_seconds(msg.get("header"))
        if math.isfinite(sent):
            with self._lock:
                self.command_latency_s = [*self.command_latency_s[-199:], time.time() - sent]
        due = time.monotonic() + _time_from_start(msg, self._dt)
        if self.config.command_type == JOINT_TRAJECTORY:
            q = self._positions(msg, self.config.joint_names)
        else:
            q = self._solve_pose(msg)
        with self._lock:
            if q is None:
                self.rejected += 1
                return
            self._q_target, self._due = q, due
            self.commands += 1

    def _solve_pose(self, msg: dict[str, Any]) -> np.ndarray | None:
        """Joint set-point for a PoseStamped (the robot-side IK a Cartesian controller does)."""
        try:
            pose = msg["pose"]
            pos = np.array([float(pose["position"][k]) for k in "xyz"])
            rot = rotation_of(pose["orientation"])
        except (KeyError, TypeError, ValueError):
            return None
        if not np.all(np.isfinite(pos)):
            return None
        yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
        with self._lock:
            seed = self._q_target.copy()
        q, err = self.arm.kin.solve(
            pos, top_down_rotation(yaw), seed, q_rest=self.arm._home_q, iterations=20
        )
        return q if err < 0.01 else None

    def _on_gripper(self, msg: dict[str, Any]) -> None:
        fingers = self._positions(msg, self.config.finger_joint_names)
        with self._lock:
            if fingers is None:
                self.rejected += 1
                return
            self._finger_target = float(np.clip(fingers.mean(), 0.0, 0.04))
            self.gripper_commands += 1

    # -- the physics loop (one thread owns the backend) ----------------------------------------
    def _loop(self) -> None:
        cfg, backend = self.config, self.arm.backend
        step_max = cfg.max_joint_speed * self._dt
        next_tick = time.monotonic()
        next_camera = next_status = next_tick
        finger_sent = None
        try:
            while not self._stop.is_set():
                with self._lock:
                    target, due = self._q_target.copy(), self._due
                    fingers = self._finger_target
                # As a trajectory controller does: reach the set-point by its due time, moving
                # evenly, so set-points that arrive bunched (network jitter) are not jumps.
                left = max(due - time.monotonic(), self._dt)
                delta = (target - self._q_servo) * min(1.0, self._dt / left)
                swing = float(np.abs(delta).max())
                if swing > step_max:  # the robot's own joint-speed limit
                    delta *= step_max / swing
                self._q_servo = self._q_servo + delta
                backend.set_arm_targets(self._q_servo)
                if fingers != finger_sent:
                    backend.set_finger_target(fingers)
                    finger_sent = fingers
                backend.step(self._substeps)
                self.ticks += 1
                now = time.monotonic()
                self._publish_state()
                if cfg.camera_topic and self._render is not None and cfg.camera_hz > 0:
                    if now >= next_camera:
                        self._publish_camera()
                        next_camera = now + 1.0 / cfg.camera_hz
                if now >= next_status:
                    self.server.publish(cfg.status_topic, {"data": json.dumps(self.status())})
                    next_status = now + 1.0 / cfg.status_hz
                next_tick += self._dt
                delay = next_tick - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:  # behind real time: the next tick one period from now, not at once
                    next_tick = time.monotonic() + self._dt
                    self._stop.wait(self._dt)
        except BaseException as exc:  # noqa: BLE001 - reported through raise_if_failed
            self._failure = exc

    def _publish_state(self) -> None:
        cfg = self.config
        q, qd, fingers = self.arm.backend.joint_state()
        self.server.publish(
            cfg.joint_states_topic,
            {
                "header": {"stamp": stamp(self.clock(), cfg.stamp_style), "frame_id": ""},
                "name": [*cfg.joint_names, *cfg.finger_joint_names],
                "position": [float(v) for v in (*q, *fingers)],
                "velocity": [float(v) for v in (*qd, 0.0, 0.0)],
                "effort": [],
            },
        )

    def _publish_camera(self) -> None:
        import cv2

        assert self._render is not None and self.config.camera_topic is not None
        rgb = self._render()
        ok, jpeg = cv2.imencode(
            ".jpg",
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality],
        )
        if not ok:
            raise BackendError("JPEG encoding of the camera frame failed")
        self.server.publish(
            self.config.camera_topic,
            {
                "header": {
                    "stamp": stamp(self.clock(), self.config.stamp_style),
                    "frame_id": "camera",
                },
                "format": "jpeg",
                "data": base64.b64encode(jpeg.tobytes()).decode("ascii"),
            },
        )

    def status(self) -> dict[str, Any]:
        """Ground truth for tests and demos (simulation only): time, counts, object positions."""
        poses = self._object_poses() if self._object_poses is not None else {}
        with self._lock:
            commands, gripper, rejected = self.commands, self.gripper_commands, self.rejected
            latency = list(self.command_latency_s)
        return {
            "sim_time_s": float(self.arm.backend.time),
            "ticks": self.ticks,
            "commands": commands,
            "gripper_commands": gripper,
            "rejected": rejected,
            "command_latency_s": latency,
            "objects": {n: [float(v) for v in np.asarray(p)[:3]] for n, (p, _) in poses.items()},
            "yaws": {n: _yaw_of_wxyz(np.asarray(q)) for n, (_, q) in poses.items()},
        }


def _yaw_of_wxyz(q: np.ndarray) -> float:
    """Yaw about world z (rad) of a (w, x, y, z) quaternion."""
    w, x, y, z = (float(v) for v in q[:4])
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _time_from_start(msg: dict[str, Any], default: float) -> float:
    """A JointTrajectory's last point's `time_from_start` in s (`default` when absent)."""
    try:
        t = msg["points"][-1]["time_from_start"]
        secs = t["secs"] if "secs" in t else t["sec"]
        nsecs = t["nsecs"] if "nsecs" in t else t["nanosec"]
        value = float(secs) + float(nsecs) * 1e-9
    except (KeyError, IndexError, TypeError, ValueError):
        return default
    return min(max(value, 0.0), 10.0) if math.isfinite(value) else default


__all__ = ["BridgeSimRobot", "SimRobotConfig"]
