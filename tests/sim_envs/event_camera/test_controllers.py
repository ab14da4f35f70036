from __future__ import annotations

import pytest

from corrigible.errors import ConfigError, UnknownNameError
from corrigible.sim_envs.event_camera.biases import DavisBiases
from corrigible.sim_envs.event_camera.controllers import (
    ControllersConfig,
    FastLoop,
    FastLoopConfig,
    FastSlowController,
    HysteresisConfig,
    HysteresisController,
    SlowLoop,
    SlowLoopConfig,
    make_controller,
)


@pytest.mark.parametrize(
    ("rate", "code"),
    [(0.0, 57), (5e5, 57), (1.5e6, 30), (2.5e6, 4), (1e8, 4)],
    ids=["zero", "band-low", "middle", "band-high", "flood"],
)
def test_fast_loop_maps_rate_to_clamped_refrbp_code(rate, code):
    loop = FastLoop(FastLoopConfig())
    biases = DavisBiases.from_jaer()
    written = loop.on_window(rate, biases)
    assert written == {"RefrBp": code} and biases["RefrBp"].fine == code


def test_fast_loop_is_monotone_and_scales_band_with_resolution():
    loop = FastLoop(FastLoopConfig())
    codes = [loop.code_for(r) for r in range(0, 3_000_000, 50_000)]
    assert codes == sorted(codes, reverse=True) and min(codes) == 4 and max(codes) == 57
    half = FastLoop(FastLoopConfig(), n_pixels=346 * 260 // 2)
    assert half.band() == pytest.approx((2.5e5, 1.25e6), rel=1e-3)
    assert half.code_for(1.25e6) == 4


def test_slow_loop_triggers_after_k_saturated_windows_then_settles():
    ctrl = FastSlowController(FastLoopConfig(), SlowLoopConfig(count_threshold=2, settle_windows=1))
    biases = DavisBiases.from_jaer()
    start = {n: biases[n].fine for n in ("PrBp", "PrSFBp", "OnBn", "OffBn")}
    first = ctrl.on_window(1e5, biases)  # too few events: fast loop at 57 (1st window)
    assert first == {"RefrBp": 57}
    second = ctrl.on_window(1e5, biases)  # 2nd saturated window: slow step up
    assert second["PrBp"] == start["PrBp"] + 5 and second["PrSFBp"] == start["PrSFBp"] + 5
    assert second["OnBn"] == start["OnBn"] - 5 and second["OffBn"] == start["OffBn"] + 5
    assert ctrl.on_window(1e5, biases) == {"RefrBp": 57}  # settling window: no slow step
    assert ctrl.on_window(1e5, biases) == {"RefrBp": 57}  # counting again (1 of 2)
    assert "PrBp" in ctrl.on_window(1e5, biases)
    assert ctrl.slow.steps_taken == 2


def test_slow_loop_counter_resets_when_fast_loop_leaves_the_limit():
    ctrl = FastSlowController(FastLoopConfig(), SlowLoopConfig(count_threshold=2))
    biases = DavisBiases.from_jaer()
    for rate in (3e6, 1.5e6, 3e6, 1.5e6):
        assert set(ctrl.on_window(rate, biases)) == {"RefrBp"}
    ctrl.on_window(3e6, biases)
    down = ctrl.on_window(3e6, biases)  # too many events twice: step down
    assert down["PrBp"] == 119 - 5 and down["OnBn"] == 63 + 5 and down["OffBn"] == 168 - 5


def test_saturation_margin_counts_codes_near_the_limit():
    ctrl = FastSlowController(FastLoopConfig(), SlowLoopConfig(saturation_margin=8))
    biases = DavisBiases.from_jaer()
    ctrl.on_window(2.3e6, biases)  # code 9: within 8 of the limit 4
    assert "PrBp" in ctrl.on_window(2.4e6, biases)


def test_saturation_margin_min_widens_only_the_long_refractory_end():
    slow = SlowLoopConfig(saturation_margin=0, saturation_margin_min=20)
    ctrl = FastSlowController(FastLoopConfig(), slow)
    biases = DavisBiases.from_jaer()
    ctrl.on_window(2.0e6, biases)  # code 17: within 20 of fine_min 4, so "too many events"
    assert ctrl.on_window(2.0e6, biases)["OnBn"] == 63 + 5
    up = FastSlowController(FastLoopConfig(), slow)
    up.on_window(6e5, biases)  # code 54: 3 from fine_max, outside the margin 0 there
    assert set(up.on_window(6e5, biases)) == {"RefrBp"}


def test_ratio_steps_scale_the_codes_and_reverse_themselves():
    cfg = SlowLoopConfig(count_threshold=1, settle_windows=0, step_ratio=1.25)
    loop = SlowLoop(cfg)
    biases = DavisBiases.from_jaer()
    start = {n: biases[n].fine for n in ("PrBp", "PrSFBp", "OnBn", "OffBn")}
    up = loop.on_window(1e4, biases)  # too few events: bandwidth up, thresholds down
    assert up == {"PrBp": 149, "PrSFBp": 40, "OnBn": 50, "OffBn": 210}
    loop.on_window(1e8, biases)  # too many: back by the same factor (to within rounding)
    assert all(abs(biases[n].fine - start[n]) <= 1 for n in start)
    low = SlowLoop(cfg)
    small = DavisBiases.from_jaer()
    small.set("PrSFBp", fine=2)
    low.on_window(1e8, small)  # a small code still moves by at least one
    assert small["PrSFBp"].fine == 1
    with pytest.raises(ConfigError, match="step_ratio"):
        SlowLoopConfig(step_ratio=0.8)


def test_slow_steps_are_clamped_to_limits():
    limits = {"PrBp": (0, 121), "PrSFBp": (0, 255), "OnBn": (60, 255), "OffBn": (0, 170)}
    loop = SlowLoop(SlowLoopConfig(count_threshold=1, settle_windows=0, limits=limits))
    biases = DavisBiases.from_jaer()
    loop.on_window(1e4, biases)
    loop.on_window(1e4, biases)
    assert biases["PrBp"].fine == 121 and biases["OnBn"].fine == 60
    assert biases["OffBn"].fine == 170 and biases["PrSFBp"].fine == 42


def test_standalone_slow_loop_uses_its_rate_band():
    loop = SlowLoop(SlowLoopConfig(count_threshold=2))
    biases = DavisBiases.from_jaer()
    assert loop.on_window(1e6, biases) == {} and loop.on_window(1e6, biases) == {}
    loop.on_window(4e5, biases)
    assert loop.on_window(4e5, biases)["PrSFBp"] == 37


def test_hysteresis_controller_states_and_threshold_tweak():
    nominal = DavisBiases.from_jaer()
    ctrl = HysteresisController(HysteresisConfig(), nominal)
    biases = nominal.copy()
    assert ctrl.on_window(1.2e6, biases) == {}  # inside the x1.3 hysteresis: stays MEDIUM
    written = ctrl.on_window(1.4e6, biases)  # above 1.3e6: HIGH, thresholds up
    assert ctrl.state == "HIGH" and ctrl.tweak == pytest.approx(0.01)
    assert set(written) == {"OnBn", "OffBn"}
    assert biases["OnBn"].current_a > nominal["OnBn"].current_a
    assert biases["OffBn"].current_a < nominal["OffBn"].current_a
    ctrl.on_window(9e5, biases)  # below 1e6 / 1.3? no: stays HIGH, steps again
    assert ctrl.state == "HIGH" and ctrl.tweak == pytest.approx(0.02)
    ctrl.on_window(7e5, biases)  # below 1e6 / 1.3: MEDIUM, no step
    assert ctrl.state == "MEDIUM" and ctrl.tweak == pytest.approx(0.02)
    ctrl.on_window(5e4, biases)  # LOW: thresholds down
    assert ctrl.state == "LOW" and ctrl.tweak == pytest.approx(0.01)


def test_controller_configs_validate_themselves():
    with pytest.raises(ConfigError, match="fine_min"):
        FastLoopConfig(fine_min=60, fine_max=57)
    with pytest.raises(ConfigError, match="rate_low"):
        FastLoopConfig(rate_low=3e6)
    with pytest.raises(ConfigError, match="count_threshold"):
        SlowLoopConfig(count_threshold=0)
    with pytest.raises(ConfigError, match="target"):
        HysteresisConfig(target="thresh")
    with pytest.raises(UnknownNameError, match="fast_slow"):
        ControllersConfig(enabled=["fastslow"])
    with pytest.raises(UnknownNameError):
        make_controller("nope", ControllersConfig(), DavisBiases.from_jaer())


def test_fast_loop_gain_moves_part_of_the_way():
    loop = FastLoop(FastLoopConfig(gain=0.5))
    biases = DavisBiases.from_jaer()
    biases.set("RefrBp", fine=57)
    assert loop.on_window(3e6, biases) == {"RefrBp": round(57 + 0.5 * (4 - 57))}
    with pytest.raises(ConfigError, match="gain"):
        FastLoopConfig(gain=0.0)


def test_fast_loop_can_move_refrbp_to_another_coarse_range():
    loop = FastLoop(FastLoopConfig(coarse_jaer=7))
    biases = DavisBiases.from_jaer()
    loop.on_window(1e5, biases)
    assert biases["RefrBp"].jaer_coarse == 7 and biases["RefrBp"].fine == 57
    with pytest.raises(ConfigError, match="coarse_jaer"):
        FastLoopConfig(coarse_jaer=8)


def test_fast_loop_moves_to_the_sensitized_coarse_range_while_the_slow_loop_is_up():
    """Net up steps select `coarse_jaer_sensitized`; stepping back down returns to `coarse_jaer`."""
    fast = FastLoopConfig(coarse_jaer=6, coarse_jaer_sensitized=7)
    ctrl = FastSlowController(fast, SlowLoopConfig(count_threshold=1, settle_windows=0))
    biases = DavisBiases.from_jaer()
    ctrl.on_window(1.5e6, biases)  # in band: no slow step
    assert biases["RefrBp"].jaer_coarse == 6 and ctrl.slow.net_steps == 0
    ctrl.on_window(1e5, biases)  # too few events: one step up, now more sensitive
    assert ctrl.slow.net_steps == 1 and biases["RefrBp"].jaer_coarse == 7
    ctrl.on_window(1e8, biases)  # too many: one step down, back to the initial sensitivity
    assert ctrl.slow.net_steps == 0 and biases["RefrBp"].jaer_coarse == 6
    plain = FastLoop(fast)
    plain.on_window(1e5, biases)  # the fast loop alone never counts as sensitized
    assert biases["RefrBp"].jaer_coarse == 6
    with pytest.raises(ConfigError, match="coarse_jaer_sensitized"):
        FastLoopConfig(coarse_jaer_sensitized=9)


def test_target_saturation_steps_before_the_damped_code_reaches_the_limit():
    """With fast.gain < 1 the written code creeps up; the mapped code saturates at once."""
    fast = FastLoopConfig(gain=0.4, coarse_jaer=7)
    steps = {}
    for source in ("written", "target"):
        ctrl = FastSlowController(
            fast, SlowLoopConfig(saturation_margin=4, saturation_source=source)
        )
        biases = DavisBiases.from_jaer()  # RefrBp fine 25: far from the limit 57
        n = 0
        while ctrl.slow.steps_taken == 0:
            ctrl.on_window(1e5, biases)  # far too few events
            n += 1
        steps[source] = n
    assert steps["target"] == 2  # count_threshold windows, as in the paper (gain 1)
    assert steps["written"] > steps["target"] + 2


def test_holdoff_is_requested_only_after_a_slow_step():
    ctrl = FastSlowController(
        FastLoopConfig(), SlowLoopConfig(count_threshold=2, settle_windows=0, holdoff_s=0.1)
    )
    biases = DavisBiases.from_jaer()
    ctrl.on_window(1e5, biases)
    assert ctrl.ignore_s == 0.0  # fast-loop write only: a refractory change releases no burst
    assert "PrBp" in ctrl.on_window(1e5, biases)
    assert ctrl.ignore_s == pytest.approx(0.1)
    ctrl.on_window(1.5e6, biases)
    assert ctrl.ignore_s == 0.0


def test_new_slow_options_are_validated():
    with pytest.raises(ConfigError, match="saturation_source"):
        SlowLoopConfig(saturation_source="damped")
    with pytest.raises(ConfigError, match="holdoff_s"):
        SlowLoopConfig(holdoff_s=-0.1)
    with pytest.raises(ConfigError, match="shorter than"):
        ControllersConfig(window_s=0.3, slow={"holdoff_s": 0.3})


def test_fast_loop_dead_band_holds_refrbp_while_the_rate_is_in_band():
    loop = FastLoop(FastLoopConfig(gain=0.4, coarse_jaer=7, hold_band=(5e5, 2.5e6)))
    biases = DavisBiases.from_jaer()
    first = loop.on_window(1.5e6, biases)  # the first window always writes (takes RefrBp over)
    assert set(first) == {"RefrBp"} and biases["RefrBp"].jaer_coarse == 7
    held = biases["RefrBp"]
    for rate in (6e5, 1.2e6, 2.4e6, 5e5, 2.5e6):  # anywhere in the band: nothing written
        assert loop.on_window(rate, biases) == {}
        assert biases["RefrBp"] == held
    assert loop.on_window(3e6, biases) == {"RefrBp": round(held.fine + 0.4 * (4 - held.fine))}
    before = biases["RefrBp"].fine
    assert loop.on_window(4e5, biases)["RefrBp"] > before  # below the band: shorter period


def test_dead_band_keeps_slow_loop_saturation_on_the_mapped_code():
    fast = FastLoopConfig(gain=0.4, coarse_jaer=7, hold_band=(5e5, 2.5e6))
    slow = SlowLoopConfig(saturation_margin=4, saturation_source="target", count_threshold=2)
    ctrl = FastSlowController(fast, slow)
    biases = DavisBiases.from_jaer()
    ctrl.on_window(1.5e6, biases)
    refr = biases["RefrBp"]
    ctrl.on_window(5.5e5, biases)  # in band (held) but within 4 codes of 57: saturated
    written = ctrl.on_window(5.5e5, biases)
    assert "PrBp" in written and "RefrBp" not in written and biases["RefrBp"] == refr


def test_dead_band_is_validated_and_off_by_default():
    assert FastLoopConfig().hold_band is None
    with pytest.raises(ConfigError, match="hold_band"):
        FastLoopConfig(hold_band=(2e6, 1e6))
    with pytest.raises(ConfigError, match="hold_band"):
        FastLoopConfig(hold_band=(1e6,))


def test_dead_band_comes_from_the_yaml_layout():
    cfg = ControllersConfig(fast={"hold_band": ["5.0e+5", 2.5e6]}, enabled=["fast"])
    assert cfg.fast.hold_band == (5e5, 2.5e6)
    loop = make_controller("fast", cfg, DavisBiases.from_jaer(), n_pixels=346 * 260 // 2)
    loop.on_window(1e6, DavisBiases.from_jaer())
    assert loop.holds(1.2e6) and not loop.holds(1.3e6)  # the band scales with the pixel count
