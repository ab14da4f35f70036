"""A vectorised NumPy port of the v2e DVS pixel model, driven by DAVIS346 biases.

Per pixel and per frame (all pixels at once):

1. `lin_log`: linear below `lin_log_dn` DN, natural log above (v2e), so dark pixels respond to
   absolute rather than relative changes and the log does not blow up at zero. (Computed
   offset by the constant ln(lin_log_dn), which no difference the model takes can see.)
2. Photoreceptor low-pass whose corner falls with brightness: `tau = 1/(2 pi f_c inten01)`
   with `inten01 = (DN + 20)/275` as in v2e. v2e uses `eps = dt/tau` clipped to 1; here the
   exact zero-order-hold form `eps = 1 - exp(-dt/tau)` is used, which equals v2e's for small
   steps and stays stable when the frame interval is longer than the time constant.
3. Optional high-pass (`bias_hpf`): the memorised level relaxes towards the signal.
4. Leak: the memorised level drifts down (ON leak events at `leak_rate_hz` per pixel, with a
   lognormal per-pixel spread and a fixed per-pixel jitter).
5. Events: `n = floor(|lp - base| / theta_pixel)` with per-pixel ON/OFF thresholds drawn once
   from N(theta, sigma) (clamped to `min_thres`); the level then moves by `n * theta`.
6. Sub-frame timestamps as v2e: the k-th event of every pixel in a frame (k = 1..n) gets
   `t_prev + k * dt / (N + 1)` where N is the largest count of any pixel in that frame, so
   several events per pixel per frame are spread strictly inside the frame interval.
7. Refractory period: an event is dropped when less than `refractory_s` has passed since the
   pixel's last emitted event (across frames too). As in v2e the level still moves for a
   dropped event. Because one pixel's events in a frame are evenly spaced, the survivors are
   computed in closed form (first survivor and stride) instead of looping over sub-steps.
8. Shot noise: v2e's per-pixel rate `(rate/2) dt ((0.25 - 1) inten01 + 1) theta_nom/theta_pix`
   for each polarity (higher in the dark and for low-threshold pixels), drawn by Poisson
   thinning so the cost scales with the number of noise events, not with the pixel count.
   The pixel's level resets to its current signal. Noise events bypass the refractory filter.

Bias changes take effect at the next frame: thresholds rescale the per-pixel arrays by
new/old (v2e), and the refractory period and cutoff are read from the new `PixelParams`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corrigible.errors import ConfigError
from corrigible.sim_envs.event_camera.biases import DavisBiases, PixelParams, pixel_params
from corrigible.sim_envs.event_camera.events_io import EVENT_DTYPE, empty_events


@dataclass(kw_only=True)
class EmulatorConfig:
    """Sensor geometry and the bias-independent noise parameters of the pixel model."""

    width: int = 346  # pixels
    height: int = 260  # pixels
    sigma_thres: float = 0.03  # per-pixel threshold mismatch, std in ln units (v2e default)
    min_thres: float = 0.01  # floor of any pixel threshold, ln units (v2e)
    lin_log_dn: float = 20.0  # DN below which lin_log is linear (v2e)
    leak_rate_hz: float = 0.1  # mean leak (ON) event rate per pixel, Hz (v2e constructor)
    leak_jitter_fraction: float = 0.1  # relative per-pixel spread of the leak rate (v2e)
    noise_rate_cov_decades: float = 0.1  # lognormal spread of per-pixel noise rates, decades
    shot_noise_rate_hz: float = 1.0  # shot noise events per pixel per second, both polarities
    seed: int = 0  # seeds mismatch, leak spread and shot noise

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value > 65535:
                raise ConfigError(f"{name}={value!r} must be an int in 1..65535 (uint16 x/y).")
        for name in (
            "sigma_thres",
            "leak_rate_hz",
            "leak_jitter_fraction",
            "noise_rate_cov_decades",
            "shot_noise_rate_hz",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}={value!r} must be a finite number >= 0; use 0 to off.")
        if not self.min_thres > 0:
            raise ConfigError(f"min_thres={self.min_thres!r} must be > 0 (v2e uses 0.01).")
        if not self.lin_log_dn > 0:
            raise ConfigError(f"lin_log_dn={self.lin_log_dn!r} must be > 0 DN (v2e uses 20).")


class EventEmulator:
    """Turns a stream of linear-intensity frames (DN, float or uint8) into DVS events.

    Call `emulate(frame, t_s)` once per frame in time order; the first call only initialises
    the pixel state and returns no events. Change biases at any time with `set_biases`.
    """

    def __init__(self, config: EmulatorConfig, biases: DavisBiases) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.seed)
        shape = (config.height, config.width)
        self._n_pixels = config.height * config.width
        self._params = pixel_params(biases)
        self.biases = biases.copy()
        rng = self._rng
        # Relative mismatch: theta_pixel = theta * mismatch, so a bias change rescales the
        # per-pixel array by new/old exactly as v2e does.
        self._mm_on = self._draw_mismatch(self._params.theta_on, shape)
        self._mm_off = self._draw_mismatch(self._params.theta_off, shape)
        noise_rate = 10.0 ** (config.noise_rate_cov_decades * rng.standard_normal(shape))
        jitter = 1.0 - config.leak_jitter_fraction * rng.standard_normal(shape)
        self._leak_weight = (noise_rate * np.clip(jitter, 0.0, None)).astype(np.float32)
        self._thr_on = np.empty(shape, np.float32)
        self._thr_off = np.empty(shape, np.float32)
        self._leak_per_s = np.empty(shape, np.float32)
        self._apply_params()
        self._lp = np.zeros(shape, np.float32)  # low-passed log intensity
        self._base = np.zeros(shape, np.float32)  # memorised level at the last event
        self._last_t = np.full(self._n_pixels, -np.inf)  # last emitted event time, s
        self._buf = [np.empty(shape, np.float32) for _ in range(4)]
        self._fire = np.empty(shape, bool), np.empty(shape, bool)
        self._t_prev: float | None = None
        self._slope = math.log(config.lin_log_dn) / config.lin_log_dn
        pixel = np.arange(self._n_pixels)
        self._x_of = (pixel % config.width).astype(np.uint16)  # pixel index -> column
        self._y_of = (pixel // config.width).astype(np.uint16)  # pixel index -> row

    # ----------------------------------------------------------------------------- parameters
    def _draw_mismatch(self, theta: float, shape: tuple[int, int]) -> np.ndarray:
        draws = theta + self.config.sigma_thres * self._rng.standard_normal(shape)
        return (np.maximum(draws, self.config.min_thres) / theta).astype(np.float32)

    def _apply_params(self) -> None:
        p = self._params
        np.multiply(self._mm_on, p.theta_on, out=self._thr_on)
        np.multiply(self._mm_off, p.theta_off, out=self._thr_off)
        np.maximum(self._thr_on, self.config.min_thres, out=self._thr_on)
        np.maximum(self._thr_off, self.config.min_thres, out=self._thr_off)
        # Leak is expressed in ON events per second, so it scales with the pixel's threshold.
        np.multiply(self._leak_weight, self._thr_on, out=self._leak_per_s)
        self._leak_per_s *= self.config.leak_rate_hz
        # Shot-noise acceptance weight theta_nom/theta_pixel (v2e), per polarity.
        self._shot_w_on = (p.theta_on / self._thr_on).ravel()
        self._shot_w_off = (p.theta_off / self._thr_off).ravel()
        self._neg_thr_off = -self._thr_off
        self._shot_w_max = float(max(self._shot_w_on.max(), self._shot_w_off.max()))

    @property
    def params(self) -> PixelParams:
        """The pixel parameters in force (derived from the current biases)."""
        return self._params

    def set_biases(self, biases: DavisBiases) -> PixelParams:
        """Applies new biases from the next frame on and returns the resulting pixel parameters.

        Raises:
            BiasRangeError: when the biases give no valid threshold (nothing changes then).
        """
        params = pixel_params(biases)
        self.biases = biases.copy()
        self._params = params
        self._apply_params()
        return params

    # ------------------------------------------------------------------------------ emulation
    def _lin_log(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        # v2e's lin_log plus the constant ln(lin_log_dn), computed without a mask:
        # slope * min(x, lin) + ln(max(x, lin)). The pixel model only ever uses differences of
        # this signal, so the constant offset changes nothing and saves a pass.
        lin = np.float32(self.config.lin_log_dn)
        scratch = self._buf[3]
        np.minimum(frame, lin, out=scratch)
        scratch *= np.float32(self._slope)
        np.maximum(frame, lin, out=out)
        np.log(out, out=out)
        out += scratch
        return out

    def reset(self, frame: np.ndarray, t_s: float) -> None:
        """Initialises the pixel state from a frame; the levels start at random phases.

        A random fraction of one ON threshold below the signal keeps the leak events of
        different pixels from firing in lock-step at the start.
        """
        frame = self._check_frame(frame)
        self._lin_log(frame, self._lp)
        u = self._rng.random(self._lp.shape, dtype=np.float32)
        np.subtract(self._lp, u * self._thr_on, out=self._base)
        self._last_t[:] = -np.inf
        self._t_prev = float(t_s)

    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        shape = (self.config.height, self.config.width)
        if frame.shape != shape:
            raise ConfigError(
                f"frame shape {frame.shape} does not match the sensor {shape} (height, width); "
                "resize frames or set EmulatorConfig.width/height."
            )
        return frame.astype(np.float32, copy=False)

    def emulate(self, frame: np.ndarray, t_s: float) -> np.ndarray:
        """Advances the pixels to time `t_s` seeing `frame` and returns the events, time-sorted.

        Args:
            frame: (height, width) linear intensity in DN (0..255 for 8-bit sources; larger
                values are allowed and simply brighter).
            t_s: frame time in seconds, strictly increasing.

        Returns:
            Events of `EVENT_DTYPE`, all with `t_prev < t < t_s` (integer microseconds).
        """
        if self._t_prev is None:
            self.reset(frame, t_s)
            return empty_events()
        frame = self._check_frame(frame)
        t0 = self._t_prev
        dt = float(t_s) - t0
        if not dt > 0:
            raise ConfigError(f"frame time {t_s} s is not after the previous frame time {t0} s.")
        p = self._params
        logx, tmp, diff = self._buf[:3]
        self._lin_log(frame, logx)

        # inten01 = (DN + 20)/275 (v2e), clipped to [0, 1] so over-bright pixels cannot speed
        # the photoreceptor beyond its corner.
        if p.cutoff_hz > 0:
            k = -dt * 2.0 * math.pi * p.cutoff_hz / 275.0
            np.add(frame, 20.0, out=tmp)
            np.minimum(tmp, 275.0, out=tmp)
            tmp *= np.float32(k)
            np.exp(tmp, out=tmp)  # 1 - eps (float32 exp is vectorised; expm1 is not)
            np.subtract(logx, self._lp, out=diff)  # x - lp
            diff *= tmp  # (1 - eps)(x - lp)
            np.subtract(logx, diff, out=self._lp)  # lp + eps (x - lp)
        else:
            self._lp[...] = logx
        base = self._base
        if p.hpf_hz > 0:
            np.subtract(self._lp, base, out=tmp)
            tmp *= -math.expm1(-2.0 * math.pi * p.hpf_hz * dt)
            base += tmp
        if self.config.leak_rate_hz > 0:
            np.multiply(self._leak_per_s, dt, out=tmp)
            base -= tmp

        np.subtract(self._lp, base, out=diff)
        # Dense test of every pixel against its own thresholds; the counting then runs on the
        # pixels that fire only.
        fire_on, fire_off = self._fire
        np.greater_equal(diff, self._thr_on, out=fire_on)
        np.less_equal(diff, self._neg_thr_off, out=fire_off)
        np.logical_or(fire_on, fire_off, out=fire_on)
        cand = np.flatnonzero(fire_on)
        cols = self._threshold_events(cand, diff, t0, dt)
        noise = self._shot_noise(frame, t0, dt)
        self._t_prev = float(t_s)
        if noise is not None:
            cols = _merge_sorted(cols, noise)
        return _pack(cols)

    def _threshold_events(
        self, cand: np.ndarray, diff: np.ndarray, t0: float, dt: float
    ) -> _Columns:
        if len(cand) == 0:
            return _EMPTY
        d = diff.ravel()[cand]
        pol = d > 0
        thr = np.where(pol, self._thr_on.ravel()[cand], self._thr_off.ravel()[cand])
        # |d| >= thr for every candidate, so truncation is the floor and n >= 1 (float32
        # rounding of the ratio could give 0.99999; clamp to 1 as the dense test decided).
        n = np.maximum((np.abs(d) / thr).astype(np.int64), 1)
        step_level = n * thr
        base = self._base.ravel()
        base[cand] += np.where(pol, step_level, -step_level)
        idx = cand

        n_max = int(n.max())
        step = dt / (n_max + 1)  # sub-frame spacing shared by all pixels this frame (v2e)
        refr = self._params.refractory_s
        if refr > 0:
            gap = t0 - self._last_t[idx]  # time since last emitted event at the frame start
            first = np.ceil((refr - gap) / step - 1e-9)  # -inf where the pixel never fired
            np.clip(first, 1, n_max + 1, out=first)
            first = first.astype(np.int64)
            stride = max(1, math.ceil(refr / step - 1e-9))
        else:
            first = np.ones_like(n)
            stride = 1
        n_pass = np.maximum((n - first) // stride + 1, 0)
        keep = n_pass > 0
        if not keep.all():
            idx, n_pass, first, pol = idx[keep], n_pass[keep], first[keep], pol[keep]
        if len(idx) == 0:
            return _EMPTY
        last_rank = first + (n_pass - 1) * stride
        self._last_t[idx] = t0 + last_rank * step

        total = int(n_pass.sum())
        if n_max == 1 or (stride == 1 and (first == 1).all() and (n_pass == 1).all()):
            owner = np.arange(len(idx))  # one event per pixel: already in rank order
            rank = first
        else:
            owner = np.repeat(np.arange(len(idx)), n_pass)
            starts = np.cumsum(n_pass) - n_pass
            within = np.arange(total) - starts[owner]
            rank = first[owner] + within * stride
            # Rank order is time order; a stable radix sort on small integers is cheap.
            order = np.argsort(rank.astype(np.int16) if n_max < 32000 else rank, kind="stable")
            owner, rank = owner[order], rank[order]
        pix = idx[owner]
        t_of_rank = self._to_us(t0 + np.arange(n_max + 2) * step, t0, dt)  # tiny lookup table
        return t_of_rank[rank], self._x_of[pix], self._y_of[pix], pol[owner].view(np.uint8)

    def _to_us(self, t_s: np.ndarray | float, t0: float, dt: float) -> np.ndarray:
        # Integer microseconds, kept strictly inside the frame interval so that a consumer
        # binning by frame never sees an event on a frame boundary.
        lo = math.floor(t0 * 1e6) + 1
        hi = math.ceil((t0 + dt) * 1e6) - 1
        return np.clip(np.rint(np.asarray(t_s) * 1e6).astype(np.int64), lo, max(lo, hi))

    def _shot_noise(self, frame: np.ndarray, t0: float, dt: float) -> _Columns | None:
        rate = self.config.shot_noise_rate_hz
        if rate <= 0:
            return None
        rng = self._rng
        # Both polarities at once by Poisson thinning: candidates at the bound rate for either
        # polarity, a fair coin for the polarity, then acceptance by the exact v2e probability.
        w_max = self._shot_w_max
        m = rng.poisson(rate * dt * w_max * self._n_pixels)  # (rate/2) per polarity, two of them
        if m == 0:
            return None
        cand = rng.integers(0, self._n_pixels, size=m)
        pol = rng.random(m) < 0.5
        weight = np.where(pol, self._shot_w_on[cand], self._shot_w_off[cand])
        inten01 = np.clip((frame.ravel()[cand] + 20.0) / 275.0, 0.0, 1.0)
        accept = rng.random(m) < (1.0 - 0.75 * inten01) * weight / w_max
        pix, first = np.unique(cand[accept], return_index=True)
        if len(pix) == 0:
            return None
        pol = pol[accept][first]
        self._base.ravel()[pix] = self._lp.ravel()[pix]
        t_us = self._to_us(t0 + dt * rng.random(len(pix)), t0, dt)
        order = np.argsort(t_us, kind="stable")
        pix = pix[order]
        return t_us[order], self._x_of[pix], self._y_of[pix], pol[order].view(np.uint8)


# Column form of events (t_us int64, x uint16, y uint16, p uint8), each sorted by time.
_Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_EMPTY: _Columns = (
    np.empty(0, np.int64),
    np.empty(0, np.uint16),
    np.empty(0, np.uint16),
    np.empty(0, np.uint8),
)


def _merge_sorted(a: _Columns, b: _Columns) -> _Columns:
    """Merges two time-sorted column sets (stable: `a` first on ties) without a full sort."""
    pos_a = np.arange(len(a[0])) + np.searchsorted(b[0], a[0], "left")
    pos_b = np.arange(len(b[0])) + np.searchsorted(a[0], b[0], "right")
    out = []
    for col_a, col_b in zip(a, b, strict=True):
        col = np.empty(len(col_a) + len(col_b), col_a.dtype)
        col[pos_a] = col_a
        col[pos_b] = col_b
        out.append(col)
    return out[0], out[1], out[2], out[3]


def _pack(cols: _Columns) -> np.ndarray:
    events = np.empty(len(cols[0]), dtype=EVENT_DTYPE)
    if len(events):
        events["t"], events["x"], events["y"], events["p"] = cols
    return events


def iter_video_frames(
    path: str | Path, *, width: int = 346, height: int = 260, fps: float | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """Reads a video file as (time s, grayscale float32 frame in DN) pairs for `emulate`.

    Frames are converted to grayscale and resized (area interpolation) to the sensor size.
    8-bit video is gamma-encoded; like v2e's default, the DN values are used as they are.

    Args:
        path: any file OpenCV can decode.
        width: sensor width to resize to, pixels.
        height: sensor height to resize to, pixels.
        fps: frame rate to assume; None reads it from the file.

    Raises:
        ConfigError: when the file cannot be opened or has no usable frame rate.
    """
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ConfigError(f"cannot open video {path}; check the path and that OpenCV decodes it.")
    try:
        rate = fps or capture.get(cv2.CAP_PROP_FPS)
        if not rate or rate <= 0:
            raise ConfigError(f"video {path} reports no frame rate; pass fps=... explicitly.")
        k = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            if gray.shape != (height, width):
                gray = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
            yield k / rate, gray.astype(np.float32)
            k += 1
    finally:
        capture.release()


def emulate_video(
    path: str | Path, emulator: EventEmulator, *, fps: float | None = None
) -> np.ndarray:
    """Runs a whole video file through an emulator and returns all events, time-sorted."""
    cfg = emulator.config
    parts = [
        emulator.emulate(frame, t)
        for t, frame in iter_video_frames(path, width=cfg.width, height=cfg.height, fps=fps)
    ]
    return np.concatenate(parts) if parts else empty_events()
