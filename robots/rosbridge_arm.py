"""`RosbridgeArm`: the `Arm` interface over a real robot's rosbridge server (client mode).

A lab with a ROS robot runs corrigible's skills, planner and corrections on its arm through the
robot's own rosbridge v2 server, with the real `roslibpy` client:

    from corrigible.robots.arm import Pose
    from corrigible.robots.rosbridge_arm import RosbridgeArm, RosbridgeArmConfig

    with RosbridgeArm(RosbridgeArmConfig(url="ws://robot.local:9090")) as arm:
        arm.move_to(Pose([0.5, 0.0, 0.2]))
        arm.grasp()

What travels on the wire (all topic names and the command type are configurable):

| direction | topic (default) | type |
|-|-|-|
| command | `/arm_controller/command` | `trajectory_msgs/JointTrajectory` (IK here) or |
| | | `geometry_msgs/PoseStamped` (IK on the robot) |
| gripper | `/gripper_controller/command` | `trajectory_msgs/JointTrajectory`, both fingers |
| state | `/joint_states` | `sensor_msgs/JointState` (arm and finger joints, by name) |
| camera | `/camera/image/compressed` | `sensor_msgs/CompressedImage` or `sensor_msgs/Image` |

Why the client streams set-points rather than one long trajectory: a stop (the e-stop, a lost
link, a stale state stream) must take effect within one control tick, and a streamed motion
stops by itself when the stream stops; a queued trajectory would run on unattended. Each tick
(`control_rate_hz`, 20 Hz) sends the next point of a straight-line, speed-limited Cartesian
path and checks the link first. The path is timed by the robot's clock (its joint-state
stamps): a robot that falls behind real time is commanded slower, never made to catch up.

Safety: the `SafetyEnvelope` of `robots.safety` applies before anything is sent. An absolute
target outside the workspace, a non-finite target or speed, and an unreachable target are
refused with nothing published; relative moves are clipped into the box; the speed is capped.
Every streamed set-point, and the tip of the joints solved for it, is checked to lie in the box
and to be at most one tick's travel from the last. A set-point never leads the measured end
effector by more than `max_lead` (an arm held back is waited for, not wound up), and a measured
speed above `max_speed + speed_tolerance` stops the arm. A lost connection, or joint states
older than `state_timeout_s`, engages the e-stop, sends a hold at the last measured joints when
the link still carries it, and raises `RobotLinkLostError`, which says what happened and what
to do.
"""

from __future__ import annotations

import base64
import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import numpy as np
from pydantic import Field, field_validator

from corrigible.config import StrictConfig
from corrigible.errors import (  # noqa: F401 - re-exported here
    ConfigError,
    CorrigibleError,
    DependencyNotInstalled,
    EmergencyStopError,
    MotionError,
    RobotLinkError,
    RobotLinkLostError,
    SafetyError,
)
from corrigible.robots.arm import Arm, GripResult, MotionResult, Pose
from corrigible.robots.assets import urdf_path
from corrigible.robots.kinematics import ArmKinematics, top_down_rotation
from corrigible.robots.safety import SafetyConfig, SafetyEnvelope

if TYPE_CHECKING:
    from corrigible.tracing import EpisodeTrace

JOINT_TRAJECTORY = "trajectory_msgs/JointTrajectory"
POSE_STAMPED = "geometry_msgs/PoseStamped"
JOINT_STATE = "sensor_msgs/JointState"
COMPRESSED_IMAGE = "sensor_msgs/CompressedImage"
IMAGE = "sensor_msgs/Image"

TickHook = Callable[["RosbridgeArm"], None]
_HELD = "a hold at the last measured joints was sent"
_NOT_HELD = "no further command can reach the robot; its own controller must hold it"


