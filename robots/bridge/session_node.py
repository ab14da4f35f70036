"""`SessionNode`: a corrigible session exposed on a `RosbridgeServer` as ROS topics and services.

| name | type | direction |
|-|-|-|
| `/joint_states` | sensor_msgs/JointState | published at `state_hz` (during and between episodes) |
| `/ee_pose` | geometry_msgs/PoseStamped | published with the joint states |
| `/camera/image/compressed` | sensor_msgs/CompressedImage | JPEG at `camera_hz`, when subscribed |
| `/corrigible/events` | std_msgs/String | each session event as JSON: kind, episode, wall_s, data |
| `/corrigible/instruction` | std_msgs/String | subscribed: each message runs as one episode |
| `/corrigible/correction` | std_msgs/String | subscribed: a correction for the running episode |
| `/corrigible/stop` | std_srvs/Trigger | service: stops the running episode, drops queued ones |

An instruction is plain text ("put the red block in the blue bowl") or a JSON object
`{"instruction": ..., "expect": "in(red block, blue bowl)"}`. Each runs as its own episode, one
at a time, in the node's worker thread: a new session whose scene holds the objects it names
(and, between episodes, the last one stays up so its state is still published). A correction
given while an episode runs goes to that episode (`correct()`: taken at its next point); one
given between episodes is kept for the next. The node's own events have kinds `bridge.*`
(instruction accepted or refused, episode result, correction refused, stop).

Everything that touches the simulator happens in the worker thread (a GL context belongs to
the thread that made it): state and images are published from the arm's tick hook during an
episode and from the worker's idle loop between episodes.

`robots` sits below the session in the package layers, so this module takes any object with
the session's surface (`SessionLike`), built by a factory the caller gives (the `bridge` verb).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import io
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError, CorrigibleError
from corrigible.robots.bridge.server import RosbridgeServer
from corrigible.tracing import to_jsonable

_LOG = logging.getLogger(__name__)

JOINT_STATES = "/joint_states"
EE_POSE = "/ee_pose"
CAMERA = "/camera/image/compressed"
EVENTS = "/corrigible/events"
INSTRUCTION = "/corrigible/instruction"
CORRECTION = "/corrigible/correction"
STOP = "/corrigible/stop"
_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
_FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
MAX_INSTRUCTION_CHARS = 1000  # characters of one instruction message


class SessionLike(Protocol):
    """The part of the corrigible `Session` the node uses."""

    env: Any

    def reset(self, *, mention: Any = ()) -> None:
        """Builds the scene holding the objects `mention` names."""

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Calls `callback` with every event."""

    def correct(self, text: str, source: str = "typed") -> None:
        """Gives a correction, taken at the next point where it can act."""

    def run(self, instruction: str, *, expect: str | None = None) -> Any:
        """Runs one instruction; returns its result (with `to_dict()`)."""

    def stop(self, reason: str = "stopped") -> None:
        """Ends the run at the arm's next control step."""

    def close(self) -> None:
        """Releases the simulator."""


class NodeConfig(StrictConfig):
    """How the node publishes."""

    state_hz: float = Field(default=20.0, gt=0, le=1000, allow_inf_nan=False)  # joint states/s
    camera_hz: float = Field(default=2.0, ge=0, le=60, allow_inf_nan=False)  # images/s; 0: off
    jpeg_quality: int = Field(default=80, ge=10, le=100)  # JPEG quality of camera images
    max_queued: int = Field(default=8, ge=1)  # instructions waiting; more are refused
    frame_id: str = "world"  # frame of /ee_pose
    correction_source: str = "typed"  # the `source` given to `Session.correct`


class StringMsg(BaseModel):
    """std_msgs/String."""

    model_config = ConfigDict(extra="forbid")

    data: str


