"""DAVIS346 coarse/fine biases (libcaer and jAER numbering), Prophesee aliases and pixel physics.

Two programs number the coarse range of a DAVIS bias in opposite directions. libcaer (and
dv-processing) count up with current: `coarseCurrents[c]` for c = 0..7 ascends from 11 pA to
24.8 µA. jAER's `AddressedIPotCF` shows `coarse = 7 - binary`, so jAER coarse 0 is the *largest*
current. The published fast/slow controller constants are jAER codes, so this module stores
libcaer coarse values and converts jAER codes explicitly with `jaer_to_libcaer_coarse`.

Currents become pixel parameters with the jAER DavisConfig formulas (after Nozaki & Delbruck
2017): thresholds from the ON/OFF-to-DiffBn current ratios, refractory period from RefrBp, and
the photoreceptor cutoff from the source-follower current PrSFBp (bounded by half of PrBp).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from corrigible.errors import BiasRangeError, ConfigError, UnknownNameError, did_you_mean

# libcaer `coarseCurrents` in pA, indexed by the libcaer coarse value (ascending current).
COARSE_CURRENTS_PA: tuple[float, ...] = (11, 94, 756, 6054, 48437, 387500, 3100000, 24800000)
COARSE_MAX = 7  # coarse is a 3-bit field
FINE_MAX = 255  # fine is an 8-bit DAC

# DAVIS346 bias parameter addresses (libcaer DAVIS346_CONFIG_BIAS_*; module DAVIS_CONFIG_BIAS = 5).
DAVIS_CONFIG_BIAS = 5
DAVIS346_BIAS_ADDRESSES: dict[str, int] = {
    "DiffBn": 10,
    "OnBn": 11,
    "OffBn": 12,
    "PrBp": 14,
    "PrSFBp": 15,
    "RefrBp": 16,
}
BIAS_NAMES: tuple[str, ...] = tuple(DAVIS346_BIAS_ADDRESSES)
# The suffix says the transistor type: "...Bn" is an n-type bias (sexN), "...Bp" a p-type one.
_IS_N_TYPE: dict[str, bool] = {name: name.endswith("Bn") for name in BIAS_NAMES}

# Prophesee (Metavision I_LL_Biases) names for the same roles. `bias_hpf` has no DAVIS346
# counterpart; it addresses the emulator's optional pixel high-pass filter (see `HPF_CODE_MAX`).
PROPHESEE_ALIASES: dict[str, str] = {
    "bias_diff": "DiffBn",
    "bias_diff_on": "OnBn",
    "bias_diff_off": "OffBn",
    "bias_pr": "PrBp",
    "bias_fo": "PrSFBp",
    "bias_refr": "RefrBp",
    "bias_hpf": "bias_hpf",
}
HPF_CODE_MAX = 120  # IMX636 `bias_hpf` range is 0..120 (openeb imx636_bias_settings.h)

# Bias -> physics constants (jAER DavisConfig; reference doc §3).
_KN = 0.7  # n-FET subthreshold slope factor
_KP = 0.7  # p-FET subthreshold slope factor
_CAP_RATIO = 20.0  # differencing-amplifier capacitor ratio C1/C2
THR_FAC = (_KN / _KP**2) / _CAP_RATIO  # ln-intensity units per ln(current ratio), ~0.0714
_REFR_CAP_F = 20e-15  # refractory capacitor, farad
_REFR_VOLTAGE_V = 0.8  # refractory voltage swing, volt
_U_T_V = 0.025852  # thermal voltage kT/q at 300 K, volt
_C1_F = 131.167e-15  # photoreceptor output capacitance, farad
# A fine code of 0 gives zero nominal current; the real DAC still leaks. Without a floor the
# refractory period and OFF threshold would be infinite, so currents are floored here.
_LEAKAGE_CURRENT_A = 1e-15


def jaer_to_libcaer_coarse(jaer_coarse: int) -> int:
    """Converts a jAER coarse code (0 = largest current) to libcaer's ascending numbering.

    Args:
        jaer_coarse: coarse code as jAER shows it, 0..7.

    Returns:
        The libcaer coarse value, `7 - jaer_coarse`.

    Raises:
        BiasRangeError: when the code is not in 0..7.
    """
    _check_int("jAER coarse", jaer_coarse, 0, COARSE_MAX)
    return COARSE_MAX - jaer_coarse


def libcaer_to_jaer_coarse(libcaer_coarse: int) -> int:
    """Converts a libcaer coarse value to the code jAER shows (the same reflection, 7 - c)."""
    _check_int("libcaer coarse", libcaer_coarse, 0, COARSE_MAX)
    return COARSE_MAX - libcaer_coarse


def _check_int(what: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BiasRangeError(f"{what}={value!r} must be an int in {lo}..{hi}.")
    if not lo <= value <= hi:
        raise BiasRangeError(
            f"{what}={value} is outside the DAVIS346 bias generator range {lo}..{hi}; "
            f"write a value in {lo}..{hi} (change the coarse range to reach other currents)."
        )


@dataclass(frozen=True, kw_only=True)
class CoarseFine:
    """One coarse/fine bias in libcaer numbering: `I = coarseCurrents[coarse] * fine / 255`."""

    coarse: int  # libcaer coarse value 0..7 (ascending current)
    fine: int  # fine DAC code 0..255

    def __post_init__(self) -> None:
        _check_int("coarse", self.coarse, 0, COARSE_MAX)
        _check_int("fine", self.fine, 0, FINE_MAX)

    @classmethod
    def from_jaer(cls, jaer_coarse: int, fine: int) -> CoarseFine:
        """Builds a bias from jAER's (coarse, fine) codes, e.g. `setic_PrBp 6`, `setif_PrBp 119`."""
        return cls(coarse=jaer_to_libcaer_coarse(jaer_coarse), fine=fine)

    @classmethod
    def from_current(cls, current_a: float) -> CoarseFine:
        """Nearest coarse/fine for a current, as libcaer's `caerBiasCoarseFineFromCurrent` does.

        It picks the smallest coarse range whose full-scale current reaches the request, which
        keeps the fine code large and so the quantisation step small.

        Raises:
            BiasRangeError: when the current is negative or above the largest coarse range.
        """
        current_pa = current_a * 1e12
        if not math.isfinite(current_pa) or current_pa < 0 or current_pa > COARSE_CURRENTS_PA[-1]:
            raise BiasRangeError(
                f"current {current_a!r} A is outside the DAVIS346 range "
                f"0..{COARSE_CURRENTS_PA[-1] * 1e-12:g} A; request a current inside it."
            )
        for coarse, full_scale in enumerate(COARSE_CURRENTS_PA):
            if current_pa <= full_scale:
                fine = round(current_pa / full_scale * FINE_MAX)
                return cls(coarse=coarse, fine=min(FINE_MAX, fine))
        raise AssertionError("unreachable: range checked above")  # pragma: no cover

    @property
    def jaer_coarse(self) -> int:
        """The coarse code jAER would show for this bias."""
        return libcaer_to_jaer_coarse(self.coarse)

    @property
    def current_a(self) -> float:
        """Nominal bias current in ampere (libcaer `caerBiasCoarseFineToCurrent`)."""
        return COARSE_CURRENTS_PA[self.coarse] * self.fine / FINE_MAX * 1e-12

    def register_value(self, name: str, *, enabled: bool = True) -> int:
        """The 16-bit word libcaer's `caerBiasCoarseFineGenerate` would write for this bias.

        Bits 12-14 coarse, 4-11 fine, 0 enabled, 1 sexN, 2 typeNormal, 3 currentLevelNormal.

        Args:
            name: canonical bias name; it decides the transistor type (sexN).
            enabled: the enable bit.
        """
        word = int(enabled) | (int(_IS_N_TYPE[canonical_name(name)]) << 1) | (1 << 2) | (1 << 3)
        return word | (self.fine << 4) | (self.coarse << 12)


