"""`SimArm`: the `Arm` interface over any physics backend.

All arm logic (IK, straight-line motion with a speed limit and acceleration ramp, the safety
envelope, grasp detection, tracing) is written once here; the engine-specific part is only the
backend, seen through the `ArmBackend` protocol (`robots.arm_backend`), which the engine
backends of `sim_envs.backends` satisfy by shape: `robots` never imports `sim_envs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from corrigible.errors import ConfigError, EmergencyStopError, MotionError
from corrigible.robots.arm import Arm, GripResult, MotionResult, Pose
from corrigible.robots.arm_backend import ArmBackend
from corrigible.robots.assets import urdf_path
from corrigible.robots.kinematics import ArmKinematics, top_down_rotation
from corrigible.robots.safety import SafetyConfig, SafetyEnvelope
from corrigible.tracing import EpisodeTrace

TickHook = Callable[["SimArm"], None]


@dataclass(frozen=True, kw_only=True)
class MotionConfig:
    """How motions are executed (shared by both engines)."""

    default_speed: float = 0.25  # m/s when a caller gives none
    ramp_s: float = 0.15  # s to reach full speed: acceleration = speed / ramp_s
    tolerance: float = 0.006  # m, a motion has reached its target within this distance
    settle_s: float = 0.6  # s allowed after the path ends for the arm to catch up
    grasp_timeout_s: float = 0.8  # s to close the fingers
    release_s: float = 0.35  # s to open the fingers
    ik_iterations: int = 2  # DLS iterations per control step (the target moves little)

    def __post_init__(self) -> None:
        if self.default_speed <= 0 or self.ramp_s <= 0 or self.tolerance <= 0:
            raise ConfigError("MotionConfig speeds, ramp and tolerance must be > 0")


def _yaw_of(rot: np.ndarray) -> float:
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


class SimArm(Arm):
    """The Panda in simulation, driven through an `ArmBackend`.

    Args:
        backend: a built scene in either engine (anything satisfying `ArmBackend`).
        safety: the envelope every command passes through.
        motion: motion execution settings.
        trace: where arm commands are recorded (optional).
    """

    def __init__(
        self,
        backend: ArmBackend,
        *,
        safety: SafetyConfig | None = None,
        motion: MotionConfig | None = None,
        trace: EpisodeTrace | None = None,
    ) -> None:
        self.backend = backend
        robot = backend.scene.robot
        self.kin = ArmKinematics(urdf_path(robot.urdf), robot.ee_link)
        self.envelope = SafetyEnvelope(safety)
        self.motion = motion or MotionConfig()
        self.trace = trace
        self._substeps = backend.scene.physics.substeps
        self._dt = backend.scene.physics.control_dt
        self._home_q = np.asarray(robot.home_q, dtype=np.float64)
        self._open_width = robot.finger_max_opening
        self._hooks: list[TickHook] = []
        self.sync()

    # -- state -----------------------------------------------------------------------------
    def sync(self) -> None:
        """Re-reads the measured arm state into the command state (after resets)."""
        q, _, _ = self.backend.joint_state()
        self._q_cmd = q.copy()
        tf = self.kin.forward(q)
        self._cmd_pos = tf[:3, 3].copy()
        self._cmd_yaw = _yaw_of(tf[:3, :3])
        self._gripper_closed = False

    @property
    def commanded_pos(self) -> np.ndarray:
        """The end-effector position currently commanded (before tracking error), m."""
        return self._cmd_pos.copy()

    def add_tick_hook(self, hook: TickHook) -> None:
        """Calls `hook(arm)` after every control step; a hook may raise to interrupt a motion."""
        self._hooks.append(hook)

    def remove_tick_hook(self, hook: TickHook) -> None:
        """Removes a hook added with `add_tick_hook`."""
        self._hooks.remove(hook)

    def _tick(self) -> None:
        q, _ = self.kin.solve(
            self._cmd_pos,
            top_down_rotation(self._cmd_yaw),
            self._q_cmd,
            q_rest=self._home_q,
            iterations=self.motion.ik_iterations,
        )
        self._q_cmd = q
        self.backend.set_arm_targets(q)
        self.backend.step(self._substeps)
        for hook in self._hooks:
            hook(self)

    def _check_estop(self) -> None:
        if self.envelope.estopped:
            raise EmergencyStopError("the e-stop is engaged; call reset_stop() before moving again")

    def _emit(self, kind: str, **fields: object) -> None:
        if self.trace is not None:
            self.trace.emit(kind, sim_time_s=self.backend.time, **fields)

    # -- Arm API ---------------------------------------------------------------------------
    def move_to(self, pose: Pose, *, speed: float | None = None) -> MotionResult:
        self._check_estop()
        self.envelope.check_target(pose.pos)
        return self._move(pose.pos, pose.yaw, speed, "move_to", pose.pos, pose.pos, clipped=False)

    def move_by(self, delta: np.ndarray, *, speed: float | None = None) -> MotionResult:
        self._check_estop()
        delta = np.asarray(delta, dtype=np.float64).reshape(3)
        target = self.envelope.clip_point(self._cmd_pos + delta)
        applied = target - self._cmd_pos
        clipped = not np.allclose(applied, delta, atol=1e-9)
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
        """Straight-line motion to `target`; `requested`/`applied` are reported as given."""
        requested_speed = speed if speed is not None else self.motion.default_speed
        speed_used = self.envelope.clip_speed(requested_speed)
        q_goal, err = self.kin.solve(
            target, top_down_rotation(yaw), self._q_cmd, q_rest=self._home_q, iterations=200
        )
        if err > 0.01:
            raise MotionError(
                f"target {np.round(target, 3).tolist()} is out of the arm's reach "
                f"(IK error {err * 100:.1f} cm); no motion was made"
            )
        t0 = self.backend.time
        start, start_yaw = self._cmd_pos.copy(), self._cmd_yaw
        dyaw = (yaw - start_yaw + np.pi) % (2 * np.pi) - np.pi
        length = float(np.linalg.norm(target - start))
        accel = speed_used / self.motion.ramp_s
        s, v = 0.0, 0.0
        try:
            while s < length or abs(self._cmd_yaw - (start_yaw + dyaw)) > 1e-6:
                self._check_estop()
                remaining = length - s
                v = min(
                    speed_used,
                    v + accel * self._dt,
                    float(np.sqrt(2 * accel * max(remaining, 0.0))) + 1e-4,
                )
                s = min(length, s + v * self._dt)
                frac = s / length if length > 1e-9 else 1.0
                yaw_frac = min(1.0, frac if length > 1e-9 else 1.0)
                if length <= 1e-9:  # pure rotation: turn at about 1.5 rad/s
                    turned = abs(self._cmd_yaw - start_yaw) + 1.5 * self._dt
                    yaw_frac = min(1.0, turned / max(abs(dyaw), 1e-9))
                self._cmd_pos = start + (target - start) * frac
                self._cmd_yaw = start_yaw + dyaw * yaw_frac
                self._tick()
            settle_ticks = int(self.motion.settle_s / self._dt)
            for _ in range(settle_ticks):
                if np.linalg.norm(self.ee_pose().pos - target) < self.motion.tolerance:
                    break
                self._check_estop()
                self._tick()
        finally:
            final = self.ee_pose().pos
        reached = bool(np.linalg.norm(final - target) < self.motion.tolerance)
        result = MotionResult(
            command=command,
            requested=np.asarray(requested, dtype=np.float64),
            applied=np.asarray(applied, dtype=np.float64).copy(),
            clipped=clipped or speed_used < requested_speed,
            reached=reached,
            final_pos=final,
            speed=speed_used,
            duration_s=self.backend.time - t0,
        )
        self._emit(f"arm.{command}", **result.to_dict(), yaw=yaw, requested_speed=requested_speed)
        return result

    def apply_action(self, delta: np.ndarray, close_gripper: bool) -> np.ndarray:
        """One control step of an end-effector delta (env.step); returns the applied delta."""
        self._check_estop()
        applied = self.envelope.clip_step(self._cmd_pos, delta)
        self._cmd_pos = self._cmd_pos + applied
        if close_gripper != self._gripper_closed:
            self.backend.set_finger_target(0.0 if close_gripper else self._open_width)
            self._gripper_closed = close_gripper
        self._tick()
        if self.trace is not None:
            self.trace.emit(
                "arm.step", requested=delta, applied=applied, gripper_closed=close_gripper
            )
        return applied

    def grasp(self) -> GripResult:
        self._check_estop()
        self.backend.set_finger_target(0.0)
        self._gripper_closed = True
        last = None
        for _ in range(max(1, int(self.motion.grasp_timeout_s / self._dt))):
            self._tick()
            width = float(self.backend.joint_state()[2].sum())
            if last is not None and abs(width - last) < 2e-4:
                break
            last = width
        return self._grip_result(closed=True, command="arm.grasp")

    def release(self, width: float | None = None) -> GripResult:
        """Opens the gripper, fully or to `width` per finger (m) where space is tight."""
        self._check_estop()
        opening = (
            self._open_width if width is None else float(np.clip(width, 0.0, self._open_width))
        )
        self.backend.set_finger_target(opening)
        self._gripper_closed = False
        for _ in range(max(1, int(self.motion.release_s / self._dt))):
            self._tick()
        return self._grip_result(closed=False, command="arm.release")

    def _grip_result(self, *, closed: bool, command: str) -> GripResult:
        contacts = self.backend.finger_contacts()
        width = float(self.backend.joint_state()[2].sum())
        holding = next((name for name, n in contacts.items() if n >= 2), None) if closed else None
        result = GripResult(closed=closed, width=width, holding=holding, contacts=contacts)
        self._emit(command, width=width, holding=holding, contacts=contacts)
        return result

    def holding(self) -> str | None:
        """The object currently pinched between both fingers, if any."""
        if not self._gripper_closed:
            return None
        return next((name for name, n in self.backend.finger_contacts().items() if n >= 2), None)

    def wait(self, seconds: float) -> None:
        """Holds the current command for `seconds` of simulated time (lets objects settle)."""
        for _ in range(max(1, int(round(seconds / self._dt)))):
            self._tick()

    def joint_state(self) -> dict[str, np.ndarray]:
        q, qd, fingers = self.backend.joint_state()
        return {"arm.q_rad": q, "arm.qd_rad_s": qd, "gripper.fingers_m": fingers}

    def ee_pose(self) -> Pose:
        q, _, _ = self.backend.joint_state()
        tf = self.kin.forward(q)
        return Pose(tf[:3, 3], _yaw_of(tf[:3, :3]))

    def stop(self) -> None:
        self.envelope.estopped = True
        q, _, _ = self.backend.joint_state()
        self._q_cmd = q
        self.backend.set_arm_targets(q)
        self._cmd_pos = self.kin.forward(q)[:3, 3].copy()
        self._emit("arm.stop", pos=self._cmd_pos)

    def reset_stop(self) -> None:
        self.envelope.estopped = False
        self._emit("arm.reset_stop")

    @property
    def is_stopped(self) -> bool:
        return self.envelope.estopped