class Instruction(BaseModel):
    """An instruction message's JSON form."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(min_length=1, max_length=MAX_INSTRUCTION_CHARS)
    expect: str | None = Field(default=None, max_length=MAX_INSTRUCTION_CHARS)


class SessionNode:
    """Runs sessions built by `make_session` and exposes them on `server`.

    Args:
        server: the rosbridge server (started or not).
        make_session: builds a fresh session (not yet reset) for an episode id.
        config: publishing rates and limits.
        mention: texts whose objects the first (idle) scene holds, e.g. an instruction.

    Example:
        node = SessionNode(server, lambda episode: Session(SessionConfig(interactive=True,
                           episode=episode)))
        node.start()  # builds the first scene, then serves instructions until stop()
    """

    def __init__(
        self,
        server: RosbridgeServer,
        make_session: Callable[[str], SessionLike],
        config: NodeConfig | None = None,
        *,
        mention: tuple[str, ...] = (),
    ) -> None:
        self.server = server
        self.config = config or NodeConfig()
        self._make = make_session
        self._mention = mention
        self._queue: queue.Queue[Instruction | None] = queue.Queue(self.config.max_queued)
        self._lock = threading.Lock()
        self._session: SessionLike | None = None
        self._running = False  # an episode runs now (or its scene is being built)
        self._stop_requested = False  # /corrigible/stop came while the scene was being built
        self._pending: list[str] = []  # corrections given between episodes
        self._episodes = 0
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._last_state = 0.0
        self._last_image = 0.0
        self._seq = 0
        self._started = time.monotonic()
        self._unsubscribe: list[Callable[[], None]] = []
        # the last 100 episodes' results, as published (for scripts and tests)
        self.results: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 300.0) -> SessionNode:
        """Advertises the topics and services, builds the first scene and starts serving.

        Raises:
            ConfigError: the first session could not be built (the message says why).
        """
        server = self.server
        server.advertise(JOINT_STATES, "sensor_msgs/JointState")
        server.advertise(EE_POSE, "geometry_msgs/PoseStamped")
        server.advertise(CAMERA, "sensor_msgs/CompressedImage")
        server.advertise(EVENTS, "std_msgs/String")
        self._unsubscribe = [
            server.on_publish(INSTRUCTION, "std_msgs/String", self._on_instruction),
            server.on_publish(CORRECTION, "std_msgs/String", self._on_correction),
        ]
        server.advertise_service(STOP, "std_srvs/Trigger", self._on_stop)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._work, args=(ready,), name="bridge-session", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout_s):
            raise ConfigError(f"the first session was not built within {timeout_s:g} s")
        if self._failure is not None:
            raise ConfigError(f"cannot build the session: {self._failure}") from self._failure
        return self

    def stop(self) -> None:
        """Stops the running episode, ends the worker and closes the session (idempotent)."""
        if self._thread is None:
            return
        self._drain()
        with self._lock:
            session, running = self._session, self._running
        if running and session is not None:
            session.stop("the bridge is shutting down")
        with contextlib.suppress(queue.Full):  # full only if a client raced the drain
            self._queue.put(None, timeout=5)
        self._thread.join(60)
        self._thread = None
        for undo in self._unsubscribe:
            undo()
        self.server.unadvertise_service(STOP)

    def __enter__(self) -> SessionNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        """Whether an episode runs now."""
        return self._running

    def wait_idle(self, timeout_s: float) -> bool:
        """Waits until no episode runs or waits (for tests and scripts); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._running and self._queue.empty():
                return True
            time.sleep(0.05)
        return False

    # -- the worker thread ------------------------------------------------------------------------
    def _work(self, ready: threading.Event) -> None:
        try:
            self._switch(list(self._mention))
        except Exception as exc:  # reported by start()
            self._failure = exc
            ready.set()
            return
        ready.set()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=1.0 / self.config.state_hz)
                except queue.Empty:
                    self._publish_state(force=True)
                    continue
                if item is None:
                    break
                self._episode(item)
        finally:
            with self._lock:
                session, self._session = self._session, None
            if session is not None:
                session.close()

    def _switch(self, mention: list[str | None]) -> SessionLike:
        """Closes the current session and builds the next one, its scene holding `mention`."""
        with self._lock:
            old, self._session = self._session, None
        if old is not None:
            old.close()
        self._episodes += 1
        session = self._make(f"bridge-{time.strftime('%Y%m%d-%H%M%S')}-{self._episodes}")
        try:
            session.reset(mention=mention)
            session.subscribe(self._on_event)
            arm = getattr(session.env, "arm", None)
            if arm is not None and hasattr(arm, "add_tick_hook"):
                arm.add_tick_hook(self._on_tick)
        except BaseException:
            session.close()
            raise
        with self._lock:
            self._session = session
        return session

    def _episode(self, item: Instruction) -> None:
        with self._lock:
            self._running = True  # from here a stop request is for this episode
            self._stop_requested = False
        try:
            session = self._switch([item.instruction, item.expect])
        except (CorrigibleError, ValueError, KeyError) as exc:
            with self._lock:
                self._running = False
            self._event("bridge.episode.error", instruction=item.instruction, error=str(exc))
            return
        with self._lock:
            stopped = self._stop_requested  # stopped while its scene was being built
            if stopped:
                self._running = False
            pending, self._pending = self._pending, []
        if stopped:
            self._event("bridge.episode.error", instruction=item.instruction, error="stopped")
            return
        for text in pending:
            self._correct(session, text)
        self._event("bridge.episode.start", instruction=item.instruction, expect=item.expect)
        try:
            result = session.run(item.instruction, expect=item.expect)
        except (CorrigibleError, ValueError, KeyError) as exc:
            self._event("bridge.episode.error", instruction=item.instruction, error=str(exc))
            return
        finally:
            with self._lock:
                self._running = False
        payload = to_jsonable(result.to_dict())
        self.results.append(payload)
        self._event("bridge.episode.result", **payload)
        self._publish_state(force=True)

    # -- state publishing (worker thread only) ----------------------------------------------------
    def _on_tick(self, arm: Any) -> None:
        try:
            self._publish_state(force=False, arm=arm)
        except Exception:  # publishing must never interrupt the arm's motion
            _LOG.exception("the bridge could not publish the arm's state")

    def _publish_state(self, *, force: bool, arm: Any = None) -> None:
        now = time.monotonic()
        if not force and now - self._last_state < 1.0 / self.config.state_hz:
            return
        self._last_state = now
        session = self._session
        if arm is None:
            arm = getattr(getattr(session, "env", None), "arm", None)
        if arm is None:
            return
        state = arm.joint_state()
        q = [float(x) for x in state["arm.q_rad"]]
        qd = [float(x) for x in state["arm.qd_rad_s"]]
        fingers = [float(x) for x in state["gripper.fingers_m"]]
        header = self._header("")
        self.server.publish(
            JOINT_STATES,
            {
                "header": header,
                "name": [*_ARM_JOINTS[: len(q)], *_FINGER_JOINTS[: len(fingers)]],
                "position": q + fingers,
                "velocity": qd + [0.0] * len(fingers),
                "effort": [],
            },
        )
        self.server.publish(
            EE_POSE, {"header": {**header, "frame_id": self.config.frame_id}, "pose": _pose(arm)}
        )
        if (
            self.config.camera_hz > 0
            and self.server.subscriber_count(CAMERA) > 0
            and now - self._last_image >= 1.0 / self.config.camera_hz
        ):
            self._last_image = now
            self._publish_image(session)

    def _publish_image(self, session: SessionLike | None) -> None:
        env = getattr(session, "env", None)
        if env is None:
            return
        rgb, _depth = env.backend.render(env.camera)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow ships with the bridge extra
            _LOG.warning("pillow is not installed; %s is not published", CAMERA)
            self.config = self.config.model_copy(update={"camera_hz": 0.0})
            return
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=self.config.jpeg_quality)
        self.server.publish(
            CAMERA,
            {
                "header": self._header(getattr(env.camera, "name", "camera")),
                "format": "jpeg",
                "data": base64.b64encode(buffer.getvalue()).decode("ascii"),
            },
        )

    def _header(self, frame_id: str) -> dict[str, Any]:
        self._seq += 1
        secs, nsecs = divmod(time.time_ns(), 1_000_000_000)
        return {"seq": self._seq, "stamp": {"secs": secs, "nsecs": nsecs}, "frame_id": frame_id}

    # -- events -----------------------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        payload = event.model_dump() if hasattr(event, "model_dump") else dict(event)
        self.server.publish(EVENTS, {"data": json.dumps(to_jsonable(payload), default=str)})

    def _event(self, kind: str, **data: Any) -> None:
        """A `bridge.*` event, published straight to /corrigible/events.

        Not into the session's trace: that is written from the simulator's thread only.
        """
        session = self._session
        payload = {
            "kind": kind,
            "episode": str(getattr(session, "episode", "-")),
            "wall_s": time.monotonic() - self._started,
            "data": data,
        }
        self.server.publish(EVENTS, {"data": json.dumps(to_jsonable(payload), default=str)})

    # -- what clients send (dispatcher thread) ----------------------------------------------------
    def _on_instruction(self, msg: dict[str, Any]) -> None:
        try:
            text = StringMsg.model_validate(msg).data
            item = _instruction(text)
        except (ValidationError, ConfigError) as exc:
            self._event("bridge.instruction.refused", error=_first_error(exc))
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._event(
                "bridge.instruction.refused",
                instruction=item.instruction,
                error=f"{self.config.max_queued} instructions already wait; send it later",
            )
            return
        self._event("bridge.instruction.accepted", instruction=item.instruction)

    def _on_correction(self, msg: dict[str, Any]) -> None:
        try:
            text = StringMsg.model_validate(msg).data
        except ValidationError as exc:
            self._event("bridge.correction.refused", error=_first_error(exc))
            return
        with self._lock:
            session, running = self._session, self._running
            if not running or session is None or session.env is None:
                self._pending.append(text)  # taken by the next (or the starting) episode
                self._event("bridge.correction.queued", text=text)
                return
        self._correct(session, text)

    def _correct(self, session: SessionLike, text: str) -> None:
        try:
            session.correct(text, source=self.config.correction_source)
        except (CorrigibleError, ValueError) as exc:
            self._event("bridge.correction.refused", text=text, error=str(exc))

    def _on_stop(self, _args: dict[str, Any]) -> dict[str, Any]:
        dropped = self._drain()
        with self._lock:
            session, running = self._session, self._running
        if running and session is not None:
            session.stop("stopped over the bridge (/corrigible/stop)")
            message = "stopped the running episode"
        elif running:  # its scene is being built: it will not start
            with self._lock:
                self._stop_requested = True
            message = "stopped the episode before it started"
        else:
            message = "no episode was running"
        if dropped:
            message += f"; dropped {dropped} queued instruction(s)"
        self._event("bridge.stop", message=message)
        return {"success": running, "message": message}

    def _drain(self) -> int:
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return dropped
            if item is None:
                self._queue.put_nowait(None)  # keep the shutdown request
                return dropped
            dropped += 1


