"""Closed-loop evaluation of bias controllers on event-based place recognition.

For one route (`eval_route`, by default "test", which was not used for tuning):

1. Render traversals with MuJoCo at `render_fps`: one reference traversal and `repeats` query
   traversals per lighting condition (the paper's repeated iterations), each with its own
   seeded wobble of speed, lateral offset and yaw. Lighting is applied afterwards as a gain on
   linear intensity, so a condition never needs a new render.
2. For every controller, run the emulator over each traversal at `emulate_fps` (frames
   linearly interpolated between renders) with the controller in the loop: every control
   window (0.3 s) the window's event rate goes to the controller, which rewrites biases that
   the emulator applies from the next frame. A warm-up (`warmup_s` of the same traversal under
   its initial lighting) precedes each recorded traversal so that the adaptive controllers
   start from biases they chose, as on a robot whose camera was already running; the pixel
   state (not the biases) is then reset, and warm-up windows are not scored.
3. Score the fraction of control windows whose rate lies inside the controller's own band
   and inside the common band, and Recall@N of query windows against the reference traversal
   recorded with the same controller (reference lighting "high" by default). A condition's
   figures pool every window and every query of its repeats: one traversal decides a
   one-query difference by chance (see the README), several do not.
4. Check the issue's acceptance on those pooled figures (`acceptance` in the JSON).

This module is the loop. The configuration (`event_camera.yaml`, validated by the pydantic model
in `config_event_camera`) and the report (acceptance, table, plot, files, in
`report_event_camera`) sit beside it; the emulator, biases, controllers, route and place
recognition it drives are the library in `corrigible.sim_envs.event_camera`.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import ConfigError
from corrigible.launch.distributed import (
    Job,
    RunnerConfig,
    Worker,
    raise_if_lost,
    resolve,
    run_jobs,
    share,
)
from corrigible.launch.evaluations.config_event_camera import (
    REPEAT_SEED_STRIDE,
    EventCameraEvalConfig,
)
from corrigible.launch.evaluations.report_event_camera import acceptance
from corrigible.sim_envs.event_camera.biases import DavisBiases
from corrigible.sim_envs.event_camera.controllers import make_controller
from corrigible.sim_envs.event_camera.emulator import EventEmulator
from corrigible.sim_envs.event_camera.route import (
    LightingConfig,
    RouteConfig,
    Traversal,
    build_scene,
    traversal,
)
from corrigible.sim_envs.event_camera.vpr import (
    CountFrameAccumulator,
    patch_normalise,
    recall_at_n,
    sad_matrix,
)

RESULTS_VERSION = 2  # layout version of the results JSON (schema in the event_camera README)


# ------------------------------------------------------------------------------------ rendering
def render_traversal(
    route: RouteConfig, trav: Traversal, *, width: int, height: int, cache_dir: str | None
) -> np.ndarray:
    """Renders (or loads from the cache) a traversal's uint8 grayscale frames."""
    key = hashlib.sha1(
        json.dumps(
            [asdict(route), trav.t_s.tolist()[:3], len(trav.t_s), trav.xyz[::50].round(6).tolist()],
            sort_keys=True,
        ).encode()
        + f"{width}x{height}".encode()
    ).hexdigest()[:16]
    path = Path(cache_dir) / f"route_{route.name}_{key}.npy" if cache_dir else None
    if path is not None and path.exists():
        return np.load(path)
    from corrigible.sim_envs.backends.mujoco_route_renderer import MujocoRouteRenderer

    with MujocoRouteRenderer(build_scene(route), width=width, height=height) as renderer:
        frames = renderer.render_traversal(trav)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, frames)
        tmp.replace(path)
    return frames


# ------------------------------------------------------------------------------------ emulation
@dataclass
class RunResult:
    """One controller on one traversal."""

    rates_hz: np.ndarray  # (n_windows,) event rate per control window
    window_t_s: np.ndarray  # (n_windows,) window end times
    refr_fine: np.ndarray  # (n_windows,) RefrBp fine in force during the window
    prsf_fine: np.ndarray  # (n_windows,) PrSFBp fine in force during the window
    onbn_fine: np.ndarray  # (n_windows,) OnBn fine in force during the window
    count_frames: np.ndarray  # (n_vpr_windows, 2, cy, cx) pooled ON/OFF counts
    vpr_t_s: np.ndarray  # (n_vpr_windows,) centre times
    final_biases: DavisBiases
    slow_steps: int
    n_events: int


