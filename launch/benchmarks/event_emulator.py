"""`corrigible bench events`: emulator throughput at 346x260 on a fixed rendered clip.

The clip (version 1) is rendered once with MuJoCo and cached: route "bench" of the textured
street (seed 5, the eval's camera geometry, no speed wobble), 346x260 grayscale, 320 frames at
100 Hz (3.2 s), linear-intensity gain 1.0 for frames 0-159 and 0.25 from frame 160 on (a
brightness step). Two speeds: `bench_clip_v1` at 1.5 m/s (the reference clip) and
`bench_clip_v1_fast` at 3 m/s (about twice the events, like the evaluation's bright phases).
Emulator settings: `EmulatorConfig()` defaults and the eval's initial biases
(`launch/evaluations/event_camera.yaml`). Rendering is excluded from the timing: the clip is
converted to float32 first and only `EventEmulator.emulate` calls are timed, best of `_REPEATS`
passes.

Rows (one JSON object per clip):
* `emulator`: frames_per_s (wall), cpu_frames_per_s (process CPU time, less sensitive to other
  jobs on the machine), events_per_s (events produced per wall second), events_per_frame,
  sim_event_rate_hz (events per second of clip time).
* `render`: MuJoCo frames_per_s for a clip, for context (measured only when the clip is
  not cached yet).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.sim_envs.event_camera.biases import DavisBiases
from corrigible.sim_envs.event_camera.emulator import EmulatorConfig, EventEmulator
from corrigible.sim_envs.event_camera.route import RouteConfig, build_scene, traversal

CLIP_VERSION = 1
CLIP_FRAMES = 320  # frames in the clip
CLIP_FPS = 100.0  # clip frame rate, Hz
CLIP_STEP_FRAME = 160  # first frame after the brightness step
CLIP_GAINS = (1.0, 0.25)  # linear-intensity gain before / after the step
_QUICK_FRAMES = 100  # frames timed with quick=True
_REPEATS = 3  # timed passes; the fastest is reported


def _cache_dir() -> Path:
    root = os.environ.get("CORRIGIBLE_CACHE", str(Path.home() / ".cache" / "corrigible"))
    return Path(root) / "events"


CLIP_SPEEDS_MPS: dict[str, float] = {"": 1.5, "_fast": 3.0}  # clip name suffix -> speed


def bench_route(speed_mps: float = 1.5) -> RouteConfig:
    """The route the bench clip is rendered on."""
    return RouteConfig(
        name="bench", seed=5, length_m=4.0 * speed_mps, speed_mps=speed_mps, speed_jitter=0.0
    )


def clip_name(suffix: str = "") -> str:
    """File stem of a bench clip, e.g. `bench_clip_v1`."""
    return f"bench_clip_v{CLIP_VERSION}{suffix}"


def load_clip(suffix: str = "") -> tuple[np.ndarray, float | None]:
    """Returns a bench clip (320, 260, 346) as float32 DN with the brightness step applied.

    Args:
        suffix: "" for the reference clip (1.5 m/s) or "_fast" (3 m/s).

    Returns:
        The clip and the MuJoCo render rate in frames/s (None when it came from the cache).
    """
    path = _cache_dir() / f"{clip_name(suffix)}.npy"
    render_fps = None
    if path.exists():
        gray = np.load(path)
    else:
        from corrigible.sim_envs.backends.mujoco_route_renderer import MujocoRouteRenderer

        route = bench_route(CLIP_SPEEDS_MPS[suffix])
        trav = traversal(route, build_scene(route), seed=0, fps=CLIP_FPS)
        if len(trav.t_s) < CLIP_FRAMES:
            raise RuntimeError("bench route too short for the clip")  # pragma: no cover
        t0 = time.perf_counter()
        with MujocoRouteRenderer(build_scene(route)) as renderer:
            gray = np.stack(
                [
                    renderer.render_gray(trav.xyz[i], float(trav.yaw[i]), trav.pitch)
                    for i in range(CLIP_FRAMES)
                ]
            )
        render_fps = CLIP_FRAMES / (time.perf_counter() - t0)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, gray)
        tmp.replace(path)
    gains = np.where(np.arange(CLIP_FRAMES) < CLIP_STEP_FRAME, *CLIP_GAINS).astype(np.float32)
    return gray.astype(np.float32) * gains[:, None, None], render_fps


def _eval_initial_biases() -> DavisBiases:
    from corrigible.launch.evaluations.config_event_camera import load_eval_config

    return DavisBiases.from_jaer(load_eval_config().initial_biases_jaer or None)


def time_emulator(
    clip: np.ndarray, biases: DavisBiases, *, fps: float = CLIP_FPS, repeats: int = _REPEATS
) -> dict[str, float]:
    """Times `EventEmulator.emulate` alone over a clip; returns the best of `repeats` passes."""
    height, width = clip.shape[1:]
    best: dict[str, float] | None = None
    for _ in range(repeats):
        emulator = EventEmulator(EmulatorConfig(width=width, height=height), biases)
        emulator.emulate(clip[0], 0.0)  # initialises the pixels; produces no events
        n_events = 0
        w0, c0 = time.perf_counter(), time.process_time()
        for i in range(1, len(clip)):
            n_events += len(emulator.emulate(clip[i], i / fps))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        n = len(clip) - 1
        row = {
            "frames_per_s": n / wall,
            "cpu_frames_per_s": n / cpu,
            "events_per_s": n_events / wall,
            "events_per_frame": n_events / n,
            "sim_event_rate_hz": n_events / (n / fps),
            "wall_s": wall,
        }
        if best is None or row["frames_per_s"] > best["frames_per_s"]:
            best = row
    assert best is not None
    return best


def run_bench(quick: bool = False) -> Iterator[dict[str, Any]]:
    """Yields the benchmark rows (see the module docstring)."""
    biases = _eval_initial_biases()
    for suffix, speed in CLIP_SPEEDS_MPS.items():
        clip, render_fps = load_clip(suffix)
        if quick:
            clip = clip[:_QUICK_FRAMES]
        result = time_emulator(clip, biases)
        yield {
            "bench": "events",
            "what": "emulator",
            "clip": clip_name(suffix),
            "camera_speed_mps": speed,
            "width": clip.shape[2],
            "height": clip.shape[1],
            "frames": len(clip),
            "clip_fps": CLIP_FPS,
            "brightness_step": {"frame": CLIP_STEP_FRAME, "gains": list(CLIP_GAINS)},
            "biases_jaer": {n: list(v) for n, v in biases.as_jaer().items()},
            "timing": "emulator only; clip pre-rendered and cached, float32 conversion untimed",
            "repeats": _REPEATS,
            **{k: round(v, 3) for k, v in result.items()},
            "cpu_count": os.cpu_count(),
        }
        if render_fps is not None:
            yield {
                "bench": "events",
                "what": "render",
                "clip": clip_name(suffix),
                "width": clip.shape[2],
                "height": clip.shape[1],
                "frames": CLIP_FRAMES,
                "frames_per_s": round(render_fps, 2),
                "timing": "MuJoCo offscreen (MUJOCO_GL=egl) render + grayscale, first run only",
            }
