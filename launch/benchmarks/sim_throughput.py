"""`corrigible bench sim`: simulation throughput per backend, one JSON row each.

Fixed settings (documented in sim_envs/README.md): physics timestep 2 ms, 25 physics steps per
`env.step` (control at 20 Hz), default layout seed 0 (3 blocks, 3 bowls, drawer).

- `raw_steps_per_s`: bare physics steps per second (`Backend.step`, no control or observation).
- `env_steps_per_s`: `env.step` calls per second in state-only mode with JSONL tracing on.
- `ratio`: wall time of N `env.step` calls over the wall time of N x 25 bare physics steps, both
  measured in interleaved blocks in the same process so machine noise hits both alike; the
  goal is <= 1.15. The median over blocks is reported.
- `render_fps`: RGB + depth renders per second at 320x240, measured apart from stepping.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.sim_envs.backends.registry import BACKENDS
from corrigible.sim_envs.scene_spec import CameraSpec


def _bench_backend(engine: str, blocks: int, steps_per_block: int, renders: int) -> dict[str, Any]:
    from corrigible.sim_envs.tabletop_env import TabletopEnv

    with tempfile.TemporaryDirectory() as tmp:
        env = TabletopEnv(
            engine, obs_mode="state", trace_path=Path(tmp) / "trace.jsonl", max_episode_steps=10**9
        )
        env.reset(seed=0)
        backend = env.backend
        substeps = env.scene.physics.substeps
        rng = np.random.default_rng(0)
        t = np.arange(steps_per_block)
        # A smooth, in-workspace motion: small circles with the gripper open.
        actions = np.stack(
            [
                0.3 * np.sin(t / 10),
                0.3 * np.cos(t / 10),
                0.05 * rng.standard_normal(len(t)),
                -np.ones(len(t)),
            ],
            axis=1,
        ).astype(np.float32)
        env_times, raw_times = [], []
        for _ in range(blocks):
            t0 = time.perf_counter()
            for a in actions:
                env.step(a)
            env_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(steps_per_block):
                backend.step(substeps)
            raw_times.append(time.perf_counter() - t0)
        ratios = [e / r for e, r in zip(env_times, raw_times, strict=True)]
        cam = CameraSpec(width=320, height=240)
        backend.render(cam)  # warm-up (creates the renderer)
        t0 = time.perf_counter()
        for _ in range(renders):
            backend.render(cam)
        render_s = time.perf_counter() - t0
        env.close()
    n = steps_per_block
    return {
        "benchmark": "sim",
        "backend": engine,
        "physics_timestep_s": 0.002,
        "substeps_per_env_step": substeps,
        "control_hz": 1.0 / (0.002 * substeps),
        "raw_steps_per_s": n * substeps / statistics.median(raw_times),
        "env_steps_per_s": n / statistics.median(env_times),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "blocks": blocks,
        "env_steps_per_block": n,
        "render_fps": renders / render_s,
        "render_size": [320, 240],
        "tracing": True,
        "obs_mode": "state",
    }


def run_bench(quick: bool = False) -> Iterator[dict[str, Any]]:
    """One row per backend."""
    for engine in BACKENDS.names():
        yield _bench_backend(
            engine,
            blocks=3 if quick else 7,
            steps_per_block=40 if quick else 200,
            renders=5 if quick else 40,
        )