def _frame_at(frames: np.ndarray, k: int, j: int, gain: float, out: np.ndarray) -> np.ndarray:
    """Emulator frame j: renders i = j // k and i + 1 blended linearly, times the light gain."""
    i, r = divmod(j, k)
    if r == 0 or i + 1 >= len(frames):
        return np.multiply(frames[min(i, len(frames) - 1)], gain, out=out)
    a = r / k
    np.multiply(frames[i], (1.0 - a) * gain, out=out)
    out += frames[i + 1] * (a * gain)
    return out


def run_controller(
    cfg: EventCameraEvalConfig,
    kind: str,
    frames: np.ndarray,
    lighting: LightingConfig,
    *,
    warm_biases: DavisBiases | None = None,
) -> RunResult:
    """Runs the emulator with one controller in the loop over a rendered traversal.

    Args:
        cfg: evaluation config.
        kind: controller name.
        frames: (n, h, w) float32 linear-intensity frames (DN) at `cfg.render_fps`.
        lighting: gain profile over the traversal's time.
        warm_biases: start from these biases instead of the initial ones (skips nothing else).
    """
    k = int(round(cfg.emulate_fps / cfg.render_fps))
    dt = 1.0 / cfg.emulate_fps
    n_emu = (len(frames) - 1) * k + 1
    duration = (n_emu - 1) * dt
    height, width = frames.shape[1:]
    nominal = DavisBiases.from_jaer(cfg.initial_biases_jaer or None)
    biases = (warm_biases or nominal).copy()
    controller = make_controller(kind, cfg.controllers, nominal, n_pixels=width * height)
    emulator = EventEmulator(cfg.emulator, biases)
    per_window = int(round(cfg.controllers.window_s * cfg.emulate_fps))
    buf = np.empty((height, width), np.float32)
    frames = frames.astype(np.float32, copy=False)

    def run(
        n_frames: int, t_offset: float, gain_of: Callable[[float], float], acc: Any
    ) -> list[tuple[float, float, int, int, int]]:
        windows = []
        count = 0  # events in the window (scored)
        seen = 0  # events after the hold-off (what the controller measures)
        skip = 0  # frames at the start of this window left out of its rate (hold-off)
        emulator.reset(_frame_at(frames, k, 0, gain_of(0.0), buf), t_offset)
        for j in range(1, n_frames):
            t = j * dt
            events = emulator.emulate(_frame_at(frames, k, j, gain_of(t), buf), t_offset + t)
            count += len(events)
            if (j - 1) % per_window >= skip:
                seen += len(events)
            if acc is not None:
                acc.add(events)
            if j % per_window == 0:
                rate = count / cfg.controllers.window_s
                windows.append(
                    (t, rate, biases["RefrBp"].fine, biases["PrSFBp"].fine, biases["OnBn"].fine)
                )
                measured = seen / (cfg.controllers.window_s * (per_window - skip) / per_window)
                count = seen = 0
                controller.on_window(measured, biases)
                emulator.set_biases(biases)
                # The controller's hold-off, in whole frames (events of frame j lie in
                # (t_{j-1}, t_j], so skipping the first `skip` frames ignores skip * dt).
                skip = min(per_window - 1, int(round(controller.ignore_s / dt)))
        return windows

    if cfg.warmup_s > 0:
        n_warm = min(n_emu, int(round(cfg.warmup_s / dt)) + 1)
        g0 = float(lighting.gain(0.0))
        run(n_warm, -1e3, lambda t: g0, None)  # separate time base; nothing is scored
    acc = CountFrameAccumulator(cfg.vpr, width=width, height=height, duration_s=duration)
    windows = run(n_emu, 0.0, lambda t: float(lighting.gain(t)), acc)
    arr = np.array(windows, dtype=np.float64).reshape(-1, 5)
    slow = getattr(controller, "slow", controller)
    return RunResult(
        rates_hz=arr[:, 1],
        window_t_s=arr[:, 0],
        refr_fine=arr[:, 2].astype(int),
        prsf_fine=arr[:, 3].astype(int),
        onbn_fine=arr[:, 4].astype(int),
        count_frames=acc.frames(),
        vpr_t_s=acc.window_centers_s(),
        final_biases=biases.copy(),
        slow_steps=int(getattr(slow, "steps_taken", 0)),
        n_events=int(arr[:, 1].sum() * cfg.controllers.window_s),
    )


# Frames of the traversal being emulated, set before forking workers so that they inherit them
# copy-on-write instead of receiving ~0.4 GB each through a pipe.
_SHARED_FRAMES: list[np.ndarray] = []


def _run_shared(args: tuple[EventCameraEvalConfig, str, LightingConfig]) -> RunResult:
    cfg, kind, light = args
    return run_controller(cfg, kind, _SHARED_FRAMES[0], light)