def canonical_name(name: str) -> str:
    """Maps a DAVIS name (any case) or a Prophesee alias onto the canonical DAVIS name.

    Raises:
        UnknownNameError: with a "did you mean" hint for unknown names.
    """
    if name in PROPHESEE_ALIASES:
        return PROPHESEE_ALIASES[name]
    lowered = {n.lower(): n for n in BIAS_NAMES}
    if name.lower() in lowered:
        return lowered[name.lower()]
    choices = [*BIAS_NAMES, *PROPHESEE_ALIASES]
    raise UnknownNameError(
        f"unknown bias {name!r}; use one of {choices}." + did_you_mean(name, choices)
    )


# Initial biases of the fast/slow controller paper, in jAER codes (reference doc §1.4).
# RefrBp coarse 4 is the jAER default the paper leaves alone; its fine code is rewritten by the
# fast loop every window, and 25 (libcaer's default fine) is only the value before the first one.
# DiffBn is not given in the paper; libcaer's DAVIS346 default (libcaer coarse 4, fine 39) is used.
JAER_FAST_SLOW_DEFAULTS: dict[str, tuple[int, int]] = {
    "DiffBn": (3, 39),
    "OnBn": (1, 63),
    "OffBn": (5, 168),
    "PrBp": (6, 119),
    "PrSFBp": (7, 32),
    "RefrBp": (4, 25),
}
# libcaer / DV defaults for DAVIS346 in libcaer numbering (reference doc §2.1).
LIBCAER_DEFAULTS: dict[str, tuple[int, int]] = {
    "DiffBn": (4, 39),
    "OnBn": (6, 200),
    "OffBn": (4, 0),
    "PrBp": (2, 58),
    "PrSFBp": (1, 33),
    "RefrBp": (4, 25),
}


