"""Event-camera emulation, DAVIS346 biases, bias feedback controllers and place recognition.

The package is NumPy-only at import time; the MuJoCo renderer of the evaluation scene lives in
`corrigible.sim_envs.backends.mujoco_route_renderer` and is imported lazily by the evaluation
(`corrigible.launch.evaluations.event_camera`) and the benchmark
(`corrigible.launch.benchmarks.event_emulator`), which live apart from this library.
"""

from __future__ import annotations

from corrigible.sim_envs.event_camera.biases import (
    BIAS_NAMES,
    PROPHESEE_ALIASES,
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