def _run_all(
    cfg: EventCameraEvalConfig, kinds: list[str], frames: np.ndarray, light: LightingConfig
) -> dict[str, RunResult]:
    """Runs every controller on one traversal, in `cfg.workers` forked processes if > 1."""
    workers = min(cfg.workers, len(kinds))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return {kind: run_controller(cfg, kind, frames, light) for kind in kinds}
    _SHARED_FRAMES[:] = [frames]
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            runs = pool.map(_run_shared, [(cfg, kind, light) for kind in kinds], chunksize=1)
    finally:
        _SHARED_FRAMES.clear()
    return dict(zip(kinds, runs, strict=True))


class ControllerWorker(Worker):
    """A Ray worker of `run_eval`: runs one controller over one traversal's shared frames."""

    def run(
        self, job: tuple[EventCameraEvalConfig, str, Any, LightingConfig]
    ) -> Iterator[RunResult]:
        """One (controller, traversal) job: its `RunResult`."""
        cfg, kind, frames, light = job
        yield run_controller(cfg, kind, resolve(frames), light)


def _emulate_distributed(
    cfg: EventCameraEvalConfig,
    plan: list[tuple[str, int, int]],
    kinds: list[str],
    runner: RunnerConfig,
    timing: dict[str, float],
    log: Callable[[str], None],
    partial: Path | None,
) -> tuple[dict[tuple[str, int], dict[str, RunResult]], dict[tuple[str, int], int]]:
    """Every (traversal, controller) run as a Ray job; (runs, frame counts) per traversal.

    Traversals are rendered here, one at a time as workers need the next job, and each is put
    once in the object store for all its controllers. The runs equal `_run_all`'s.

    Raises:
        BackendError: a run failed on every retry.
    """
    route = cfg.routes[cfg.eval_route]
    scene = build_scene(route)
    n_frames: dict[tuple[str, int], int] = {}

    def jobs() -> Iterator[Job]:
        for tname, rep, seed in plan:
            trav = traversal(route, scene, seed=seed, fps=cfg.render_fps)
            t0 = time.perf_counter()
            frames = render_traversal(
                route, trav, width=cfg.emulator.width, height=cfg.emulator.height,
                cache_dir=cfg.cache_dir,
            )  # fmt: skip
            timing["render_s"] += time.perf_counter() - t0
            n_frames[(tname, rep)] = len(frames)
            handle = share(frames)  # uint8; run_controller converts as the serial path does
            light = cfg.lighting[cfg.reference_lighting if tname == "reference" else tname]
            for kind in kinds:
                yield Job(f"{tname}/{rep}/{kind}", (cfg, kind, handle, light))

    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")

    def arrived(job: Job, run: RunResult) -> None:
        log(f"  done: {job.key} ({run.n_events} events)")
        if partial is not None:
            tname, rep, kind = job.key.split("/")
            line = {
                "traversal": tname,
                "repeat": int(rep),
                "controller": kind,
                "n_events": run.n_events,
                "n_windows": len(run.rates_hz),
                "mean_rate_hz": float(np.mean(run.rates_hz)) if len(run.rates_hz) else None,
            }
            with partial.open("a") as fh:
                fh.write(json.dumps(line) + "\n")

    t0 = time.perf_counter()
    report = run_jobs(f"{__name__}:ControllerWorker", jobs(), runner=runner, on_item=arrived)
    timing["emulate_s"] += time.perf_counter() - t0 - timing["render_s"]
    for attempt in report.retries:
        log(f"  retried {attempt.key} (attempt {attempt.attempt}): {attempt.error}")
    raise_if_lost(report, what="controller runs")
    timing["workers"] = report.workers
    runs: dict[tuple[str, int], dict[str, RunResult]] = {}
    for key, items in report.items.items():
        tname, rep, kind = key.split("/")
        runs.setdefault((tname, int(rep)), {})[kind] = items[0]
    return runs, n_frames


def _positions(trav: Traversal, t_s: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t_s, trav.t_s, trav.xyz[:, i]) for i in range(2)], axis=1)


def _in_band(rates: np.ndarray, band: tuple[float, float]) -> float:
    return float(np.mean((rates >= band[0]) & (rates <= band[1]))) if len(rates) else math.nan


