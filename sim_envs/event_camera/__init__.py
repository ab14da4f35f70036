"""Event-camera emulation, DAVIS346 biases, bias feedback controllers and a place-recognition eval.

The package is NumPy-only at import time; the MuJoCo renderer of the evaluation scene lives in
`corrigible.sim_envs.backends.mujoco_route_renderer` and is imported lazily by `evaluate` and
`bench`.
"""

from __future__ import annotations

from corrigible.sim_envs.event_camera.biases import (
    BIAS_NAMES,
    PROPHESEE_ALIASES,
    BiasRangeError,
    CoarseFine,
    DavisBiases,
    PixelParams,
    jaer_to_libcaer_coarse,
    libcaer_to_jaer_coarse,
    pixel_params,
)
from corrigible.sim_envs.event_camera.emulator import (
    EmulatorConfig,
    EventEmulator,
    emulate_video,
    iter_video_frames,
)
from corrigible.sim_envs.event_camera.events_io import EVENT_DTYPE, read_events, write_events

__all__ = [
    "BIAS_NAMES",
    "EVENT_DTYPE",
    "PROPHESEE_ALIASES",
    "BiasRangeError",
    "CoarseFine",
    "DavisBiases",
    "EmulatorConfig",
    "EventEmulator",
    "PixelParams",
    "emulate_video",
    "iter_video_frames",
    "jaer_to_libcaer_coarse",
    "libcaer_to_jaer_coarse",
    "pixel_params",
    "read_events",
    "write_events",
]