def _instruction(text: str) -> Instruction:
    """An instruction message: plain text, or JSON {"instruction", "expect"}."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            raise ConfigError(
                "the instruction looks like JSON but is not; send plain text or "
                '{"instruction": "...", "expect": "..."}'
            ) from None
        return Instruction.model_validate(data)
    if not stripped:
        raise ConfigError("the instruction is empty; say what to do, e.g. 'put the red block ...'")
    return Instruction(instruction=stripped)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        return f"{where}: {first['msg']}"
    return str(exc)


def _pose(arm: Any) -> dict[str, Any]:
    """The end effector's measured pose; orientation from forward kinematics when known."""
    pose = arm.ee_pose()
    x, y, z = (float(v) for v in pose.pos)
    quat = _yaw_quaternion(float(pose.yaw))
    kin = getattr(arm, "kin", None)
    if kin is not None:
        q = arm.joint_state()["arm.q_rad"]
        quat = _quaternion(kin.forward(q)[:3, :3])
    return {
        "position": {"x": x, "y": y, "z": z},
        "orientation": dict(zip(("x", "y", "z", "w"), quat, strict=True)),
    }


def _yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


def _quaternion(r: Any) -> tuple[float, float, float, float]:
    """A rotation matrix as a unit quaternion (x, y, z, w), ROS's order."""
    trace = r[0][0] + r[1][1] + r[2][2]
    if trace > 0:
        s = math.sqrt(trace + 1.0) * 2
        w, x = 0.25 * s, (r[2][1] - r[1][2]) / s
        y, z = (r[0][2] - r[2][0]) / s, (r[1][0] - r[0][1]) / s
    elif r[0][0] > r[1][1] and r[0][0] > r[2][2]:
        s = math.sqrt(1.0 + r[0][0] - r[1][1] - r[2][2]) * 2
        w, x = (r[2][1] - r[1][2]) / s, 0.25 * s
        y, z = (r[0][1] + r[1][0]) / s, (r[0][2] + r[2][0]) / s
    elif r[1][1] > r[2][2]:
        s = math.sqrt(1.0 + r[1][1] - r[0][0] - r[2][2]) * 2
        w, x = (r[0][2] - r[2][0]) / s, (r[0][1] + r[1][0]) / s
        y, z = 0.25 * s, (r[1][2] + r[2][1]) / s
    else:
        s = math.sqrt(1.0 + r[2][2] - r[0][0] - r[1][1]) * 2
        w, x = (r[1][0] - r[0][1]) / s, (r[0][2] + r[2][0]) / s
        y, z = (r[1][2] + r[2][1]) / s, 0.25 * s
    return (float(x), float(y), float(z), float(w))


__all__ = [
    "CAMERA",
    "CORRECTION",
    "EE_POSE",
    "EVENTS",
    "INSTRUCTION",
    "JOINT_STATES",
    "STOP",
    "NodeConfig",
    "SessionLike",
    "SessionNode",
]
