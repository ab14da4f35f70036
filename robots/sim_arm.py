"""`SimArm`: the `Arm` interface over any physics backend.

All arm logic (IK, straight-line motion with a speed limit and acceleration ramp, the safety
envelope, grasp detection, tracing) is written once here; the engine-specific part is only the
backend, seen through the `ArmBackend` protocol (`robots.arm_backend`), which the engine
backends of `sim_envs.backends` satisfy by shape: `robots` never imports `sim_envs`.

The speed limit holds on the measured motion: every control tick goes through a governor
(`SimArm._step_governed`) that caps how far the servo target may move per tick and lead the
measured end effector, and, measuring inside the tick, slows or stops the servo before the
measured travel would exceed one tick's worth of the limit. See robots/README.md, "Safety
envelope".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from corrigible.errors import ConfigError, EmergencyStopError, MotionError
from corrigible.robots.arm import Arm, GripResult, MotionResult, Pose
from corrigible.robots.arm_backend import ArmBackend
from corrigible.robots.assets import urdf_path
from corrigible.robots.kinematics import ArmKinematics, top_down_rotation
from corrigible.robots.safety import SafetyConfig, SafetyEnvelope
from corrigible.tracing import EpisodeTrace

TickHook = Callable[["SimArm"], None]

# Physics steps between the speed governor's measurements inside a supervised control tick:
# short first, because a stiff position servo (PyBullet's) covers most of its target lead in
# the first few milliseconds; longer later, where a soft one (MuJoCo's) is still accelerating.
_CHECK_CHUNKS = (1, 1, 2, 3, 5, 5, 8)
# s: how long a moving arm's servo takes to brake; its speed times this is how far it overshoots
# a target (PyBullet's torque-limited servo overshoots ~1 cm at 0.5 m/s; MuJoCo's lags instead).
_BRAKING_S = 0.02
# Ticks starting faster than this fraction of the limit are supervised even with a near target.
_SUPERVISE_ABOVE = 0.8


def _norm(v: np.ndarray) -> float:
    """Length of a 3-vector, cheaply: every control tick takes several of them."""
    return math.sqrt(float(v @ v))


def _chunks(substeps: int) -> tuple[int, ...]:
    """`_CHECK_CHUNKS` cut or extended (by its last size) to add up to `substeps`."""
    out: list[int] = []
    for n in (*_CHECK_CHUNKS, *([_CHECK_CHUNKS[-1]] * substeps)):
        n = min(n, substeps - sum(out))
        if n <= 0:
            break
        out.append(n)
    return tuple(out)


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
    min_speed: float = 0.005  # m/s, slowest motion accepted (a 30 cm move then takes 60 s)

    def __post_init__(self) -> None:
        for name in ("default_speed", "ramp_s", "tolerance", "min_speed"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"MotionConfig.{name} must be a finite number > 0, got {value}")


def _yaw_of(rot: np.ndarray) -> float:
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def _fraction_within(moved: np.ndarray, to_aim: np.ndarray, radius: float) -> float:
    """The largest a in [0, 1] with |moved + a * to_aim| <= radius (0 when already outside)."""
    c = float(moved @ moved) - radius**2
    if c >= 0:
        return 0.0
    a2, b = float(to_aim @ to_aim), float(moved @ to_aim)
    if a2 <= 1e-18:
        return 1.0
    return min(1.0, (-b + float(np.sqrt(b * b - a2 * c))) / a2)


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
        self._chunks = _chunks(self._substeps)
        self._hooks: list[TickHook] = []
        self.measured_speed = 0.0  # m/s, end-effector travel over the last control tick / tick
        self._governed: str | None = None  # what the governor did in the last tick, if anything
        self._peak_speed = 0.0  # m/s, highest measured tick speed since the motion started
        self._interventions = 0  # governed ticks since the motion started
        self.sync()

    # -- state -----------------------------------------------------------------------------
    def sync(self) -> None:
        """Re-reads the measured arm state into the command state (after resets)."""
        q, _, _ = self.backend.joint_state()
        self._q_cmd = q.copy()
        tf = self.kin.forward(q)
        self._q_sent, self._aim = q.copy(), tf[:3, 3].copy()  # the servo target last sent
        self.measured_speed, self._governed = 0.0, None
        self._cmd_pos = tf[:3, 3].copy()
        self._cmd_yaw = _yaw_of(tf[:3, :3])
        self._gripper_closed = False

    @property
    def commanded_pos(self) -> np.ndarray:
        """The end-effector position currently commanded (before tracking error), m."""
        return self._cmd_pos.copy()

    def add_tick_hook(self, hook: TickHook, *, first: bool = False) -> None:
        """Calls `hook(arm)` after every control step; a hook may raise to interrupt a motion.

        `first`: run it before the hooks added earlier (an observer, such as a dataset
        recorder, that must see every tick even when a later hook preempts the motion).
        """
        if first:
            self._hooks.insert(0, hook)
        else:
            self._hooks.append(hook)

    def command(self) -> dict[str, Any]:
        """The command in force now, after the safety envelope and the speed governor.

        What a recorder logs as the action actually applied: the end-effector target, its yaw,
        the gripper command and the joint targets sent to the servos.
        """
        return {
            "ee.target_pos_m": self._cmd_pos.copy(),
            "ee.target_yaw_rad": float(self._cmd_yaw),
            "gripper.closed": bool(self._gripper_closed),
            "joint.target_rad": self._q_sent.copy(),
        }

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
        self._step_governed(q)
        for hook in self._hooks:
            hook(self)

    def _measured_tip(self) -> tuple[np.ndarray, np.ndarray]:
        q = self.backend.joint_state()[0]
        return q, self.kin.forward(q)[:3, 3]

    def _step_governed(self, q_target: np.ndarray) -> None:
        """One control tick towards `q_target`, the speed limit held on the measured motion.

        The measured speed is the end effector's travel over the tick divided by the tick's
        length (positions from the measured joints through the kinematics). The interventions
        that keep it at most `max_speed` (plus `speed_tolerance` for the servo's overshoot):

        - step cap: the servo target moves at most `max_joint_speed` per joint and its tip at
          most one tick's travel from the last target (the per-tick IK does not always move its
          solution evenly, swinging the joints through the null space, and a stiff servo
          follows every swing);
        - lead cap: the servo target lies at most `max_lead` from the measured end effector, so
          an arm held back (a jammed push, a stiff drawer) does not wind up a fast catch-up.
          A capped target is ramped in over the tick's physics steps rather than set at once,
          as a real arm's controller interpolates its targets;
        - slow down / stop: a tick whose target is more than one tick's travel away, whose
          target was capped, or that starts with the arm moving near the limit, is stepped in
          short chunks (`_CHECK_CHUNKS`, the same physics steps in total) with the end effector
          measured after each. When the travel so far plus what the servo will still cover (its
          speed over the rest of the tick; when heading for its target, at most the distance
          left plus its braking distance) would exceed the tick's budget, a nearer target, where
          the tick ends at its budget, is ramped in from where the arm is; when the arm is
          already that far, the target becomes the measured joints: it brakes.

        Each intervention is traced as an `arm.speed_limited` event, and a motion slowed while
        moving fast is re-planned from where the arm is (`_move`). A tick that needs none steps
        exactly as before.
        """
        config = self.envelope.config
        budget = self.envelope.tick_budget(self._dt)
        q0, p0 = self._measured_tip()
        aim = self.kin.forward(q_target)[:3, 3]
        action, ramp_from = None, None
        swing = float(np.abs(q_target - self._q_sent).max())
        joint_step = config.max_joint_speed * self._dt
        if swing > joint_step:
            q_target = self._q_sent + (joint_step / swing) * (q_target - self._q_sent)
            aim = self.kin.forward(q_target)[:3, 3]
            action, ramp_from = "step_capped", self._q_sent
        jump = _norm(aim - self._aim)
        if jump > budget:
            q_target = self._q_sent + (budget / jump) * (q_target - self._q_sent)
            aim = self.kin.forward(q_target)[:3, 3]
            action, ramp_from = "step_capped", self._q_sent
        lead = _norm(aim - p0)
        if lead > config.max_lead:
            q_target = q0 + (config.max_lead / lead) * (q_target - q0)
            aim = self.kin.forward(q_target)[:3, 3]
            action, ramp_from = "lead_capped", q0
        self._q_cmd = q_target
        self._q_sent, self._aim = q_target, aim
        braking = self.measured_speed * _BRAKING_S  # how far it overshoots a target
        if (
            ramp_from is None
            and self._governed is None
            and lead + braking <= budget
            and self.measured_speed <= _SUPERVISE_ABOVE * config.max_speed
        ):
            # A target within one tick's travel, overshoot included, the arm not near the limit:
            # the servo gets there (PyBullet's in a quick kick that fades within the tick).
            self.backend.set_arm_targets(q_target)
            self.backend.step(self._substeps)
        else:
            action = self._step_supervised(q_target, aim, p0, ramp_from) or action
        _, p1 = self._measured_tip()
        self.measured_speed = _norm(p1 - p0) / self._dt
        self._peak_speed = max(self._peak_speed, self.measured_speed)
        self._governed = action
        if action is not None:
            self._interventions += 1
            self._emit(
                "arm.speed_limited",
                action=action,
                measured_speed=self.measured_speed,
                max_speed=config.max_speed,
                lead=lead,
                pos=p1,
            )

    def _step_supervised(
        self,
        q_target: np.ndarray,
        aim: np.ndarray,
        p0: np.ndarray,
        ramp_from: np.ndarray | None,
    ) -> str | None:
        """Steps one tick in measured chunks (see `_step_governed`); returns what it did.

        `ramp_from`: ramp the target in from these joints over the tick (None: set it at once).
        """
        budget = self.envelope.tick_budget(self._dt)
        braking = self.measured_speed * _BRAKING_S  # travelled on before the servo has braked
        h = self._dt / self._substeps  # s per physics step
        ramp = None if ramp_from is None else (ramp_from, q_target, 0)  # from, to, first step
        if ramp is None:
            self.backend.set_arm_targets(q_target)
        done, prev, action = 0, p0, None
        for n in self._chunks:
            if ramp is None:
                self.backend.step(n)
            else:
                q_from, q_to, first = ramp
                for i in range(done + 1, done + n + 1):
                    frac = (i - first) / (self._substeps - first)
                    self.backend.set_arm_targets(q_from + frac * (q_to - q_from))
                    self.backend.step(1)
            done += n
            if done >= self._substeps or action == "stopped":
                continue
            q, p = self._measured_tip()
            step, to_aim = p - prev, aim - p
            prev = p
            speed = _norm(step) / (n * h)
            moved = _norm(p - p0)
            ahead = speed * (self._substeps - done) * h
            near = _norm(to_aim)
            if step @ to_aim > 0.5 * _norm(step) * near:
                # Heading for its target, a position servo stops there, or just past it.
                ahead = min(ahead, near + braking)
            if moved + ahead <= budget:
                continue
            alpha = _fraction_within(p - p0, to_aim, max(budget - braking, 0.0))
            if alpha >= 1.0:
                continue
            q_target = q + alpha * (q_target - q)
            aim = self._brake(q_target)
            if alpha > 0:  # slow down: ramp the nearer target in from where the arm is
                action, ramp = "slowed", (q, q_target, done)
            else:  # stop: hold the measured joints
                action, ramp = "stopped", None
        return action

    def _brake(self, q: np.ndarray) -> np.ndarray:
        """Makes `q` the servo target in the middle of a tick (nearer than planned); its tip."""
        self.backend.set_arm_targets(q)
        self._q_cmd = self._q_sent = q
        self._aim = self.kin.forward(q)[:3, 3]
        return self._aim

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
        """Straight-line motion to `target`; `requested`/`applied` are reported as given."""
        requested_speed = speed if speed is not None else self.motion.default_speed
        speed_used = self.envelope.clip_speed(requested_speed)
        if speed_used < self.motion.min_speed:
            raise MotionError(
                f"speed {speed_used:g} m/s is below the slowest motion accepted "
                f"({self.motion.min_speed:g} m/s); no motion was made"
            )
        q_goal, err = self.kin.solve(
            target, top_down_rotation(yaw), self._q_cmd, q_rest=self._home_q, iterations=200
        )
        if err > 0.01:
            raise MotionError(
                f"target {np.round(target, 3).tolist()} is out of the arm's reach "
                f"(IK error {err * 100:.1f} cm); no motion was made"
            )
        t0 = self.backend.time
        self._peak_speed, self._interventions = 0.0, 0
        start, start_yaw = self._cmd_pos.copy(), self._cmd_yaw
        dyaw = (yaw - start_yaw + np.pi) % (2 * np.pi) - np.pi
        length = float(np.linalg.norm(target - start))
        accel = speed_used / self.motion.ramp_s
        s, v = 0.0, 0.0
        # A governed motion is re-planned from where the arm is; bound the ticks all the same.
        max_ticks = int(
            4 * (length / speed_used + abs(dyaw) / 1.5 + 2 * self.motion.ramp_s) / self._dt
        )
        ticks = 0
        try:
            while s < length or abs(self._cmd_yaw - (start_yaw + dyaw)) > 1e-6:
                self._check_estop()
                ticks += 1
                if ticks > max_ticks:
                    break
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
                if (
                    self._governed in ("slowed", "stopped")
                    and self.measured_speed > 0.5 * self.envelope.config.max_speed
                ):
                    # The arm ran free after lagging its command: slow the command down, so the
                    # rest of the path starts where the arm is, at the speed it measurably has.
                    # (An arm held back, slowed while slow, keeps its command: re-planning it
                    # would release the force it presses with, and contacts then snap back.)
                    end_yaw = start_yaw + dyaw
                    start, start_yaw = self.ee_pose().pos, self._cmd_yaw
                    dyaw = end_yaw - start_yaw
                    length = float(np.linalg.norm(target - start))
                    s, v = 0.0, min(v, self.measured_speed)
                    self._cmd_pos = start.copy()
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
            peak_speed=self._peak_speed,
            speed_interventions=self._interventions,
        )
        self._emit(f"arm.{command}", **result.to_dict(), yaw=yaw, requested_speed=requested_speed)
        return result

    def apply_action(self, delta: np.ndarray, close_gripper: bool) -> np.ndarray:
        """One control step of an end-effector delta (env.step); returns the applied delta."""
        self._check_estop()
        delta = self.envelope.check_finite("an end-effector delta", delta)
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
        self._q_cmd = self._q_sent = q
        self.backend.set_arm_targets(q)
        self._cmd_pos = self.kin.forward(q)[:3, 3].copy()
        self._aim = self._cmd_pos.copy()
        self._emit("arm.stop", pos=self._cmd_pos)

    def hold(self) -> None:
        """Makes the measured joints the servo target: the arm brakes where it is.

        A halt without the e-stop (a paused, stopped or preempted motion): the next motion
        starts from here, so a corrected skill goes on from where the arm is.
        """
        q, _, _ = self.backend.joint_state()
        self._q_cmd = self._q_sent = q
        self.backend.set_arm_targets(q)
        self._cmd_pos = self.kin.forward(q)[:3, 3].copy()
        self._aim = self._cmd_pos.copy()
        self._emit("arm.hold", pos=self._cmd_pos, measured_speed=self.measured_speed)

    def reset_stop(self) -> None:
        self.envelope.estopped = False
        self._emit("arm.reset_stop")

    @property
    def is_stopped(self) -> bool:
        return self.envelope.estopped
