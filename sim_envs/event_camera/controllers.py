"""Bias feedback controllers: fixed biases, fast loop, slow loop, fast+slow, and jAER hysteresis.

Every controller sees one number per control window, the DVS event rate in events/s, and writes
biases through `DavisBiases.set`, so out-of-range writes raise instead of slipping through. Each
`on_window` call returns the writes that were actually applied (after clamping), so logs record
what the chip received rather than what the controller wished for.

* Fast loop (Nair, Milford, Fischer, IROS 2024): every window map the rate linearly onto a
  RefrBp fine code, `s = clamp(int(f_max - (f_max - f_min)(rate - lo)/(hi - lo)), f_min, f_max)`;
  a low rate gives a large code (short refractory period, more events). Optional (not the
  paper's): `gain` < 1 moves part of the way per window; `hold_band` is a dead band inside
  which the loop writes nothing after its first write.
* Slow loop: when the fast loop sits at a limit (within `saturation_margin` codes, or
  `saturation_margin_min` at fine_min; the paper uses 0) for `count_threshold` consecutive
  windows, step PrBp, PrSFBp (bandwidth) and OnBn, OffBn (thresholds) by `step` fine codes (or,
  with `step_ratio`, multiply or divide the codes by that ratio), clamped to each bias's limits,
  then pause the counting for `settle_windows` windows and ask the rate measurement to ignore
  the first `holdoff_s` of the next window (jAER's hold-off). Saturation is judged on the code
  the fast loop writes or, with `saturation_source: target`, on the code its proportional map
  asks for. Without a fast loop the slow loop counts windows whose rate lies outside the band
  instead.
* Hysteresis baseline (jAER DVSBiasController, Delbruck et al. CVPRW 2021): LOW/MEDIUM/HIGH
  states with a x`hysteresis` band, one tweak in [-1, 1] moved by `tweak_step` per command
  (commands at most every window). The tweak scales the chosen bias currents by
  `exp(tweak ln max_ratio)`.

Rate bands are given at 346x260 and scaled linearly with the pixel count.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.registry import Registry
from corrigible.sim_envs.event_camera.biases import (
    BIAS_NAMES,
    FINE_MAX,
    CoarseFine,
    DavisBiases,
)

DAVIS346_PIXELS = 346 * 260  # the resolution the published rate bands refer to


def _check_band(prefix: str, low: float, high: float) -> None:
    if not 0 < low < high:
        raise ConfigError(
            f"{prefix}: rate band ({low!r}, {high!r}) must satisfy 0 < rate_low < rate_high "
            "(events/s)."
        )


@dataclass(kw_only=True)
class FastLoopConfig:
    """Fast loop: event rate -> RefrBp fine code, once per window."""

    rate_low: float = 5e5  # events/s at 346x260 where the code reaches fine_max
    rate_high: float = 2.5e6  # events/s at 346x260 where the code reaches fine_min
    fine_min: int = 4  # RefrBp fine lower limit (longest refractory period)
    fine_max: int = 57  # RefrBp fine upper limit (shortest refractory period)
    # Fraction of the way from the last code to the mapped code moved per window (paper: 1.0,
    # purely proportional). Below 1 it damps the period-2 chatter a one-window-late
    # proportional loop shows when the rate is very sensitive to the code.
    gain: float = 1.0
    # RefrBp coarse range (jAER numbering) the loop writes once before its first fine code;
    # None keeps the initial coarse, as the paper does.
    coarse_jaer: int | None = None
    # RefrBp coarse range (jAER numbering) used instead of `coarse_jaer` while the slow loop
    # holds the pixel more sensitive than its initial biases (more up steps than down steps).
    # Only meaningful in fast_slow. None: always `coarse_jaer`.
    coarse_jaer_sensitized: int | None = None
    # Dead band (events/s at 346x260): after its first write the loop leaves RefrBp alone while
    # the window's rate lies inside [low, high]. None: write every window (the paper).
    hold_band: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        _check_band("fast", self.rate_low, self.rate_high)
        if self.hold_band is not None:
            if not (isinstance(self.hold_band, list | tuple) and len(self.hold_band) == 2):
                raise ConfigError(f"fast.hold_band={self.hold_band!r} must be [low, high] or null.")
            self.hold_band = (float(self.hold_band[0]), float(self.hold_band[1]))
            _check_band("fast.hold_band", *self.hold_band)
        for name in ("coarse_jaer", "coarse_jaer_sensitized"):
            value = getattr(self, name)
            if value is not None and value not in range(8):
                raise ConfigError(f"fast.{name}={value!r} must be None or 0..7.")
        if not 0 < self.gain <= 1:
            raise ConfigError(f"fast.gain={self.gain!r} must be in (0, 1]; 1 is the paper's loop.")
        if not 0 <= self.fine_min < self.fine_max <= FINE_MAX:
            raise ConfigError(
                f"fast.fine_min={self.fine_min!r}, fast.fine_max={self.fine_max!r} must satisfy "
                f"0 <= fine_min < fine_max <= {FINE_MAX}."
            )


@dataclass(kw_only=True)
class SlowLoopConfig:
    """Slow loop: bandwidth and threshold steps after the fast loop saturates."""

    count_threshold: int = 2  # consecutive saturated windows before a step (paper: 2)
    step: int = 5  # fine codes per step on PrBp, PrSFBp, OnBn, OffBn (paper: 5)
    # Multiplicative steps instead: each step scales the four fine codes (so the currents, the
    # coarse range being kept) by this factor, at least one code. A fixed code step is a fixed
    # current step, so near the bottom of a fine range it is a huge relative change (PrSFBp
    # 32 -> 22 -> 12 -> 2 cuts the photoreceptor cutoff 16x in three steps) while near the top
    # it hardly moves (OffBn 168 -> 158 shifts the OFF threshold by 0.004). A ratio moves the
    # thresholds by `THR_FAC ln(ratio)` and the cutoff by `ratio` per step, wherever the codes
    # sit. None: `step` fine codes (the paper).
    step_ratio: float | None = None
    settle_windows: int = 1  # windows to wait after a step before counting again
    # Fast-loop codes within this many fine codes of a limit count as saturated (paper: 0,
    # i.e. exactly at the limit). With 0 a proportional fast loop that chatters between the
    # limit and a nearby code resets the counter every other window and never triggers.
    saturation_margin: int = 0
    # Margin at the fast loop's fine_min end (its longest refractory period) when it should
    # differ from `saturation_margin`; None: the same. A wide margin here hands bright light to
    # the thresholds earlier, so the refractory period clips fewer events on strong edges.
    saturation_margin_min: int | None = None
    # Which fast-loop code counts for saturation: "written" (the code after the fast loop's
    # `gain` damping) or "target" (the proportional map of the rate, the paper's `s`; with gain
    # 1 the two agree). With gain < 1 the written code creeps towards a limit for several
    # windows after a lighting step, delaying the slow loop by as much.
    saturation_source: str = "written"
    # Hold-off after a slow step (jAER DVSBiasController `ignoreEventsAfterBiasChangeMs`, 100 ms):
    # the first `holdoff_s` of the next window are left out of its rate, so the burst of events
    # that a threshold step releases is not mistaken for the new operating point. 0 disables.
    holdoff_s: float = 0.0
    rate_low: float = 5e5  # band used only when there is no fast loop (events/s at 346x260)
    rate_high: float = 2.5e6  # upper edge of that band (events/s at 346x260)
    # Fine-code limits per stepped bias. OnBn stays well above 0 so that its current keeps
    # exceeding DiffBn (the ON threshold must stay positive).
    limits: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "PrBp": (0, 255),
            "PrSFBp": (0, 255),
            "OnBn": (10, 255),
            "OffBn": (0, 255),
        }
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.count_threshold, int) and self.count_threshold >= 1):
            raise ConfigError(f"slow.count_threshold={self.count_threshold!r} must be an int >= 1.")
        if not (isinstance(self.step, int) and 1 <= self.step <= FINE_MAX):
            raise ConfigError(f"slow.step={self.step!r} must be an int in 1..{FINE_MAX}.")
        if self.step_ratio is not None and not (
            isinstance(self.step_ratio, int | float) and 1.0 < self.step_ratio <= 4.0
        ):
            raise ConfigError(
                f"slow.step_ratio={self.step_ratio!r} must be null or a number in (1, 4]."
            )
        if not (isinstance(self.settle_windows, int) and self.settle_windows >= 0):
            raise ConfigError(f"slow.settle_windows={self.settle_windows!r} must be an int >= 0.")
        if not (isinstance(self.saturation_margin, int) and self.saturation_margin >= 0):
            raise ConfigError(
                f"slow.saturation_margin={self.saturation_margin!r} must be an int >= 0 (codes)."
            )
        m = self.saturation_margin_min
        if m is not None and not (isinstance(m, int) and m >= 0):
            raise ConfigError(
                f"slow.saturation_margin_min={m!r} must be null or an int >= 0 (codes)."
            )
        if self.saturation_source not in ("written", "target"):
            raise ConfigError(
                f"slow.saturation_source={self.saturation_source!r}; use 'written' or 'target'."
                + did_you_mean(self.saturation_source, ("written", "target"))
            )
        if not self.holdoff_s >= 0:
            raise ConfigError(f"slow.holdoff_s={self.holdoff_s!r} must be >= 0 s.")
        _check_band("slow", self.rate_low, self.rate_high)
        needed = {"PrBp", "PrSFBp", "OnBn", "OffBn"}
        if set(self.limits) != needed:
            raise ConfigError(
                f"slow.limits has keys {sorted(self.limits)}; give exactly {sorted(needed)}."
            )
        self.limits = {k: (int(v[0]), int(v[1])) for k, v in self.limits.items()}
        for name, (lo, hi) in self.limits.items():
            if not 0 <= lo <= hi <= FINE_MAX:
                raise ConfigError(f"slow.limits[{name}]=({lo}, {hi}) must lie in 0..{FINE_MAX}.")


@dataclass(kw_only=True)
class HysteresisConfig:
    """jAER DVSBiasController-style baseline with one tweak."""

    rate_low: float = 1e5  # events/s at 346x260 (jAER eventRateLowHz)
    rate_high: float = 1e6  # events/s at 346x260 (jAER eventRateHighHz)
    hysteresis: float = 1.3  # band widening factor (jAER eventRateBoundsHysteresisFactor)
    tweak_step: float = 0.01  # tweak change per command (jAER tweakStepAmount)
    max_ratio: float = 10.0  # current ratio at tweak = +-1 (jAER threshold MAX for DAVIS)
    target: str = "threshold"  # which tweak: "threshold", "refractory" or "bandwidth"

    _TARGETS: ClassVar[tuple[str, ...]] = ("threshold", "refractory", "bandwidth")

    def __post_init__(self) -> None:
        _check_band("hysteresis", self.rate_low, self.rate_high)
        if not self.hysteresis >= 1:
            raise ConfigError(f"hysteresis.hysteresis={self.hysteresis!r} must be >= 1.")
        if not 0 < self.tweak_step <= 1:
            raise ConfigError(f"hysteresis.tweak_step={self.tweak_step!r} must be in (0, 1].")
        if not self.max_ratio > 1:
            raise ConfigError(f"hysteresis.max_ratio={self.max_ratio!r} must be > 1.")
        if self.target not in self._TARGETS:
            raise ConfigError(
                f"hysteresis.target={self.target!r}; use one of {list(self._TARGETS)}."
                + did_you_mean(self.target, self._TARGETS)
            )


class BiasController(ABC):
    """One bias policy. Subclasses set `kind` and implement `on_window`."""

    kind: ClassVar[str]  # registry key, e.g. "fast_slow"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.__dict__.get("kind"), str):
            raise TypeError(f"{cls.__name__} must set the class attribute `kind`.")

    def __init__(self, *, n_pixels: int = DAVIS346_PIXELS) -> None:
        self.scale = n_pixels / DAVIS346_PIXELS  # rate bands scale with the pixel count
        # Seconds at the start of the next window whose events the rate measurement should
        # ignore (set by `on_window`; the evaluation loop honours it, see `holdoff_s`).
        self.ignore_s = 0.0

    @abstractmethod
    def on_window(self, rate_hz: float, biases: DavisBiases) -> dict[str, int]:
        """Reacts to the rate of the window that just ended.

        Args:
            rate_hz: DVS events per second in that window.
            biases: the biases to update in place.

        Returns:
            {bias name: fine code written}, only for the biases that changed.
        """

    def band(self) -> tuple[float, float] | None:
        """The (low, high) rate band this controller aims for, scaled; None if it has none."""
        return None


class FixedBiases(BiasController):
    """Baseline: the initial biases, never changed."""

    kind = "default"

    def on_window(self, rate_hz: float, biases: DavisBiases) -> dict[str, int]:
        """Writes nothing."""
        return {}


class FastLoop(BiasController):
    """Proportional map from event rate to the RefrBp fine code (optionally damped, dead band)."""

    kind = "fast"

    def __init__(self, cfg: FastLoopConfig, *, n_pixels: int = DAVIS346_PIXELS) -> None:
        super().__init__(n_pixels=n_pixels)
        self.cfg = cfg
        self.code: int | None = None  # last fine code written

    def band(self) -> tuple[float, float]:
        """The scaled (rate_low, rate_high) band."""
        return self.cfg.rate_low * self.scale, self.cfg.rate_high * self.scale

    def code_for(self, rate_hz: float) -> int:
        """The clamped RefrBp fine code for a rate."""
        c = self.cfg
        lo, hi = self.band()
        raw = c.fine_max - (c.fine_max - c.fine_min) * (rate_hz - lo) / (hi - lo)
        return int(min(max(int(raw), c.fine_min), c.fine_max))

    def holds(self, rate_hz: float) -> bool:
        """True when the loop leaves RefrBp as it is after a window at `rate_hz` (dead band)."""
        hb = self.cfg.hold_band
        if hb is None or self.code is None:  # the first window always writes
            return False
        return hb[0] * self.scale <= rate_hz <= hb[1] * self.scale

    def next_code(self, rate_hz: float, current: int) -> int:
        """The code the loop writes after a window at `rate_hz`, starting from `current`."""
        if self.holds(rate_hz):
            return current
        target = self.code_for(rate_hz)
        if self.cfg.gain >= 1.0:
            return target
        return int(round(current + self.cfg.gain * (target - current)))

    def on_window(
        self, rate_hz: float, biases: DavisBiases, *, sensitized: bool = False
    ) -> dict[str, int]:
        """Writes RefrBp fine (every window, as `setif_RefrBp s`, unless in the dead band).

        `sensitized` (set by fast_slow) selects `coarse_jaer_sensitized` when configured.
        """
        if self.holds(rate_hz):
            return {}
        self.code = self.next_code(rate_hz, biases["RefrBp"].fine)
        coarse = self.cfg.coarse_jaer
        if sensitized and self.cfg.coarse_jaer_sensitized is not None:
            coarse = self.cfg.coarse_jaer_sensitized
        biases.set("RefrBp", coarse=coarse, fine=self.code, jaer=coarse is not None)
        return {"RefrBp": self.code}


class SlowLoop(BiasController):
    """Bandwidth/threshold steps after saturation; standalone it watches the rate band."""

    kind = "slow"
    # Sign of each step when there are too few events (+1 raises the fine code).
    _UP_SIGNS: ClassVar[dict[str, int]] = {"PrBp": +1, "PrSFBp": +1, "OnBn": -1, "OffBn": +1}

    def __init__(
        self,
        cfg: SlowLoopConfig,
        *,
        n_pixels: int = DAVIS346_PIXELS,
        saturation: Callable[[float], int] | None = None,
    ) -> None:
        super().__init__(n_pixels=n_pixels)
        self.cfg = cfg
        self._saturation = saturation or self._band_saturation
        self.upcount = 0
        self.downcount = 0
        self.settle = 0
        self.steps_taken = 0
        self.net_steps = 0  # up steps minus down steps: > 0 while more sensitive than initially

    def band(self) -> tuple[float, float]:
        """The scaled band used when the slow loop runs alone."""
        return self.cfg.rate_low * self.scale, self.cfg.rate_high * self.scale

    def _band_saturation(self, rate_hz: float) -> int:
        lo, hi = self.band()
        return +1 if rate_hz <= lo else (-1 if rate_hz >= hi else 0)

    def _stepped(self, fine: int, direction: int) -> int:
        """`fine` moved one step up (+1) or down (-1): by `step` codes or by `step_ratio`."""
        ratio = self.cfg.step_ratio
        if ratio is None:
            return fine + direction * self.cfg.step
        scaled = round(fine * ratio) if direction > 0 else round(fine / ratio)
        return max(scaled, fine + 1) if direction > 0 else min(scaled, fine - 1)

    def on_window(self, rate_hz: float, biases: DavisBiases) -> dict[str, int]:
        """Counts saturated windows and steps the four biases when the count is reached."""
        self.ignore_s = 0.0
        if self.settle > 0:
            self.settle -= 1
            return {}
        direction = self._saturation(rate_hz)  # +1: too few events, -1: too many, 0: fine
        self.upcount = self.upcount + 1 if direction > 0 else 0
        self.downcount = self.downcount + 1 if direction < 0 else 0
        if self.upcount >= self.cfg.count_threshold:
            sign = +1
        elif self.downcount >= self.cfg.count_threshold:
            sign = -1
        else:
            return {}
        self.upcount = self.downcount = 0
        self.settle = self.cfg.settle_windows
        written: dict[str, int] = {}
        for name, up_sign in self._UP_SIGNS.items():
            lo, hi = self.cfg.limits[name]
            old = biases[name].fine
            new = min(max(self._stepped(old, sign * up_sign), lo), hi)
            if new != old:
                biases.set(name, fine=new)
                written[name] = new
        if written:
            self.steps_taken += 1
            self.net_steps += sign
            self.ignore_s = self.cfg.holdoff_s
        return written


class FastSlowController(BiasController):
    """The fast loop every window; the slow loop when the fast loop saturates."""

    kind = "fast_slow"

    def __init__(
        self, fast: FastLoopConfig, slow: SlowLoopConfig, *, n_pixels: int = DAVIS346_PIXELS
    ) -> None:
        super().__init__(n_pixels=n_pixels)
        self.fast = FastLoop(fast, n_pixels=n_pixels)
        self.slow = SlowLoop(slow, n_pixels=n_pixels, saturation=self._fast_saturation)
        self._pending_code = fast.fine_max

    def band(self) -> tuple[float, float]:
        """The fast loop's band."""
        return self.fast.band()

    def _fast_saturation(self, rate_hz: float) -> int:
        code = self._pending_code
        if self.slow.cfg.saturation_source == "target":
            code = self.fast.code_for(rate_hz)
        margin = self.slow.cfg.saturation_margin
        margin_min = self.slow.cfg.saturation_margin_min
        if margin_min is None:
            margin_min = margin
        if code >= self.fast.cfg.fine_max - margin:
            return +1
        if code <= self.fast.cfg.fine_min + margin_min:
            return -1
        return 0

    def on_window(self, rate_hz: float, biases: DavisBiases) -> dict[str, int]:
        """Slow step first (same call, as in the reference node), then the RefrBp command.

        The slow loop judges saturation on the code the fast loop is about to write.
        """
        self._pending_code = self.fast.next_code(rate_hz, biases["RefrBp"].fine)
        written = self.slow.on_window(rate_hz, biases)
        sensitized = self.slow.net_steps > 0
        written.update(self.fast.on_window(rate_hz, biases, sensitized=sensitized))
        self.ignore_s = self.slow.ignore_s
        return written