class DavisBiases(Mapping[str, CoarseFine]):
    """The six DAVIS346 biases the pixel model uses, with range-checked writes.

    Reads and writes accept DAVIS names (`RefrBp`) and Prophesee aliases (`bias_refr`). Every
    write goes through `set`, which refuses values the chip could not take instead of clamping
    silently, so a controller bug shows up as an error rather than as a wrong experiment.
    """

    def __init__(self, values: Mapping[str, CoarseFine], *, hpf_code: int = 0) -> None:
        missing = sorted(set(BIAS_NAMES) - {canonical_name(k) for k in values})
        if missing:
            raise ConfigError(f"biases {missing} are missing; give all of {list(BIAS_NAMES)}.")
        self._values: dict[str, CoarseFine] = {canonical_name(k): v for k, v in values.items()}
        _check_int("bias_hpf", hpf_code, 0, HPF_CODE_MAX)
        self._hpf_code = hpf_code

    @classmethod
    def from_jaer(cls, codes: Mapping[str, tuple[int, int]] | None = None) -> DavisBiases:
        """Builds biases from jAER (coarse, fine) codes; defaults to the paper's initial biases."""
        codes = JAER_FAST_SLOW_DEFAULTS if codes is None else codes
        return cls({name: CoarseFine.from_jaer(c, f) for name, (c, f) in codes.items()})

    @classmethod
    def from_libcaer(cls, codes: Mapping[str, tuple[int, int]] | None = None) -> DavisBiases:
        """Builds biases from libcaer (coarse, fine) codes; defaults to libcaer's DAVIS346 set."""
        codes = LIBCAER_DEFAULTS if codes is None else codes
        return cls({name: CoarseFine(coarse=c, fine=f) for name, (c, f) in codes.items()})

    def __getitem__(self, name: str) -> CoarseFine:
        return self._values[canonical_name(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(BIAS_NAMES)

    def __len__(self) -> int:
        return len(BIAS_NAMES)

    @property
    def hpf_code(self) -> int:
        """Emulator high-pass code 0..120 (`bias_hpf`); 0 disables the filter."""
        return self._hpf_code

    def set(
        self, name: str, *, coarse: int | None = None, fine: int | None = None, jaer: bool = False
    ) -> CoarseFine:
        """Writes a bias, refusing values outside the chip's range.

        Args:
            name: DAVIS name or Prophesee alias. For `bias_hpf`, `fine` carries the 0..120 code.
            coarse: new coarse value, or None to keep it. libcaer numbering unless `jaer`.
            fine: new fine code 0..255, or None to keep it.
            jaer: interpret `coarse` as a jAER code (0 = largest current).

        Returns:
            The bias as written.

        Raises:
            BiasRangeError: when a code is outside its range; nothing is written then.
            UnknownNameError: for unknown names.
        """
        canonical = canonical_name(name)
        if canonical == "bias_hpf":
            if coarse is not None or fine is None:
                raise BiasRangeError("bias_hpf takes one code: call set('bias_hpf', fine=0..120).")
            _check_int("bias_hpf", fine, 0, HPF_CODE_MAX)
            self._hpf_code = fine
            return CoarseFine(coarse=0, fine=fine)
        old = self._values[canonical]
        try:
            if coarse is not None and jaer:
                coarse = jaer_to_libcaer_coarse(coarse)
            new = CoarseFine(
                coarse=old.coarse if coarse is None else coarse,
                fine=old.fine if fine is None else fine,
            )
        except BiasRangeError as exc:
            raise BiasRangeError(f"cannot write {canonical} ({name}): {exc}") from exc
        self._values[canonical] = new
        return new

    def copy(self) -> DavisBiases:
        """An independent copy (controllers mutate theirs)."""
        return DavisBiases(dict(self._values), hpf_code=self._hpf_code)

    def as_jaer(self) -> dict[str, tuple[int, int]]:
        """The biases as jAER (coarse, fine) codes, for logs that compare with the paper."""
        return {n: (v.jaer_coarse, v.fine) for n, v in self._values.items()}

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={v.coarse}/{v.fine}" for n, v in self._values.items())
        return f"DavisBiases(libcaer {body}, hpf={self._hpf_code})"


@dataclass(frozen=True, kw_only=True)
class PixelParams:
    """Pixel-model parameters derived from biases (what the emulator actually uses)."""

    theta_on: float  # ON threshold, ln-intensity units (> 0)
    theta_off: float  # OFF threshold magnitude, ln-intensity units (> 0)
    refractory_s: float  # refractory period, s
    cutoff_hz: float  # photoreceptor low-pass corner at full brightness, Hz
    hpf_hz: float  # pixel high-pass corner, Hz (0 = off; emulator-only, `bias_hpf`)


def hpf_code_to_hz(code: int) -> float:
    """Emulator convention for `bias_hpf`: 0 is off, then 0.1 Hz rising one decade per 40 codes.

    IMX636 `bias_hpf` offsets have no published Hz calibration, so this map is ours, not the
    chip's; it spans 0.1..100 Hz over the chip's 1..120 code range.
    """
    _check_int("bias_hpf", code, 0, HPF_CODE_MAX)
    return 0.0 if code == 0 else 0.1 * 10 ** ((code - 1) / 40.0)


def pixel_params(biases: DavisBiases) -> PixelParams:
    """Converts bias currents into thresholds, refractory period and cutoff (reference doc §3).

    * `theta_on = THR_FAC * ln(I_on / I_diff)`, `theta_off = THR_FAC * ln(I_diff / I_off)`.
    * `refractory = 20 fF * 0.8 V / I_refr`.
    * `cutoff = I_sf / (2 pi U_T C1)` while `I_sf < I_pr / 2`; above that the photoreceptor
      itself limits the bandwidth, which is modelled by capping the current at `I_pr / 2`.

    Raises:
        BiasRangeError: when OnBn does not exceed DiffBn or OffBn does not stay below it,
            since the pixel then has no ON (or OFF) threshold at all.
    """

    def current(name: str) -> float:
        return max(biases[name].current_a, _LEAKAGE_CURRENT_A)

    i_diff, i_on, i_off = current("DiffBn"), current("OnBn"), current("OffBn")
    if i_on <= i_diff:
        raise BiasRangeError(
            f"OnBn current {i_on:.3g} A must exceed DiffBn {i_diff:.3g} A, or the ON threshold "
            f"is not positive; raise OnBn or lower DiffBn ({biases['OnBn']}, {biases['DiffBn']})."
        )
    if i_off >= i_diff:
        raise BiasRangeError(
            f"OffBn current {i_off:.3g} A must stay below DiffBn {i_diff:.3g} A, or the OFF "
            f"threshold is not positive; lower OffBn ({biases['OffBn']}, {biases['DiffBn']})."
        )
    i_sf = min(current("PrSFBp"), 0.5 * current("PrBp"))
    return PixelParams(
        theta_on=THR_FAC * math.log(i_on / i_diff),
        theta_off=THR_FAC * math.log(i_diff / i_off),
        refractory_s=_REFR_CAP_F * _REFR_VOLTAGE_V / current("RefrBp"),
        cutoff_hz=i_sf / (2 * math.pi * _U_T_V * _C1_F),
        hpf_hz=hpf_code_to_hz(biases.hpf_code),
    )
