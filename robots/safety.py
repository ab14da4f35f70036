"""The safety envelope: workspace bounds, a speed limit and an e-stop, checked inside the arm.

Absolute targets outside the envelope are refused before any motion. Relative commands (nudges
and `env.step` deltas) are clipped into it, and the command actually applied is returned.
Non-finite targets, offsets and speeds are refused. The speed limit holds on the measured
motion, not only on the commanded path: `SimArm` checks the measured end-effector speed inside
every control tick against `max_speed` and slows or stops the servo target (see
`robots/README.md`, "Safety envelope").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corrigible.errors import ConfigError, SafetyError


@dataclass(frozen=True, kw_only=True)
class SafetyConfig:
    """Limits enforced on every arm command."""

    x_range: tuple[float, float] = (0.20, 0.80)  # m, end-effector x in the world
    y_range: tuple[float, float] = (-0.62, 0.45)  # m, end-effector y in the world
    z_range: tuple[float, float] = (0.012, 0.60)  # m, end-effector (fingertip centre) height
    max_speed: float = 0.6  # m/s, Cartesian speed limit of the end effector
    max_step: float = 0.03  # m, largest relative move one control step may command
    # m/s, how far the measured speed (end-effector travel over one control tick / tick length)
    # may exceed max_speed: the servo's overshoot after the governor stops it mid-tick
    speed_tolerance: float = 0.05
    # m, farthest the joint-servo target may lead the measured end effector; a blocked arm
    # cannot wind up a longer catch-up than this
    max_lead: float = 0.08
    # rad/s, fastest any joint's servo target may move (the Panda is rated 2.2-2.6 rad/s);
    # motion at the skills' speeds moves them at most 1.3 rad/s
    max_joint_speed: float = 2.0

    def __post_init__(self) -> None:
        for name in ("x_range", "y_range", "z_range"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ConfigError(
                    f"SafetyConfig.{name} must be (low, high) with low < high, got {(lo, hi)}"
                )
        for name in ("max_speed", "max_step", "max_lead", "max_joint_speed"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"SafetyConfig.{name} must be a finite number > 0, got {value}")
        if not (np.isfinite(self.speed_tolerance) and self.speed_tolerance >= 0):
            raise ConfigError(
                f"SafetyConfig.speed_tolerance must be a finite number >= 0 m/s, "
                f"got {self.speed_tolerance}"
            )

    @property
    def low(self) -> np.ndarray:
        """Lower corner of the workspace box, m."""
        return np.array([self.x_range[0], self.y_range[0], self.z_range[0]])

    @property
    def high(self) -> np.ndarray:
        """Upper corner of the workspace box, m."""
        return np.array([self.x_range[1], self.y_range[1], self.z_range[1]])


class SafetyEnvelope:
    """Checks and clips commands against a `SafetyConfig` and holds the e-stop latch."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self._low, self._high = self.config.low, self.config.high
        self.estopped = False

    def contains(self, pos: np.ndarray, tol: float = 1e-9) -> bool:
        """True when `pos` lies inside the workspace box."""
        return bool(np.all(pos >= self._low - tol) and np.all(pos <= self._high + tol))

    @staticmethod
    def check_finite(what: str, values: np.ndarray) -> np.ndarray:
        """`values` as 3 floats; raises SafetyError for NaN or infinite entries (no motion made)."""
        values = np.asarray(values, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(values)):
            raise SafetyError(
                f"{what} must be 3 finite numbers in metres, got {values.tolist()}; "
                "no motion was made."
            )
        return values

    def check_target(self, pos: np.ndarray) -> None:
        """Raises SafetyError when an absolute target lies outside the workspace."""
        pos = self.check_finite("a target position", pos)
        if not self.contains(pos):
            axes = [
                f"{axis}={v:.3f} not in [{lo:.3f}, {hi:.3f}]"
                for axis, v, lo, hi in zip("xyz", pos, self._low, self._high, strict=True)
                if not lo - 1e-9 <= v <= hi + 1e-9
            ]
            raise SafetyError(
                f"target {np.round(pos, 3).tolist()} is outside the safety envelope "
                f"({'; '.join(axes)}); no motion was made. Choose a target inside the workspace."
            )

    def clip_point(self, pos: np.ndarray) -> np.ndarray:
        """The nearest point of the workspace box."""
        return np.clip(pos, self._low, self._high)

    def clip_move(
        self, current: np.ndarray, delta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """A relative move kept inside the box: (target, delta applied, whether it was clipped).

        `delta` must already be finite (`check_finite`); every arm clips `move_by` this way.
        """
        target = self.clip_point(current + delta)
        applied = target - current
        return target, applied, not np.allclose(applied, delta, atol=1e-9)

    def clip_step(self, current: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """The delta actually applied for one control step: length-limited, then kept inside."""
        delta = np.asarray(delta, dtype=np.float64)
        norm = float(np.linalg.norm(delta))
        if norm > self.config.max_step:
            delta = delta * (self.config.max_step / norm)
        return self.clip_point(current + delta) - current

    def clip_speed(self, speed: float) -> float:
        """The speed actually used: positive and at most the limit (NaN and <= 0 refused)."""
        speed = float(speed)
        if not speed > 0:  # also NaN
            raise SafetyError(f"speed must be a number > 0 m/s, got {speed}; no motion was made")
        return min(speed, self.config.max_speed)

    def tick_budget(self, dt: float) -> float:
        """How far the measured end effector may travel in one control tick of `dt` s, m."""
        return self.config.max_speed * dt
