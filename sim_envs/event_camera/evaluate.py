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

The configuration is `config/eval.yaml`; `load_eval_config` applies overrides on top of it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.sim_envs.event_camera.biases import DavisBiases
from corrigible.sim_envs.event_camera.controllers import (
    ControllersConfig,
    make_controller,
)
from corrigible.sim_envs.event_camera.emulator import EmulatorConfig, EventEmulator
from corrigible.sim_envs.event_camera.route import (
    LightingConfig,
    RouteConfig,
    Traversal,
    build_scene,
    traversal,
)
from corrigible.sim_envs.event_camera.vpr import (
    CountFrameAccumulator,
    VprConfig,
    patch_normalise,
    recall_at_n,
    sad_matrix,
)

RESULTS_VERSION = 2
REPEAT_SEED_STRIDE = 1000  # repeat r of a condition uses traversal seed  base + r * stride


@dataclass(kw_only=True)
class EvalConfig:
    """Everything the evaluation needs; mirrors `config/eval.yaml`."""

    render_fps: float = 50.0  # MuJoCo render rate, Hz
    emulate_fps: float = 100.0  # emulator frame rate, Hz (an integer multiple of render_fps)
    warmup_s: float = 6.0  # controller warm-up before each recorded traversal, s
    eval_route: str = "test"  # key of `routes` to evaluate on
    routes: dict[str, RouteConfig] = field(default_factory=dict)
    lighting: dict[str, LightingConfig] = field(default_factory=dict)
    reference_lighting: str = "high"  # lighting of the reference traversal
    conditions: list[str] = field(default_factory=lambda: ["low", "medium", "high", "changing"])
    traversal_seeds: dict[str, int] = field(default_factory=dict)  # "reference"/condition -> seed
    repeats: int = 5  # query traversals per condition (repeat r: seed + r * REPEAT_SEED_STRIDE)
    common_band: tuple[float, float] = (5e5, 2.5e6)  # events/s at 346x260, scored for everyone
    initial_biases_jaer: dict[str, tuple[int, int]] = field(default_factory=dict)  # jAER codes
    emulator: EmulatorConfig = field(default_factory=EmulatorConfig)
    controllers: ControllersConfig = field(default_factory=ControllersConfig)
    vpr: VprConfig = field(default_factory=VprConfig)
    cache_dir: str | None = None  # where rendered traversals are cached (None: no cache)
    workers: int = 2  # processes running controllers in parallel (fork; 1 = in-process)

    def __post_init__(self) -> None:
        self.routes = {
            k: v if isinstance(v, RouteConfig) else RouteConfig(name=k, **v)
            for k, v in self.routes.items()
        }
        self.lighting = {
            k: v if isinstance(v, LightingConfig) else LightingConfig(name=k, points=v)
            for k, v in self.lighting.items()
        }
        if isinstance(self.emulator, dict):
            self.emulator = EmulatorConfig(**self.emulator)
        if isinstance(self.controllers, dict):
            self.controllers = ControllersConfig(**self.controllers)
        if isinstance(self.vpr, dict):
            self.vpr = VprConfig(**self.vpr)
        self.initial_biases_jaer = {
            k: (int(v[0]), int(v[1])) for k, v in self.initial_biases_jaer.items()
        }
        self.common_band = (float(self.common_band[0]), float(self.common_band[1]))
        if self.eval_route not in self.routes:
            raise UnknownNameError(
                f"eval_route={self.eval_route!r} is not in routes {sorted(self.routes)}."
                + did_you_mean(self.eval_route, self.routes)
            )
        for name in [self.reference_lighting, *self.conditions]:
            if name not in self.lighting:
                raise UnknownNameError(
                    f"lighting condition {name!r} is not defined; define it under `lighting` "
                    f"(have {sorted(self.lighting)})." + did_you_mean(name, self.lighting)
                )
        ratio = self.emulate_fps / self.render_fps
        if not (self.render_fps > 0 and ratio >= 1 and abs(ratio - round(ratio)) < 1e-9):
            raise ConfigError(
                f"emulate_fps={self.emulate_fps!r} must be a positive integer multiple of "
                f"render_fps={self.render_fps!r}."
            )
        window_frames = self.controllers.window_s * self.emulate_fps
        if abs(window_frames - round(window_frames)) > 1e-6:
            raise ConfigError(
                f"controllers.window_s={self.controllers.window_s} s must hold a whole number of "
                f"emulator frames at emulate_fps={self.emulate_fps}."
            )
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ConfigError(f"workers={self.workers!r} must be an int >= 1.")
        if not (isinstance(self.repeats, int) and 1 <= self.repeats < REPEAT_SEED_STRIDE):
            raise ConfigError(f"repeats={self.repeats!r} must be an int in 1..999.")
        if not self.warmup_s >= 0:
            raise ConfigError(f"warmup_s={self.warmup_s!r} must be >= 0 s.")
        if not 0 < self.common_band[0] < self.common_band[1]:
            raise ConfigError(f"common_band={self.common_band!r} must satisfy 0 < low < high.")
        DavisBiases.from_jaer(self.initial_biases_jaer or None)  # validates the codes