class HysteresisController(BiasController):
    """jAER DVSBiasController (BoundEventRate goal) reduced to one tweak with hysteresis."""

    kind = "hysteresis"

    def __init__(
        self, cfg: HysteresisConfig, nominal: DavisBiases, *, n_pixels: int = DAVIS346_PIXELS
    ) -> None:
        super().__init__(n_pixels=n_pixels)
        self.cfg = cfg
        self._nominal = {n: nominal[n].current_a for n in BIAS_NAMES}
        self.tweak = 0.0
        self.state = "MEDIUM"

    def band(self) -> tuple[float, float]:
        """The scaled (rate_low, rate_high) band."""
        return self.cfg.rate_low * self.scale, self.cfg.rate_high * self.scale

    def _next_state(self, rate_hz: float) -> str:
        lo, hi = self.band()
        h = self.cfg.hysteresis
        if self.state == "LOW":
            return "MEDIUM" if rate_hz > lo * h else "LOW"
        if self.state == "HIGH":
            return "MEDIUM" if rate_hz < hi / h else "HIGH"
        if rate_hz < lo / h:
            return "LOW"
        if rate_hz > hi * h:
            return "HIGH"
        return "MEDIUM"

    def _scaled(self, name: str, ratio: float) -> CoarseFine:
        return CoarseFine.from_current(self._nominal[name] * ratio)

    def on_window(self, rate_hz: float, biases: DavisBiases) -> dict[str, int]:
        """Moves the tweak one step towards the band and writes the affected biases."""
        self.state = self._next_state(rate_hz)
        if self.state == "MEDIUM":
            return {}
        # HIGH: fewer events wanted. Thresholds up, refractory longer, bandwidth lower.
        direction = +1.0 if self.state == "HIGH" else -1.0
        if self.cfg.target != "threshold":
            direction = -direction  # refractory/bandwidth tweaks raise event counts when > 0
        new = min(1.0, max(-1.0, self.tweak + direction * self.cfg.tweak_step))
        if new == self.tweak:
            return {}
        self.tweak = new
        ratio = math.exp(self.tweak * math.log(self.cfg.max_ratio))
        if self.cfg.target == "threshold":
            targets = {"OnBn": ratio, "OffBn": 1.0 / ratio}
        elif self.cfg.target == "refractory":
            targets = {"RefrBp": ratio}
        else:
            targets = {"PrBp": ratio, "PrSFBp": ratio}
        written = {}
        for name, r in targets.items():
            value = self._scaled(name, r)
            biases.set(name, coarse=value.coarse, fine=value.fine)
            written[name] = value.fine
        return written