class RosbridgeArmConfig(StrictConfig):
    """How to reach and drive one robot through its rosbridge server."""

    url: str = "ws://127.0.0.1:9090"  # the robot's rosbridge server, ws://host:port or wss://
    command_topic: str = "/arm_controller/command"  # where motion set-points are published
    # JointTrajectory: joint set-points (IK here); PoseStamped: end-effector set-points
    command_type: Literal["trajectory_msgs/JointTrajectory", "geometry_msgs/PoseStamped"] = (
        JOINT_TRAJECTORY
    )
    gripper_topic: str = "/gripper_controller/command"  # JointTrajectory over the finger joints
    joint_states_topic: str = "/joint_states"  # sensor_msgs/JointState, arm and finger joints
    camera_topic: str | None = "/camera/image/compressed"  # None: no camera
    camera_type: Literal["sensor_msgs/CompressedImage", "sensor_msgs/Image"] = COMPRESSED_IMAGE
    # the seven arm joints, in kinematic order (as named in JointState and the URDF)
    joint_names: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
    finger_joint_names: tuple[str, str] = ("panda_finger_joint1", "panda_finger_joint2")
    frame_id: str = "world"  # frame of PoseStamped set-points (the URDF's base frame)
    stamp_style: Literal["ros1", "ros2"] = "ros1"  # header stamps {secs,nsecs} or {sec,nanosec}
    urdf: str = "franka_panda/panda.urdf"  # the arm's URDF, relative to pybullet_data
    ee_link: str = "panda_grasptarget"  # URDF link whose pose is controlled
    home_q: tuple[float, ...] = (0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785)  # rad, IK rest pose
    finger_max_opening: float = Field(default=0.04, gt=0, allow_inf_nan=False)  # m per finger
    control_rate_hz: float = Field(default=20.0, gt=0, le=500, allow_inf_nan=False)  # Hz
    connect_timeout_s: float = Field(default=5.0, gt=0, allow_inf_nan=False)  # s to connect
    # s: joint states older than this mean the robot is not heard any more: safe stop
    state_timeout_s: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    default_speed: float = Field(default=0.25, gt=0, allow_inf_nan=False)  # m/s if none given
    min_speed: float = Field(default=0.005, gt=0, allow_inf_nan=False)  # m/s, slowest accepted
    ramp_s: float = Field(default=0.15, gt=0, allow_inf_nan=False)  # s to reach full speed
    tolerance: float = Field(default=0.008, gt=0, allow_inf_nan=False)  # m, "reached" radius
    settle_s: float = Field(default=1.5, ge=0, allow_inf_nan=False)  # s to catch up at the end
    grasp_timeout_s: float = Field(default=1.5, gt=0, allow_inf_nan=False)  # s to close
    release_s: float = Field(default=0.6, gt=0, allow_inf_nan=False)  # s to open
    hold_width_m: float = Field(default=0.004, ge=0, allow_inf_nan=False)  # m: wider = holding
    safety: SafetyConfig = SafetyConfig()  # the envelope applied before anything is sent

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
            raise ConfigError(
                f"RosbridgeArmConfig.url must be ws://host:port or wss://host:port (the robot's "
                f"rosbridge server), got {value!r}"
            )
        try:
            _ = parsed.port
        except ValueError as exc:
            raise ConfigError(f"RosbridgeArmConfig.url has a bad port: {value!r}") from exc
        return value

    @field_validator("command_topic", "gripper_topic", "joint_states_topic", "camera_topic")
    @classmethod
    def _topic_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith("/") or any(c.isspace() for c in value) or len(value) < 2:
            raise ConfigError(
                f"a topic name must start with '/' and hold no spaces (e.g. /joint_states), "
                f"got {value!r}"
            )
        return value

    @field_validator("joint_names")
    @classmethod
    def _seven_joints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) != 7 or len(set(value)) != 7:
            raise ConfigError(
                f"RosbridgeArmConfig.joint_names must name the seven arm joints once each, "
                f"got {list(value)}"
            )
        return value

    @field_validator("home_q")
    @classmethod
    def _seven_angles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != 7 or not all(math.isfinite(v) for v in value):
            raise ConfigError(
                f"RosbridgeArmConfig.home_q must be 7 finite joint angles in rad, got {value}"
            )
        return value

    @property
    def host_port(self) -> tuple[str, int, bool]:
        """(host, port, is_secure) of `url`; the port defaults to 9090 as rosbridge's does."""
        parsed = urlparse(self.url)
        return str(parsed.hostname), parsed.port or 9090, parsed.scheme == "wss"


def _import_roslibpy() -> Any:
    try:
        import roslibpy
    except ImportError as exc:
        raise DependencyNotInstalled(
            "client mode needs the roslibpy package; install the extra: "
            "pip install 'corrigible[bridge]'"
        ) from exc
    return roslibpy


