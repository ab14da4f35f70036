"""The `Backend` protocol: the only surface through which corrigible touches a physics engine.

Tasks, robots and skills see this class and nothing else, so every behaviour above it (IK,
safety, skills, predicates) is written once and runs on both engines. `robots` sits below this
package and sees a backend through its own `robots.arm_backend.ArmBackend` protocol, which this
class satisfies by shape. A backend builds a
`SceneSpec`, steps physics, drives joint servos and reports state; it contains no task logic.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from corrigible.sim_envs.scene_spec import CameraSpec, SceneSpec


class Backend(abc.ABC):
    """A physics engine holding one built scene.

    Subclasses set `engine` (the registry name) and implement the abstract members.
    """

    engine: ClassVar[str]  # registry name, e.g. "mujoco"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "engine", None) and not getattr(cls, "__abstractmethods__", None):
            raise TypeError(f"{cls.__name__} must set the class attribute `engine`")

    def __init__(self, scene: SceneSpec) -> None:
        self.scene = scene
        self._closed = False

    # -- state ---------------------------------------------------------------------------
    @abc.abstractmethod
    def reset(self) -> None:
        """Puts every body back where the scene description places it, arm at home."""

    @abc.abstractmethod
    def step(self, n: int) -> None:
        """Advances physics by `n` steps of `scene.physics.timestep` seconds."""

    @abc.abstractmethod
    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Returns (arm q [7] rad, arm qd [7] rad/s, finger q [2] m)."""

    @abc.abstractmethod
    def object_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Returns name -> (position [3] m, quaternion (w, x, y, z)) of every free object."""

    @abc.abstractmethod
    def set_object_pose(self, name: str, pos: np.ndarray, quat: np.ndarray) -> None:
        """Puts a free object at `pos` (m) with quaternion (w, x, y, z), at rest.

        For evaluation only (fault injection: an object knocked over mid-program); skills
        never teleport anything.
        """

    @abc.abstractmethod
    def articulation_positions(self) -> dict[str, float]:
        """Returns name -> joint position (m) of every articulated object (drawers)."""

    # -- commands ------------------------------------------------------------------------
    @abc.abstractmethod
    def set_arm_targets(self, q: np.ndarray) -> None:
        """Sets the joint-servo targets of the seven arm joints, rad."""

    @abc.abstractmethod
    def set_finger_target(self, opening: float) -> None:
        """Sets both fingers' position target (m from closed); force is limited by the spec."""

    # -- sensing -------------------------------------------------------------------------
    @abc.abstractmethod
    def finger_contacts(self) -> dict[str, int]:
        """Returns object name -> how many fingers (0-2) touch it now."""

    @abc.abstractmethod
    def render(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
        """Renders on the CPU: (RGB uint8 [H, W, 3], metric depth float32 [H, W] m)."""

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated seconds since the last reset."""
        return self._steps * self.scene.physics.timestep

    _steps: int = 0

    def close(self) -> None:
        """Releases the engine; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    @abc.abstractmethod
    def _close(self) -> None:
        """Engine-specific release, called once."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