@dataclass(kw_only=True)
class ControllersConfig:
    """All controller parameters (the `controllers:` section of the eval YAML)."""

    window_s: float = 0.3  # control window, s (paper: fixed 0.3 s)
    fast: FastLoopConfig = field(default_factory=FastLoopConfig)
    slow: SlowLoopConfig = field(default_factory=SlowLoopConfig)
    hysteresis: HysteresisConfig = field(default_factory=HysteresisConfig)
    enabled: list[str] = field(
        default_factory=lambda: ["default", "fast", "slow", "fast_slow", "hysteresis"]
    )

    def __post_init__(self) -> None:
        if isinstance(self.fast, dict):
            self.fast = FastLoopConfig(**self.fast)
        if isinstance(self.slow, dict):
            self.slow = SlowLoopConfig(**self.slow)
        if isinstance(self.hysteresis, dict):
            self.hysteresis = HysteresisConfig(**self.hysteresis)
        if not self.window_s > 0:
            raise ConfigError(f"controllers.window_s={self.window_s!r} must be > 0 s.")
        if not self.slow.holdoff_s < self.window_s:
            raise ConfigError(
                f"controllers.slow.holdoff_s={self.slow.holdoff_s!r} must be shorter than "
                f"window_s={self.window_s!r}, or no events would be left to measure."
            )
        for name in self.enabled:
            if name not in CONTROLLER_KINDS:
                raise UnknownNameError(
                    f"unknown controller {name!r}; use some of {list(CONTROLLER_KINDS)}."
                    + did_you_mean(name, CONTROLLER_KINDS)
                )