def quaternion_of(rot: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix (ROS order, w last)."""
    m = np.asarray(rot, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    return float(x), float(y), float(z), float(w)


def rotation_of(quat: dict[str, float]) -> np.ndarray:
    """Rotation matrix of a ROS quaternion message `{x, y, z, w}` (normalised first)."""
    x, y, z, w = (float(quat[k]) for k in ("x", "y", "z", "w"))
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not (math.isfinite(n) and n > 1e-9):
        raise ValueError(f"not a rotation quaternion: {quat}")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def stamp(now: float, style: str) -> dict[str, int]:
    """A header stamp for wall time `now` in ROS 1 or ROS 2 field names."""
    secs = int(now)
    nsecs = int((now - secs) * 1e9)
    return {"secs": secs, "nsecs": nsecs} if style == "ros1" else {"sec": secs, "nanosec": nsecs}


def stamp_seconds(header: Any) -> float:
    """Seconds of a header's stamp in either ROS 1 or ROS 2 field names; NaN when absent."""
    try:
        st = header["stamp"]
        secs = st["secs"] if "secs" in st else st["sec"]
        nsecs = st["nsecs"] if "nsecs" in st else st["nanosec"]
        return float(secs) + float(nsecs) * 1e-9
    except (KeyError, TypeError, ValueError):
        return math.nan


def decode_image(msg: dict[str, Any], msg_type: str) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from a CompressedImage or Image message.

    Raises:
        ValueError: the message is not an image this can decode (the reason is said).
    """
    import cv2

    data = msg.get("data")
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data or b"")
    if msg_type == COMPRESSED_IMAGE:
        bgr = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"could not decode a {msg.get('format', '?')!r} compressed image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = int(msg.get("height", 0)), int(msg.get("width", 0))
    step, encoding = int(msg.get("step", 0)), str(msg.get("encoding", ""))
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(encoding)
    if channels is None:
        raise ValueError(f"unsupported Image encoding {encoding!r} (use rgb8, bgr8 or mono8)")
    if height <= 0 or width <= 0 or step < width * channels or len(raw) < step * height:
        raise ValueError(
            f"Image of {width}x{height} ({encoding}, step {step}) does not match its "
            f"{len(raw)} data bytes"
        )
    rows = np.frombuffer(raw[: step * height], dtype=np.uint8).reshape(height, step)
    img = rows[:, : width * channels].reshape(height, width, channels)
    if encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if encoding.startswith("bgr"):
        img = img[:, :, 2::-1]
    return np.ascontiguousarray(img[:, :, :3])


class _State:
    """The latest joint state heard from the robot, with its arrival time (monotonic)."""

    def __init__(self) -> None:
        self.q: np.ndarray | None = None
        self.qd = np.zeros(7)
        self.fingers = np.zeros(2)
        self.received = -math.inf  # time.monotonic() of the last usable message
        self.stamp = math.nan  # its header stamp, s (the robot's clock); NaN: none given
        self.latency: list[float] = []  # recent header-stamp-to-arrival delays, s (wall clock)
        self.count = 0
        self.bad = 0  # messages without the configured joints (counted, never used)


class RosbridgeArm(Arm):
    """A real arm behind its rosbridge server, commanded in Cartesian space (`Arm`).

    Args:
        config: where the robot is and how to drive it.
        trace: where arm commands are recorded (optional).

    Raises:
        ConfigError: the URDF or its end-effector link cannot be read.
    """

    def __init__(
        self, config: RosbridgeArmConfig | None = None, *, trace: EpisodeTrace | None = None
    ):
        self.config = config or RosbridgeArmConfig()
        self.kin = ArmKinematics(urdf_path(self.config.urdf), self.config.ee_link)
        if self.kin.n != 7:
            raise ConfigError(
                f"RosbridgeArmConfig.urdf: {self.config.urdf} has {self.kin.n} movable joints "
                f"up to {self.config.ee_link!r}; this client drives seven"
            )
        self.envelope = SafetyEnvelope(self.config.safety)
        self.trace = trace
        self._dt = 1.0 / self.config.control_rate_hz
        self._home_q = np.asarray(self.config.home_q, dtype=np.float64)
        self._lock = threading.Condition()
        self._state = _State()
        self._image: dict[str, Any] | None = None
        self._image_count = 0
        self._ros: Any = None
        self._topics: dict[str, Any] = {}
        self._lost: str | None = None  # why the link is considered lost (latched)
        self._closing = False
        self._closed = False
        self._down = False  # the websocket closed (set from roslibpy's "close" event)
        self._hooks: list[TickHook] = []
        self._gripper_closed = False
        self.finger_command = self.config.finger_max_opening  # m per finger, last commanded
        self.held_label = "object"  # what `holding()` reports: the robot cannot name objects
        # names what the fingers closed on from the end-effector position (a scene model's
        # nearest object, say); None or a None answer: `held_label`
        self.label_grasp: Callable[[np.ndarray], str | None] | None = None
        self._held: str | None = None  # the label given at the last grasp
        self.commands_sent = 0  # motion and gripper messages published
        self.measured_speed = 0.0  # m/s, tip travel between the two latest joint states
        self._q_cmd = self._home_q.copy()
        self._cmd_pos = np.zeros(3)
        self._aim = np.zeros(3)
        self._cmd_yaw = 0.0
        self._t0 = time.monotonic()
        self._speed_ref: tuple[float, np.ndarray] | None = None  # (time s, tip m) last sample

    # -- lifecycle -----------------------------------------------------------------------------
    def connect(self) -> RosbridgeArm:
        """Connects, subscribes to the state (and camera), waits for a first joint state.

        Raises:
            RobotLinkError: no rosbridge server answers at `url`, or it sends no joint states
                within `connect_timeout_s` (nothing was sent to the robot).
        """
        if self._ros is not None:
            return self
        roslibpy = _import_roslibpy()
        cfg = self.config
        host, port, secure = cfg.host_port
        ros = roslibpy.Ros(host=host, port=port, is_secure=secure)
        self._ros = ros
        try:
            ros.run(timeout=cfg.connect_timeout_s)
        except Exception as exc:
            self._give_up()
            raise RobotLinkError(
                f"no rosbridge server answered at {cfg.url} within {cfg.connect_timeout_s:g} s "
                f"({type(exc).__name__}); start the robot's rosbridge server (port 9090 by "
                "default) or fix RosbridgeArmConfig.url. Nothing was sent to the robot."
            ) from exc
        ros.on("close", self._on_close)
        states = roslibpy.Topic(ros, cfg.joint_states_topic, JOINT_STATE, queue_length=1)
        states.subscribe(self._on_joint_state)
        self._topics["state"] = states
        if cfg.camera_topic is not None:
            camera = roslibpy.Topic(ros, cfg.camera_topic, cfg.camera_type, queue_length=1)
            camera.subscribe(self._on_image)
            self._topics["camera"] = camera
        self._topics["command"] = roslibpy.Topic(ros, cfg.command_topic, cfg.command_type)
        self._topics["gripper"] = roslibpy.Topic(ros, cfg.gripper_topic, JOINT_TRAJECTORY)
        deadline = time.monotonic() + cfg.connect_timeout_s
        with self._lock:
            while self._state.q is None and time.monotonic() < deadline:
                self._lock.wait(0.05)
            heard = self._state.q is not None
        if not heard:
            self.close()
            raise RobotLinkError(
                f"the rosbridge server at {cfg.url} sent no {JOINT_STATE} on "
                f"{cfg.joint_states_topic} naming {list(cfg.joint_names)} within "
                f"{cfg.connect_timeout_s:g} s; check RosbridgeArmConfig.joint_states_topic and "
                "joint_names. Nothing was sent to the robot."
            )
        self._t0 = time.monotonic()
        self.sync()
        self._emit("arm.connect", url=cfg.url, command_type=cfg.command_type)
        return self

    def close(self) -> None:
        """Stops listening and disconnects; sends nothing to the robot; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        ros, self._ros = self._ros, None
        if ros is None:
            return
        live = self._wire_up(ros)
        for topic in self._topics.values() if live else ():
            with contextlib.suppress(Exception):
                if topic.is_subscribed:
                    topic.unsubscribe()
                elif topic.is_advertised:
                    topic.unadvertise()
        self._topics.clear()
        if live:
            with contextlib.suppress(Exception):
                ros.close(timeout=2.0)
        self._give_up(ros)

    def _give_up(self, ros: Any = None) -> None:
        """Tells roslibpy's reconnecting factory to stop retrying (a closed arm stays closed)."""
        ros = ros or self._ros
        if ros is None:
            return
        from twisted.internet import reactor

        with contextlib.suppress(Exception):
            reactor.callFromThread(ros.factory.stopTrying)
        if ros is self._ros:
            self._ros = None

    def __enter__(self) -> RosbridgeArm:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_connected(self) -> bool:
        """Whether the link is up and not latched as lost."""
        return self._ros is not None and self._lost is None and self._wire_up(self._ros)

    # -- callbacks (roslibpy's reactor thread) -------------------------------------------------
    def _wire_up(self, ros: Any) -> bool:
        """Whether `ros` can still carry a message (its socket open, no close seen)."""
        return not self._down and bool(ros.is_connected)

    def _on_close(self, *_: Any) -> None:
        self._down = True  # roslibpy may still call the connector "connected" for a moment
        if not self._closing and self._lost is None:
            self._lost = f"the rosbridge connection to {self.config.url} closed"
        with self._lock:
            self._lock.notify_all()

    def _on_joint_state(self, msg: dict[str, Any]) -> None:
        cfg = self.config
        try:
            names = list(msg["name"])
            pos = [float(p) for p in msg["position"]]
            index = {n: i for i, n in enumerate(names) if i < len(pos)}
            q = np.array([pos[index[n]] for n in cfg.joint_names])
            vel = msg.get("velocity") or []
            qd = np.array(
                [float(vel[index[n]]) if index[n] < len(vel) else 0.0 for n in cfg.joint_names]
            )
            fingers = np.array(
                [pos[index[n]] if n in index else np.nan for n in cfg.finger_joint_names]
            )
            if not np.all(np.isfinite(q)):
                raise ValueError("non-finite joint position")
        except (KeyError, TypeError, ValueError):
            with self._lock:
                self._state.bad += 1  # a message not about this arm, or malformed: ignored
            return
        sent = stamp_seconds(msg.get("header"))
        with self._lock:
            s = self._state
            s.q, s.qd, s.received, s.count = q, qd, time.monotonic(), s.count + 1
            s.stamp = sent
            if math.isfinite(sent):
                s.latency = [*s.latency[-999:], time.time() - sent]
            if np.all(np.isfinite(fingers)):
                s.fingers = fingers
            self._lock.notify_all()

    def _on_image(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._image = msg  # decoded on request: decoding here would slow the state stream
            self._image_count += 1

    # -- link checks ---------------------------------------------------------------------------
    def _state_age(self) -> float:
        with self._lock:
            return time.monotonic() - self._state.received

    def _check_link(self, during: str) -> None:
        """Raises RobotLinkLostError (after a safe stop) when the link or the state is gone."""
        if self._ros is None:
            if self._closed:
                raise RobotLinkError(f"the arm was closed; cannot {during}. Make a new one.")
            raise RobotLinkError(f"the arm is not connected; call connect() before {during}")
        reason = self._lost
        if reason is None and not self._wire_up(self._ros):
            reason = f"the rosbridge connection to {self.config.url} is down"
        if reason is None:
            age = self._state_age()
            if age > self.config.state_timeout_s:
                reason = (
                    f"no joint state on {self.config.joint_states_topic} for {age:.2f} s "
                    f"(limit state_timeout_s={self.config.state_timeout_s:g} s)"
                )
        if reason is None:
            return
        self._lost = self._lost or reason
        held = self._hold_measured()
        self._emit("arm.link_lost", reason=reason, during=during, hold_sent=held)
        raise RobotLinkLostError(
            f"{reason} during {during}: the arm was stopped and the e-stop engaged "
            f"({_HELD if held else _NOT_HELD}). "
            "Check the robot and its rosbridge server, then connect a new RosbridgeArm."
        )

    def _hold_measured(self) -> bool:
        """Engages the e-stop and, if the link still carries it, commands the measured pose."""
        self.envelope.estopped = True
        with self._lock:
            q = None if self._state.q is None else self._state.q.copy()
        if q is None or self._ros is None or not self._wire_up(self._ros):
            return False
        try:
            tf = self.kin.forward(q)
            self._publish_setpoint(q, tf[:3, 3], _yaw_of(tf[:3, :3]))
        except Exception:  # the link died while sending: nothing more can be done from here
            return False
        return True

    # -- publishing ----------------------------------------------------------------------------
    def _publish(self, key: str, msg: dict[str, Any]) -> None:
        import roslibpy

        self._topics[key].publish(roslibpy.Message(msg))
        self.commands_sent += 1

    def _header(self) -> dict[str, Any]:
        return {
            "stamp": stamp(time.time(), self.config.stamp_style),
            "frame_id": self.config.frame_id,
        }

    def _trajectory(self, names: tuple[str, ...], positions: np.ndarray) -> dict[str, Any]:
        secs = int(self._dt)
        nsecs = int((self._dt - secs) * 1e9)
        duration = (
            {"secs": secs, "nsecs": nsecs}
            if self.config.stamp_style == "ros1"
            else {"sec": secs, "nanosec": nsecs}
        )
        return {
            "header": self._header(),
            "joint_names": list(names),
            "points": [
                {
                    "positions": [float(v) for v in positions],
                    "velocities": [],
                    "accelerations": [],
                    "effort": [],
                    "time_from_start": duration,
                }
            ],
        }

    def _publish_setpoint(self, q: np.ndarray, pos: np.ndarray, yaw: float) -> None:
        """One motion set-point, in the configured command type (already checked)."""
        if self.config.command_type == JOINT_TRAJECTORY:
            self._publish("command", self._trajectory(self.config.joint_names, q))
            return
        x, y, z, w = quaternion_of(top_down_rotation(yaw))
        self._publish(
            "command",
            {
                "header": self._header(),
                "pose": {
                    "position": {"x": float(pos[0]), "y": float(pos[1]), "z": float(pos[2])},
                    "orientation": {"x": x, "y": y, "z": z, "w": w},
                },
            },
        )

    # -- state ---------------------------------------------------------------------------------
    def _measured(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            s = self._state
            if s.q is None:
                raise RobotLinkError("no joint state has been received; call connect() first")
            return s.q.copy(), s.qd.copy(), s.fingers.copy()

    def sync(self) -> None:
        """Takes the measured pose as the commanded one (after connecting or a stop)."""
        q, _, _ = self._measured()
        tf = self.kin.forward(q)
        self._q_cmd = q.copy()
        self._cmd_pos = tf[:3, 3].copy()
        self._aim = tf[:3, 3].copy()  # the tip of the joints last sent
        self._cmd_yaw = _yaw_of(tf[:3, :3])

    @property
    def commanded_pos(self) -> np.ndarray:
        """The end-effector position last commanded, m."""
        return self._cmd_pos.copy()

    @property
    def states_received(self) -> int:
        """How many usable joint-state messages have arrived."""
        with self._lock:
            return self._state.count

    def joint_state(self) -> dict[str, np.ndarray]:
        """The latest measured joints (checked fresh): `arm.q_rad`, `arm.qd_rad_s`, fingers."""
        self._check_link("reading the joint state")
        q, qd, fingers = self._measured()
        return {"arm.q_rad": q, "arm.qd_rad_s": qd, "gripper.fingers_m": fingers}

    def ee_pose(self) -> Pose:
        """The measured end-effector pose (forward kinematics of the latest joint state)."""
        self._check_link("reading the end-effector pose")
        q, _, _ = self._measured()
        tf = self.kin.forward(q)
        return Pose(tf[:3, 3], _yaw_of(tf[:3, :3]))

    def camera_frame(self, timeout_s: float = 2.0) -> np.ndarray:
        """The latest camera image as RGB uint8 (H, W, 3), waiting up to `timeout_s` for one.

        Raises:
            ConfigError: no camera topic is configured.
            RobotLinkError: no image arrived in time.
            ParseError: the image could not be decoded (the message says why).
        """
        from corrigible.errors import ParseError

        if self.config.camera_topic is None:
            raise ConfigError("RosbridgeArmConfig.camera_topic is None: this arm has no camera")
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._image is None and time.monotonic() < deadline:
                self._lock.wait(0.05)
            msg = self._image
        if msg is None:
            raise RobotLinkError(
                f"no {self.config.camera_type} arrived on {self.config.camera_topic} within "
                f"{timeout_s:g} s; check RosbridgeArmConfig.camera_topic and camera_type"
            )
        try:
            return decode_image(msg, self.config.camera_type)
        except (ValueError, TypeError) as exc:
            raise ParseError(f"camera image on {self.config.camera_topic}: {exc}") from exc

    # -- ticking -------------------------------------------------------------------------------
    def mirror_into(self, twin: Any) -> None:
        """Makes a simulated scene the twin of the real table this arm works on.

        Every control tick then steps `twin` (a physics backend: `set_arm_targets`,
        `set_finger_target`, `step`, `finger_contacts`, `object_poses`, `scene`) with its arm
        servoed to the measured joints and its fingers to the commanded opening, so its objects
        move as the real ones do while the model holds; and a grasp is named by what the twin's
        fingers closed on. Perception, skill checks and outcomes can then read the twin.
        """
        substeps = int(twin.scene.physics.substeps)

        def mirror(real: RosbridgeArm) -> None:
            twin.set_arm_targets(real._measured()[0])
            twin.set_finger_target(real.finger_command)
            twin.step(substeps)

        def nearest(pos: np.ndarray) -> str | None:
            held = [name for name, n in twin.finger_contacts().items() if n >= 2]
            if held:
                return str(held[0])
            poses = {n: np.asarray(p) for n, (p, _) in twin.object_poses().items()}
            if not poses:
                return None
            name = min(poses, key=lambda n: float(np.linalg.norm(poses[n][:2] - pos[:2])))
            return name if float(np.linalg.norm(poses[name][:2] - pos[:2])) < 0.04 else None

        self.label_grasp = nearest
        self.add_tick_hook(mirror)

    def add_tick_hook(self, hook: TickHook) -> None:
        """Calls `hook(arm)` after every control tick; a hook may raise to interrupt a motion."""
        self._hooks.append(hook)

    def remove_tick_hook(self, hook: TickHook) -> None:
        """Removes a hook added with `add_tick_hook`."""
        self._hooks.remove(hook)

    def _sleep_tick(self, next_tick: float) -> float:
        """Sleeps until `next_tick` (monotonic); returns the following tick's time."""
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
            return next_tick + self._dt
        return time.monotonic() + self._dt  # running late: do not burst to catch up

    def _robot_clock(self) -> float:
        """The robot's time, s: the latest joint state's stamp, else its arrival time."""
        with self._lock:
            st = self._state
            return st.stamp if math.isfinite(st.stamp) else st.received

    def _measure_speed(self) -> np.ndarray:
        """The measured tip; updates `measured_speed` from the two latest distinct states.

        The interval is taken from the robot's header stamps (its clock, so network jitter
        does not inflate the speed), else from arrival times.
        """
        with self._lock:
            st = self._state
            q, when = st.q, st.stamp if math.isfinite(st.stamp) else st.received
        assert q is not None  # checked fresh by _check_link
        tip = self.kin.forward(q)[:3, 3]
        ref = self._speed_ref
        if ref is not None and when - ref[0] > 1e-4:
            self.measured_speed = float(np.linalg.norm(tip - ref[1])) / (when - ref[0])
        if ref is None or when - ref[0] > 1e-4:
            self._speed_ref = (when, tip)
        return tip

    def _check_estop(self) -> None:
        if self._lost is not None and not self.envelope.estopped:
            self._check_link("the next command")  # the first to notice: stops, then raises
        if self._lost is not None:
            raise RobotLinkLostError(
                f"{self._lost}: the arm was stopped and the e-stop engaged; no command is sent "
                "any more. Check the robot and its rosbridge server, then connect a new "
                "RosbridgeArm."
            )
        if self.envelope.estopped:
            raise EmergencyStopError("the e-stop is engaged; call reset_stop() before moving again")

    def _emit(self, kind: str, **fields: object) -> None:
        if self.trace is not None:
            self.trace.emit(kind, robot_time_s=time.monotonic() - self._t0, **fields)

    # -- Arm API -------------------------------------------------------------------------------
    def move_to(self, pose: Pose, *, speed: float | None = None) -> MotionResult:
        """Streams a straight line to `pose`; a target outside the envelope is never sent."""
        self._check_estop()
        self.envelope.check_target(pose.pos)  # refused here: nothing has been sent
        if not math.isfinite(pose.yaw):
            raise SafetyError(f"yaw must be a finite angle in rad, got {pose.yaw}; no motion")
        return self._move(pose.pos, pose.yaw, speed, "move_to", pose.pos, pose.pos, clipped=False)

    def move_by(self, delta: np.ndarray, *, speed: float | None = None) -> MotionResult:
        """Streams a relative move (m), clipped into the envelope before anything is sent."""
        self._check_estop()
        delta = self.envelope.check_finite("a relative move", delta)
        target, applied, clipped = self.envelope.clip_move(self._cmd_pos, delta)
        return self._move(target, self._cmd_yaw, speed, "move_by", delta, applied, clipped=clipped)

    def _move(
        self,
        target: np.ndarray,
        yaw: float,
        speed: float | None,
        command: str,
        requested: np.ndarray,
        applied: np.ndarray,
        *,
        clipped: bool,
    ) -> MotionResult:
        """Streams a straight-line, speed-limited path to `target`, one set-point per tick."""
        cfg, limits = self.config, self.envelope.config
        requested_speed = speed if speed is not None else cfg.default_speed
        speed_used = self.envelope.clip_speed(requested_speed)
        if speed_used < cfg.min_speed:
            raise MotionError(
                f"speed {speed_used:g} m/s is below the slowest motion accepted "
                f"({cfg.min_speed:g} m/s); no motion was made"
            )
        self._check_link(command)
        rot_goal = top_down_rotation(yaw)
        _, err = self.kin.solve(target, rot_goal, self._q_cmd, q_rest=self._home_q, iterations=200)
        if err > 0.01:
            raise MotionError(
                f"target {np.round(target, 3).tolist()} is out of the arm's reach "
                f"(IK error {err * 100:.1f} cm); no motion was made"
            )
        t0 = time.monotonic()
        start, start_yaw = self._cmd_pos.copy(), self._cmd_yaw
        dyaw = (yaw - start_yaw + np.pi) % (2 * np.pi) - np.pi
        length = float(np.linalg.norm(target - start))
        accel = speed_used / cfg.ramp_s
        budget = self.envelope.tick_budget(self._dt)
        s, v, peak = 0.0, 0.0, 0.0
        turn_time = abs(dyaw) / 1.5  # s, a pure rotation turns at about 1.5 rad/s
        # a bound on the ticks, for a robot that never lets the path advance (it runs at least
        # at a quarter of real time, or its state goes stale and the link check stops it)
        max_ticks = int(8 * (length / speed_used + turn_time + 2 * cfg.ramp_s) / self._dt) + 40
        self._speed_ref = None
        next_tick = time.monotonic()
        ticks, yaw_frac, waited = 0, 0.0, 0
        clock = self._robot_clock()
        while s < length or yaw_frac < 1.0:
            ticks += 1
            if ticks > max_ticks:
                break
            self._check_estop()
            self._check_link(command)
            # The path is timed by the robot's clock (its joint-state stamps): a robot that
            # runs behind real time is commanded slower, never made to catch up faster. One
            # tick advances at most one control period.
            now = self._robot_clock()
            step_s = min(max(now - clock, 0.0), self._dt)
            clock = now
            tip = self._measure_speed()
            peak = max(peak, self.measured_speed)
            if self.measured_speed > limits.max_speed + limits.speed_tolerance:
                self.stop()
                raise SafetyError(
                    f"the measured end-effector speed {self.measured_speed:.2f} m/s exceeds the "
                    f"limit {limits.max_speed:g} m/s (+{limits.speed_tolerance:g}); the arm was "
                    "stopped (e-stop engaged). Check the robot's controller gains."
                )
            lagging = float(np.linalg.norm(self._cmd_pos - tip)) > limits.max_lead
            if lagging:  # the arm is held back: wait for it instead of winding up the command
                waited += 1
                v = 0.0
            else:
                remaining = length - s
                v = min(
                    speed_used,
                    v + accel * step_s,
                    math.sqrt(2 * accel * max(remaining, 0.0)) + 1e-4,
                )
                s = min(length, s + v * step_s)
                if length > 1e-9:  # the yaw turns along the path, as SimArm's does
                    yaw_frac = s / length
                else:  # a pure rotation turns at about 1.5 rad/s
                    yaw_frac = min(1.0, yaw_frac + 1.5 * step_s / max(abs(dyaw), 1e-9))
            setpoint = start + (target - start) * (s / length if length > 1e-9 else 1.0)
            set_yaw = start_yaw + dyaw * yaw_frac
            self._send_checked(setpoint, set_yaw, budget)
            for hook in self._hooks:
                hook(self)
            next_tick = self._sleep_tick(next_tick)
        deadline = time.monotonic() + cfg.settle_s
        final = self.kin.forward(self._measured()[0])[:3, 3]
        while np.linalg.norm(final - target) >= cfg.tolerance and time.monotonic() < deadline:
            self._check_estop()
            self._check_link(command)
            self._send_checked(self._cmd_pos, self._cmd_yaw, budget)
            for hook in self._hooks:
                hook(self)
            next_tick = self._sleep_tick(next_tick)
            final = self.kin.forward(self._measured()[0])[:3, 3]
        reached = bool(np.linalg.norm(final - target) < cfg.tolerance)
        result = MotionResult(
            command=command,
            requested=np.asarray(requested, dtype=np.float64),
            applied=np.asarray(applied, dtype=np.float64).copy(),
            clipped=clipped or speed_used < requested_speed,
            reached=reached,
            final_pos=final,
            speed=speed_used,
            duration_s=time.monotonic() - t0,
            peak_speed=peak,
            speed_interventions=waited,
        )
        self._emit(f"arm.{command}", **result.to_dict(), yaw=yaw, requested_speed=requested_speed)
        return result

    def _send_checked(self, setpoint: np.ndarray, yaw: float, budget: float) -> None:
        """Checks one set-point against the envelope, solves its joints, publishes it."""
        if not self.envelope.contains(setpoint):  # the path stays in the box; never send if not
            raise SafetyError(
                f"set-point {np.round(setpoint, 3).tolist()} left the safety envelope; "
                "nothing was sent"
            )
        step = float(np.linalg.norm(setpoint - self._cmd_pos))
        if step > budget + 1e-9:
            raise SafetyError(
                f"set-point jump {step:.3f} m exceeds one tick's travel {budget:.3f} m; "
                "nothing was sent"
            )
        q, _ = self.kin.solve(
            setpoint, top_down_rotation(yaw), self._q_cmd, q_rest=self._home_q, iterations=3
        )
        joint_step = self.envelope.config.max_joint_speed * self._dt
        swing = float(np.abs(q - self._q_cmd).max())
        if swing > joint_step:  # the IK swung through the null space: cap it, as SimArm does
            q = self._q_cmd + (joint_step / swing) * (q - self._q_cmd)
        aim = self.kin.forward(q)[:3, 3]  # where the joints sent really put the tip
        jump = float(np.linalg.norm(aim - self._aim))
        if jump > budget:  # an uneven IK step: the tip of what is sent moves one tick at most
            q = self._q_cmd + (budget / jump) * (q - self._q_cmd)
            aim = self.kin.forward(q)[:3, 3]
        if not self.envelope.contains(aim, tol=2e-3):
            raise SafetyError(
                f"the joints solved for {np.round(setpoint, 3).tolist()} put the tip at "
                f"{np.round(aim, 3).tolist()}, outside the safety envelope; nothing was sent"
            )
        self._publish_setpoint(q, setpoint, yaw)
        self._q_cmd, self._cmd_pos, self._cmd_yaw = q, np.asarray(setpoint, dtype=float), yaw
        self._aim = aim

    def _grip(self, opening: float, *, closed: bool, seconds: float, until_still: bool) -> float:
        self._check_estop()
        self._check_link("grasp" if closed else "release")
        fingers = np.array([opening, opening])
        self._publish("gripper", self._trajectory(self.config.finger_joint_names, fingers))
        self._gripper_closed, self.finger_command = closed, opening
        next_tick = time.monotonic()
        last: float | None = None
        end = time.monotonic() + seconds
        width = float(self._measured()[2].sum())
        moved, seen = False, self.states_received
        while time.monotonic() < end:
            self._check_estop()
            self._check_link("grasp" if closed else "release")
            self._send_checked(self._cmd_pos, self._cmd_yaw, self.envelope.tick_budget(self._dt))
            for hook in self._hooks:
                hook(self)
            next_tick = self._sleep_tick(next_tick)
            if self.states_received == seen:  # nothing new from the robot: nothing to judge
                continue
            seen = self.states_received
            width = float(self._measured()[2].sum())
            if last is not None and abs(width - last) > 2e-4:
                moved = True
            if until_still and moved and last is not None and abs(width - last) < 2e-4:
                break
            last = width
        return width

    def grasp(self) -> GripResult:
        """Closes the fingers until they stop (or `grasp_timeout_s`), holding the arm still."""
        width = self._grip(0.0, closed=True, seconds=self.config.grasp_timeout_s, until_still=True)
        holding = None
        if width > self.config.hold_width_m:
            pos = self.kin.forward(self._measured()[0])[:3, 3]
            holding = (self.label_grasp(pos) if self.label_grasp else None) or self.held_label
        self._held = holding
        self._emit("arm.grasp", width=width, holding=holding)
        return GripResult(closed=True, width=width, holding=holding)

    def release(self, width: float | None = None) -> GripResult:
        """Opens the gripper, fully or to `width` per finger (m)."""
        cap = self.config.finger_max_opening
        opening = cap if width is None else float(np.clip(width, 0.0, cap))
        measured = self._grip(
            opening, closed=False, seconds=self.config.release_s, until_still=False
        )
        self._emit("arm.release", width=measured)
        return GripResult(closed=False, width=measured)

    def holding(self) -> str | None:
        """What the last grasp closed on while the fingers are still held apart, else None.

        A robot reports finger positions, not object names: the name comes from `label_grasp`
        (a scene model) at grasp time, else `held_label`.
        """
        if not self._gripper_closed:
            return None
        width = float(self.joint_state()["gripper.fingers_m"].sum())
        return (self._held or self.held_label) if width > self.config.hold_width_m else None

    def wait(self, seconds: float) -> None:
        """Holds the current command for `seconds` of wall time, checking the link each tick."""
        next_tick = time.monotonic()
        end = next_tick + max(0.0, seconds)
        while True:
            self._check_estop()
            self._check_link("wait")
            self._send_checked(self._cmd_pos, self._cmd_yaw, self.envelope.tick_budget(self._dt))
            for hook in self._hooks:
                hook(self)
            if time.monotonic() >= end:
                return
            next_tick = self._sleep_tick(next_tick)

    def stop(self) -> None:
        """Engages the e-stop and commands the measured joints (when the link carries it)."""
        self._hold_measured()
        with contextlib.suppress(CorrigibleError):
            self.sync()
        self._emit("arm.stop", pos=self._cmd_pos, lost=self._lost)

    def hold(self) -> None:
        """Commands the measured joints without the e-stop: the arm brakes where it is.

        The next motion starts from there (as `SimArm.hold`, for a paused or preempted skill).
        """
        self._check_link("hold")
        q, _, _ = self._measured()
        tf = self.kin.forward(q)
        self._publish_setpoint(q, tf[:3, 3], _yaw_of(tf[:3, :3]))
        self.sync()
        self._emit("arm.hold", pos=self._cmd_pos)

    def reset_stop(self) -> None:
        """Releases the e-stop; refused while the link is lost (a new arm must connect)."""
        if self._lost is not None:
            raise RobotLinkLostError(
                f"cannot release the e-stop: {self._lost}. Connect a new RosbridgeArm once the "
                "robot's rosbridge server is back."
            )
        self._check_link("reset_stop")
        self.sync()
        self.envelope.estopped = False
        self._emit("arm.reset_stop")

    @property
    def is_stopped(self) -> bool:
        """Whether the e-stop is engaged (it always is once the link was lost)."""
        return self.envelope.estopped or self._lost is not None


def _yaw_of(rot: np.ndarray) -> float:
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


__all__ = [
    "RobotLinkError",
    "RobotLinkLostError",
    "RosbridgeArm",
    "RosbridgeArmConfig",
    "decode_image",
    "quaternion_of",
    "rotation_of",
]