# ----------------------------------------------------------------------------------- evaluation
def traversal_plan(cfg: EventCameraEvalConfig) -> list[tuple[str, int, int]]:
    """(traversal name, repeat, seed) of every traversal: the reference once, conditions x repeats.

    Raises:
        ConfigError: when two traversals would share a seed (a query identical to another).
    """
    names = ["reference", *cfg.conditions]
    plan = []
    for index, tname in enumerate(names):
        base = cfg.traversal_seeds.get(tname, 1000 + index)
        for rep in range(1 if tname == "reference" else cfg.repeats):
            plan.append((tname, rep, int(base) + rep * REPEAT_SEED_STRIDE))
    seeds = [seed for _, _, seed in plan]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"traversal_seeds {cfg.traversal_seeds} with repeats={cfg.repeats} give two "
            f"traversals the same seed (repeat r adds r * {REPEAT_SEED_STRIDE}); choose seeds "
            "further apart."
        )
    return plan


def _pool_repeats(per_repeat: list[dict[str, Any]], rates: list[np.ndarray], bands: Any) -> dict:
    """One condition's figures over all its repeats: every window and every query counts once."""
    own, common = bands
    all_rates = np.concatenate(rates)
    pooled: dict[str, Any] = {
        "in_own_band": _in_band(all_rates, own),
        "in_common_band": _in_band(all_rates, common),
        "mean_rate_hz": float(np.mean(all_rates)),
        "median_rate_hz": float(np.median(all_rates)),
        "n_windows": int(len(all_rates)),
        "n_events": int(sum(e["n_events"] for e in per_repeat)),
        "slow_steps": int(sum(e["slow_steps"] for e in per_repeat)),
        "final_biases_jaer": per_repeat[-1]["final_biases_jaer"],
    }
    if "n_queries" in per_repeat[0]:
        n_queries = sum(e["n_queries"] for e in per_repeat)
        pooled["n_queries"] = n_queries
        for key in [k for k in per_repeat[0] if k.startswith("correct@")]:
            n = key.split("@")[1]
            correct = sum(e[key] for e in per_repeat)
            pooled[key] = correct
            pooled[f"recall@{n}"] = correct / n_queries if n_queries else math.nan
        pooled["repeats"] = per_repeat
    else:
        pooled.update({k: per_repeat[0][k] for k in ("seed",)})
    return pooled


