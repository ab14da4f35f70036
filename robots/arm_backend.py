"""`ArmBackend`: exactly what `SimArm` needs from a physics engine, as a structural protocol.

`robots` sits below `sim_envs` and never imports it. The engine backends in
`sim_envs.backends` (and their `SceneSpec`) satisfy these protocols by shape, without naming
them, so the arm logic is written once here and any engine that steps a Panda can drive it.
Members are read-only properties so that frozen dataclasses (`RobotSpec`, `PhysicsSpec`) and
plain attributes both conform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


class ArmDescription(Protocol):
    """The robot description fields `SimArm` reads (`sim_envs.scene_spec.RobotSpec` has them)."""

    @property
    def urdf(self) -> str:
        """URDF path relative to pybullet_data, e.g. `franka_panda/panda.urdf`."""

    @property
    def ee_link(self) -> str:
        """Name of the URDF link whose pose is controlled (between the fingertips)."""

    @property
    def home_q(self) -> Sequence[float]:
        """Home joint angles of the seven arm joints, rad."""

    @property
    def finger_max_opening(self) -> float:
        """Widest opening of each finger, m."""


class ArmTiming(Protocol):
    """The integration settings `SimArm` reads (`sim_envs.scene_spec.PhysicsSpec` has them)."""

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""

    @property
    def control_dt(self) -> float:
        """Simulated seconds per control step, s."""


class ArmScene(Protocol):
    """The part of a built scene `SimArm` reads (`sim_envs.scene_spec.SceneSpec` has it)."""

    @property
    def robot(self) -> ArmDescription:
        """The arm's description."""

    @property
    def physics(self) -> ArmTiming:
        """Integration settings."""


@runtime_checkable
class ArmBackend(Protocol):
    """A physics engine holding a built scene with a Panda in it (`sim_envs.backends.Backend`)."""

    @property
    def scene(self) -> ArmScene:
        """The scene the engine built."""

    @property
    def time(self) -> float:
        """Simulated seconds since the last reset, s."""

    def step(self, n: int) -> None:
        """Advances physics by `n` physics steps."""

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (arm q [7] rad, arm qd [7] rad/s, finger q [2] m)."""

    def set_arm_targets(self, q: np.ndarray) -> None:
        """Sets the joint-servo targets of the seven arm joints, rad."""

    def set_finger_target(self, opening: float) -> None:
        """Sets both fingers' position target, m from closed."""

    def finger_contacts(self) -> dict[str, int]:
        """Returns object name -> how many fingers (0-2) touch it now."""
