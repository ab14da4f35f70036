"""`RecordingConfig`: how a session's episodes are sampled into a LeRobot dataset."""

from __future__ import annotations

from pydantic import Field, field_validator

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError

# s of control per arm tick (sim_envs.tabletop_env v0: 20 Hz); frames are taken every N ticks.
CONTROL_DT_S = 0.05


class RecordingConfig(StrictConfig):
    """What a recorder samples and keeps (one dataset has one config: LeRobot needs one fps).

    The frame rate must divide the arm's 20 Hz control rate, so that every frame is taken right
    after a control tick and timestamps are exact multiples of 1/fps (LeRobot checks delta
    timestamps against 1/fps).
    """

    fps: int = Field(default=10, ge=1, le=20)  # Hz, frames per second of simulated time
    image_width: int = Field(default=128, ge=16, le=640)  # px, camera frame width
    image_height: int = Field(default=96, ge=16, le=480)  # px, camera frame height
    # s of frames before each correction flagged `correction.precedes` (YAY drops them: they
    # show the behaviour the person corrected); 0 flags none
    precede_window_s: float = Field(default=2.0, ge=0.0, le=60.0, allow_inf_nan=False)
    camera: str = "front"  # name of the scene camera to render (sim_envs.scene_spec.CameraSpec)
    robot_type: str = "panda"  # info.json robot_type

    @field_validator("fps")
    @classmethod
    def _divides_control_rate(cls, value: int) -> int:
        ticks = 1.0 / (value * CONTROL_DT_S)
        if abs(ticks - round(ticks)) > 1e-9:
            rates = [f for f in range(1, 21) if abs(1 / (f * CONTROL_DT_S) % 1) < 1e-9]
            raise ConfigError(
                f"RecordingConfig.fps must divide the 20 Hz control rate so frames fall on "
                f"control ticks; got {value}; use one of {rates}"
            )
        return value

    @property
    def ticks_per_frame(self) -> int:
        """Control ticks between two frames."""
        return round(1.0 / (self.fps * CONTROL_DT_S))


__all__ = ["CONTROL_DT_S", "RecordingConfig"]
