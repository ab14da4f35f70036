"""`corrigible bench perception`: camera perception against ground truth, per engine.

Layouts: 12 seeds per engine (3 when quick) of 5 blocks and 3 bowls, plus seeds with same-colour
block/cylinder pairs in three sizes. Rows report detection recall and precision (by name: colour
and kind must both be right), and position error (xy and z, cm) of correctly named detections.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from corrigible.sim_envs.backends.registry import BACKENDS


def run_bench(quick: bool = False) -> Iterator[dict[str, Any]]:
    """One row per engine."""
    from corrigible.policies.perception import PerceptionConfig, detect_objects
    from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
    from corrigible.sim_envs.scene_spec import CameraSpec
    from corrigible.sim_envs.tabletop_env import TabletopEnv

    cfg = PerceptionConfig()
    camera = CameraSpec(width=cfg.width, height=cfg.height)
    shapes = [
        ObjectRequest(kind="block", color="red"),
        ObjectRequest(kind="cylinder", color="red"),
        ObjectRequest(kind="block", color="blue", size_class="small"),
        ObjectRequest(kind="cylinder", color="blue", size_class="large"),
        ObjectRequest(kind="bowl", color="green"),
    ]
    layouts = [LayoutConfig(n_blocks=5, n_bowls=3)] * (2 if quick else 8) + [
        LayoutConfig(objects=shapes)
    ] * (1 if quick else 4)
    for engine in BACKENDS.names():
        truth_n = found_ok = found_n = 0
        xy_err, z_err, times = [], [], []
        for seed, layout in enumerate(layouts):
            env = TabletopEnv(engine, layout=layout, camera=camera)
            obs, info = env.reset(seed=seed)
            t0 = time.perf_counter()
            dets = detect_objects(
                obs["rgb"], obs["depth"], obs["camera.intrinsics"], obs["camera.pose"], cfg
            )
            times.append(time.perf_counter() - t0)
            truth = {n: v["pos"] for n, v in info["objects"].items()}
            truth_n += len(truth)
            found_n += len(dets)
            for d in dets:
                if d.name in truth:
                    found_ok += 1
                    xy_err.append(float(np.linalg.norm(d.position[:2] - truth[d.name][:2])))
                    if not d.name.endswith("bowl"):
                        z_err.append(abs(float(d.position[2] - truth[d.name][2])))
            env.close()
        xy = np.array(xy_err) * 100
        yield {
            "benchmark": "perception",
            "backend": engine,
            "image": [cfg.width, cfg.height],
            "layouts": len(layouts),
            "objects": truth_n,
            "recall": found_ok / truth_n,
            "precision": found_ok / max(found_n, 1),
            "xy_error_cm_mean": float(xy.mean()),
            "xy_error_cm_p95": float(np.percentile(xy, 95)),
            "xy_error_cm_max": float(xy.max()),
            "z_error_cm_mean": float(np.mean(z_err) * 100),
            "detect_ms_mean": float(np.mean(times) * 1000),
        }