def _deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def default_config_path() -> Path:
    """The shipped `config/eval.yaml`."""
    return Path(str(resources.files("corrigible.sim_envs.event_camera") / "config" / "eval.yaml"))


def load_eval_config(
    path: str | Path | None = None,
    *,
    quick: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> EvalConfig:
    """Reads the eval YAML (the shipped one by default), applies `quick:` and overrides.

    Args:
        path: a YAML file with the same layout as `config/eval.yaml`; keys it leaves out keep
            the shipped values.
        quick: also apply the file's `quick:` section (a small version for smoke tests).
        overrides: nested dict applied last.
    """
    raw = yaml.safe_load(default_config_path().read_text())
    if path is not None:
        user = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path} must hold a YAML mapping, got {type(user).__name__}.")
        _deep_update(raw, user)
    quick_section = raw.pop("quick", {}) or {}
    if quick:
        _deep_update(raw, quick_section)
    if overrides:
        _deep_update(raw, overrides)
    raw.pop("version", None)
    known = set(EvalConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown eval config keys {unknown}; known keys are {sorted(known)}."
            + did_you_mean(unknown[0], known)
        )
    return EvalConfig(**raw)


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
    cfg: EvalConfig,
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


def _run_shared(args: tuple[EvalConfig, str, LightingConfig]) -> RunResult:
    cfg, kind, light = args
    return run_controller(cfg, kind, _SHARED_FRAMES[0], light)


def _run_all(
    cfg: EvalConfig, kinds: list[str], frames: np.ndarray, light: LightingConfig
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


def _positions(trav: Traversal, t_s: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t_s, trav.t_s, trav.xyz[:, i]) for i in range(2)], axis=1)


def _in_band(rates: np.ndarray, band: tuple[float, float]) -> float:
    return float(np.mean((rates >= band[0]) & (rates <= band[1]))) if len(rates) else math.nan


# ----------------------------------------------------------------------------------- evaluation
def traversal_plan(cfg: EvalConfig) -> list[tuple[str, int, int]]:
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