def run_eval(
    cfg: EventCameraEvalConfig,
    *,
    log: Callable[[str], None] = print,
    runner: RunnerConfig | None = None,
    partial: Path | None = None,
) -> dict[str, Any]:
    """Runs the whole evaluation and returns the JSON-able results (schema in the README).

    Args:
        cfg: the evaluation.
        log: where progress lines go.
        runner: None or serial: each traversal's controllers in `cfg.workers` forked processes;
            Ray: every (traversal, controller) run as a Ray job (`_emulate_distributed`).
        partial: with Ray, each finished run's figures go there as a JSON line.
    """
    t_start = time.perf_counter()
    route = cfg.routes[cfg.eval_route]
    scene = build_scene(route)
    width, height = cfg.emulator.width, cfg.emulator.height
    n_pixels = width * height
    scale = n_pixels / (346 * 260)
    common = (cfg.common_band[0] * scale, cfg.common_band[1] * scale)
    nominal = DavisBiases.from_jaer(cfg.initial_biases_jaer or None)
    kinds = list(cfg.controllers.enabled)
    bands = {"common": list(common)}
    for kind in kinds:
        band = make_controller(kind, cfg.controllers, nominal, n_pixels=n_pixels).band()
        bands[kind] = list(band) if band is not None else list(common)

    timing = {"render_s": 0.0, "emulate_s": 0.0, "vpr_s": 0.0}
    plan = traversal_plan(cfg)
    per_repeat: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in kinds}
    rates: dict[str, dict[str, list[np.ndarray]]] = {kind: {} for kind in kinds}
    traces: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in kinds}
    ref_features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    emulated_frames = 0
    distributed = runner is not None and runner.uses_ray
    if distributed:
        assert runner is not None
        all_runs, n_frames = _emulate_distributed(cfg, plan, kinds, runner, timing, log, partial)
    for tname, rep, seed in plan:
        trav = traversal(route, scene, seed=seed, fps=cfg.render_fps)
        light = cfg.lighting[cfg.reference_lighting if tname == "reference" else tname]
        label = tname if tname == "reference" else f"{tname} {rep + 1}/{cfg.repeats}"
        if distributed:
            runs, frame_count = all_runs[(tname, rep)], n_frames[(tname, rep)]
            log(f"[{label}] {frame_count} frames ({trav.t_s[-1]:.1f} s, lighting {light.name})")
        else:
            t0 = time.perf_counter()
            frames = render_traversal(
                route, trav, width=width, height=height, cache_dir=cfg.cache_dir
            )
            timing["render_s"] += time.perf_counter() - t0
            frames = frames.astype(np.float32)  # once per traversal, shared by all controllers
            frame_count = len(frames)
            log(
                f"[{label}] {len(frames)} frames rendered ({trav.t_s[-1]:.1f} s, lighting "
                f"{light.name}, seed {seed})"
            )
            t0 = time.perf_counter()
            runs = _run_all(cfg, kinds, frames, light)
            timing["emulate_s"] += time.perf_counter() - t0
        for kind in kinds:
            run = runs[kind]
            emulated_frames += (frame_count - 1) * int(round(cfg.emulate_fps / cfg.render_fps))
            t0 = time.perf_counter()
            feats = patch_normalise(run.count_frames, cfg.vpr.patch)
            xy = _positions(trav, run.vpr_t_s)
            entry: dict[str, Any] = {
                "seed": seed,
                "in_own_band": _in_band(run.rates_hz, tuple(bands[kind])),
                "in_common_band": _in_band(run.rates_hz, common),
                "mean_rate_hz": float(np.mean(run.rates_hz)),
                "median_rate_hz": float(np.median(run.rates_hz)),
                "n_windows": len(run.rates_hz),
                "n_events": run.n_events,
                "slow_steps": run.slow_steps,
                "final_biases_jaer": {n: list(v) for n, v in run.final_biases.as_jaer().items()},
            }
            if tname == "reference":
                ref_features[kind] = (feats, xy)
            else:
                ref_feats, ref_xy = ref_features[kind]
                dist = sad_matrix(feats, ref_feats)
                recall = recall_at_n(
                    dist, xy, ref_xy, tolerance_m=cfg.vpr.tolerance_m, ns=cfg.vpr.recall_at
                )
                entry.update({f"recall@{n}": r for n, r in recall.items()})
                entry.update({f"correct@{n}": int(round(r * len(xy))) for n, r in recall.items()})
                entry["n_queries"] = len(xy)
            timing["vpr_s"] += time.perf_counter() - t0
            per_repeat[kind].setdefault(tname, []).append(entry)
            rates[kind].setdefault(tname, []).append(run.rates_hz)
            traces[kind].setdefault(tname, []).append(
                {
                    "t_s": run.window_t_s.round(3).tolist(),
                    "rate_hz": run.rates_hz.round(1).tolist(),
                    "refr_fine": run.refr_fine.tolist(),
                    "prsfbp_fine": run.prsf_fine.tolist(),
                    "onbn_fine": run.onbn_fine.tolist(),
                }
            )
            recall_txt = (
                f" R@1 {entry['recall@1']:.3f} R@5 {entry.get('recall@5', math.nan):.3f}"
                if "recall@1" in entry
                else ""
            )
            log(
                f"  {kind:<11s} in-own {entry['in_own_band']:.2f} in-common "
                f"{entry['in_common_band']:.2f} mean {entry['mean_rate_hz']:.3g} ev/s{recall_txt}"
            )
    results: dict[str, dict[str, Any]] = {
        kind: {
            tname: _pool_repeats(
                per_repeat[kind][tname], rates[kind][tname], (tuple(bands[kind]), common)
            )
            for tname in per_repeat[kind]
        }
        for kind in kinds
    }
    summary = {}
    for kind in kinds:
        rates_all = np.concatenate([r for c in cfg.conditions for r in rates[kind][c]])
        summary[kind] = {
            "in_own_band": _in_band(rates_all, tuple(bands[kind])),
            "in_common_band": _in_band(rates_all, common),
            "mean_recall@1": float(np.mean([results[kind][c]["recall@1"] for c in cfg.conditions])),
            "mean_recall@5": float(
                np.mean([results[kind][c].get("recall@5", math.nan) for c in cfg.conditions])
            ),
        }
    timing["total_s"] = time.perf_counter() - t_start
    timing["emulated_frames"] = emulated_frames
    # Wall-clock throughput of the whole closed loop (emulator, controller, binning) summed
    # over the worker processes; the emulator alone is measured by `corrigible bench events`.
    timing["closed_loop_frames_per_s"] = emulated_frames / max(timing["emulate_s"], 1e-9)
    if not distributed:  # on Ray, `_emulate_distributed` set the actors it used
        timing["workers"] = cfg.workers
    res: dict[str, Any] = {
        "version": RESULTS_VERSION,
        "route": cfg.eval_route,
        "conditions": list(cfg.conditions),
        "repeats": cfg.repeats,
        "reference_lighting": cfg.reference_lighting,
        "controllers": kinds,
        "bands": bands,
        "results": results,
        "summary": summary,
        "traces": traces,
        "timing": timing,
        "config": cfg.model_dump(mode="json"),
    }
    res["acceptance"] = acceptance(res)
    return res