# controller name -> factory(controllers config, nominal biases, pixel count); the names are
# what `ControllersConfig.enabled` and the eval YAML list.
_Factory = Callable[[ControllersConfig, DavisBiases, int], BiasController]
CONTROLLER_KINDS: Registry[_Factory] = Registry(
    "controller", unknown="unknown {noun} {name!r}; use one of {names}."
)
CONTROLLER_KINDS.register("default", lambda cfg, nominal, n: FixedBiases(n_pixels=n))
CONTROLLER_KINDS.register("fast", lambda cfg, nominal, n: FastLoop(cfg.fast, n_pixels=n))
CONTROLLER_KINDS.register("slow", lambda cfg, nominal, n: SlowLoop(cfg.slow, n_pixels=n))
CONTROLLER_KINDS.register(
    "fast_slow", lambda cfg, nominal, n: FastSlowController(cfg.fast, cfg.slow, n_pixels=n)
)
CONTROLLER_KINDS.register(
    "hysteresis",
    lambda cfg, nominal, n: HysteresisController(cfg.hysteresis, nominal, n_pixels=n),
)


def make_controller(
    kind: str, cfg: ControllersConfig, nominal: DavisBiases, *, n_pixels: int = DAVIS346_PIXELS
) -> BiasController:
    """Builds a registered controller by name.

    Raises:
        UnknownNameError: for an unregistered name, with a "did you mean" hint.
    """
    return CONTROLLER_KINDS.get(kind)(cfg, nominal, n_pixels)