def run_eval(cfg: EvalConfig, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs the whole evaluation and returns the JSON-able results (schema in the README)."""
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
    for tname, rep, seed in plan:
        trav = traversal(route, scene, seed=seed, fps=cfg.render_fps)
        t0 = time.perf_counter()
        frames = render_traversal(route, trav, width=width, height=height, cache_dir=cfg.cache_dir)
        timing["render_s"] += time.perf_counter() - t0
        frames = frames.astype(np.float32)  # once per traversal, shared by all controllers
        light = cfg.lighting[cfg.reference_lighting if tname == "reference" else tname]
        label = tname if tname == "reference" else f"{tname} {rep + 1}/{cfg.repeats}"
        log(
            f"[{label}] {len(frames)} frames rendered ({trav.t_s[-1]:.1f} s, lighting "
            f"{light.name}, seed {seed})"
        )
        t0 = time.perf_counter()
        runs = _run_all(cfg, kinds, frames, light)
        timing["emulate_s"] += time.perf_counter() - t0
        for kind in kinds:
            run = runs[kind]
            emulated_frames += (len(frames) - 1) * int(round(cfg.emulate_fps / cfg.render_fps))
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
        "config": _jsonable(asdict(cfg)),
    }
    res["acceptance"] = acceptance(res)
    return res


def acceptance(
    res: Mapping[str, Any],
    *,
    controller: str = "fast_slow",
    baseline: str = "default",
    min_in_band: float = 0.9,
) -> dict[str, Any] | None:
    """The issue's acceptance on pooled figures, or None when either controller was not run.

    In band: the controller's share of control windows inside the common band, over every
    window of every condition and repeat, must reach `min_in_band` and exceed the baseline's
    (per-condition shares are reported beside it). Recall: its pooled Recall@1 must be at least
    the baseline's in every condition, compared as counts of correct queries.
    """
    results = res["results"]
    if controller not in results or baseline not in results:
        return None
    conds = list(res["conditions"])
    in_band = res["summary"][controller]["in_common_band"]
    base_in_band = res["summary"][baseline]["in_common_band"]
    recall = {}
    for c in conds:
        ours, theirs = results[controller][c], results[baseline][c]
        same_queries = ours["n_queries"] == theirs["n_queries"] and "correct@1" in ours
        met = (
            ours["correct@1"] >= theirs["correct@1"]
            if same_queries
            else ours["recall@1"] >= theirs["recall@1"]
        )
        recall[c] = {
            "value": ours["recall@1"],
            "baseline": theirs["recall@1"],
            "correct": ours.get("correct@1"),
            "baseline_correct": theirs.get("correct@1"),
            "n_queries": ours["n_queries"],
            "met": bool(met),
        }
    band_met = bool(in_band >= min_in_band and in_band > base_in_band)
    return {
        "controller": controller,
        "baseline": baseline,
        "repeats": res.get("repeats", 1),
        "in_band": {
            "value": in_band,
            "baseline": base_in_band,
            "threshold": min_in_band,
            "by_condition": {c: results[controller][c]["in_common_band"] for c in conds},
            "met": band_met,
        },
        "recall@1": recall,
        "met": band_met and all(r["met"] for r in recall.values()),
    }


def format_acceptance(acc: Mapping[str, Any] | None) -> list[str]:
    """The acceptance as printed lines ("MET"/"NOT MET" with the figures behind it)."""
    if acc is None:
        return ["acceptance: not checked (needs the fast_slow and default controllers)"]
    band = acc["in_band"]
    by_cond = ", ".join(f"{c} {v:.2f}" for c, v in band["by_condition"].items())
    lines = [
        f"acceptance ({acc['controller']} vs {acc['baseline']}, pooled over "
        f"{acc['repeats']} repeat(s) per condition):",
        f"  in common band {band['value']:.3f} (>= {band['threshold']:.2f} and > "
        f"{acc['baseline']} {band['baseline']:.3f}): {'met' if band['met'] else 'NOT met'}"
        f"  [{by_cond}]",
    ]
    for c, r in acc["recall@1"].items():
        counts = (
            f" ({r['correct']} vs {r['baseline_correct']} of {r['n_queries']})"
            if r["correct"] is not None
            else ""
        )
        lines.append(
            f"  Recall@1 {c}: {r['value']:.3f} vs {r['baseline']:.3f}{counts}: "
            f"{'met' if r['met'] else 'NOT met'}"
        )
    lines.append(f"  overall: {'MET' if acc['met'] else 'NOT MET'}")
    return lines


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def format_table(res: Mapping[str, Any]) -> str:
    """A plain-text table: one row per controller, columns per condition."""
    conds = res["conditions"]
    lines = []
    head = f"{'controller':<11s} " + " ".join(f"{c + ' R@1/R@5':>17s}" for c in conds)
    head += f" {'in-own':>7s} {'in-common':>9s}"
    lines.append(head)
    lines.append("-" * len(head))
    for kind in res["controllers"]:
        row = f"{kind:<11s} "
        for c in conds:
            e = res["results"][kind][c]
            row += f"{e['recall@1']:>8.3f}/{e.get('recall@5', math.nan):<8.3f}"
        s = res["summary"][kind]
        row += f" {s['in_own_band']:>7.3f} {s['in_common_band']:>9.3f}"
        lines.append(row)
    lines.append("")
    lines.append("in-band fraction per condition (own band / common band):")
    for kind in res["controllers"]:
        parts = [
            f"{c}: {res['results'][kind][c]['in_own_band']:.2f}/"
            f"{res['results'][kind][c]['in_common_band']:.2f}"
            for c in conds
        ]
        lines.append(f"  {kind:<11s} " + "  ".join(parts))
    if res.get("repeats", 1) > 1:
        lines.append("")
        lines.append("Recall@1 per repeat (queries correct of each traversal):")
        for kind in res["controllers"]:
            parts = [
                f"{c}: " + " ".join(str(e["correct@1"]) for e in res["results"][kind][c]["repeats"])
                for c in conds
            ]
            lines.append(f"  {kind:<11s} " + "  ".join(parts))
    lines.append("")
    lines.extend(format_acceptance(res.get("acceptance")))
    return "\n".join(lines)


def plot_results(res: Mapping[str, Any], path: str | Path) -> Path:
    """Writes a PNG: rate traces under changing light, Recall@1 bars, in-band bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = res["conditions"]
    kinds = res["controllers"]
    trace_cond = "changing" if "changing" in conds else conds[-1]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    ax = axes[0]
    lo, hi = res["bands"]["common"]
    ax.axhspan(lo, hi, color="0.9", label="common band")
    for kind in kinds:
        tr = res["traces"][kind][trace_cond][0]  # the first repeat
        ax.plot(tr["t_s"], tr["rate_hz"], label=kind, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("events/s")
    ax.set_title(f"event rate, '{trace_cond}' lighting (repeat 1)")
    ax.legend(fontsize=8)
    width = 0.8 / max(1, len(kinds))
    x = np.arange(len(conds))
    for i, kind in enumerate(kinds):
        axes[1].bar(
            x + i * width, [res["results"][kind][c]["recall@1"] for c in conds], width, label=kind
        )
        axes[2].bar(
            x + i * width,
            [res["results"][kind][c]["in_common_band"] for c in conds],
            width,
            label=kind,
        )
    for ax, title in ((axes[1], "Recall@1"), (axes[2], "fraction of windows in common band")):
        ax.set_xticks(x + 0.4 - width / 2, conds)
        ax.set_ylim(0, 1)
        ax.set_title(title)
    fig.suptitle(f"event-camera bias control, route '{res['route']}'")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(res: Mapping[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Writes the JSON results and the PNG plot beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    png = plot_results(res, out.with_suffix(".png"))
    return out, png
