"""The one arm interface that skills, planners, corrections and the bridge all use."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pose:
    """An end-effector pose for top-down manipulation: position (m) and yaw about world z (rad)."""

    pos: np.ndarray
    yaw: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "pos", np.asarray(self.pos, dtype=np.float64).reshape(3))


@dataclass(kw_only=True)
class MotionResult:
    """What a motion command really did: the requested and the applied target may differ."""

    command: str  # "move_to" | "move_by" | "step"
    requested: np.ndarray  # the target or delta asked for, m
    applied: np.ndarray  # the target or delta after the safety envelope, m
    clipped: bool  # True when the envelope changed the request
    reached: bool  # True when the end effector ended within tolerance of the applied target
    final_pos: np.ndarray  # measured end-effector position at the end, m
    speed: float  # Cartesian speed used, m/s (after the speed limit)
    duration_s: float  # simulated seconds the motion took
    peak_speed: float = 0.0  # highest measured end-effector speed over one control tick, m/s
    speed_interventions: int = 0  # control ticks in which the speed governor slowed the servo

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for traces."""
        return {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()
        }


@dataclass(kw_only=True)
class GripResult:
    """Outcome of closing or opening the gripper."""

    closed: bool  # True after grasp(), False after release()
    width: float  # distance between the fingers at the end, m
    holding: str | None = None  # object held between both fingers, if any
    contacts: dict[str, int] = field(default_factory=dict)  # object -> fingers touching it


class Arm(abc.ABC):
    """An arm with a parallel gripper, commanded in Cartesian space behind a safety envelope."""

    @abc.abstractmethod
    def move_to(self, pose: Pose, *, speed: float | None = None) -> MotionResult:
        """Moves in a straight line to an absolute pose; refuses targets outside the envelope."""

    @abc.abstractmethod
    def move_by(self, delta: np.ndarray, *, speed: float | None = None) -> MotionResult:
        """Moves by a relative offset (m), clipped into the envelope."""

    @abc.abstractmethod
    def grasp(self) -> GripResult:
        """Closes the gripper with its force limit until the fingers stop."""

    @abc.abstractmethod
    def release(self) -> GripResult:
        """Opens the gripper fully."""

    @abc.abstractmethod
    def joint_state(self) -> dict[str, np.ndarray]:
        """Measured joints: `arm.q_rad`, `arm.qd_rad_s`, `gripper.fingers_m`."""

    @abc.abstractmethod
    def ee_pose(self) -> Pose:
        """Measured end-effector pose."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Engages the e-stop: holds position and refuses motion until `reset_stop()`."""

    @abc.abstractmethod
    def reset_stop(self) -> None:
        """Releases the e-stop."""

    @property
    @abc.abstractmethod
    def is_stopped(self) -> bool:
        """Whether the e-stop is engaged (every motion is refused until `reset_stop()`)."""
