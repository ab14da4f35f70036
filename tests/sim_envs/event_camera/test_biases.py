from __future__ import annotations

import pytest

from corrigible.errors import BiasRangeError, ConfigError, UnknownNameError
from corrigible.sim_envs.event_camera.biases import (
    BIAS_NAMES,
    CoarseFine,
    DavisBiases,
    jaer_to_libcaer_coarse,
    libcaer_to_jaer_coarse,
    pixel_params,
)


def test_jaer_prbp_6_119_is_about_44_pA():
    bias = CoarseFine.from_jaer(6, 119)
    assert bias.coarse == 1  # libcaer numbering ascends, jAER's descends
    assert bias.current_a == pytest.approx(44e-12, rel=0.01)


@pytest.mark.parametrize(
    ("name", "jaer", "expected_a"),
    [("PrSFBp", (7, 32), 1.38e-12), ("OnBn", (1, 63), 766e-9), ("OffBn", (5, 168), 0.498e-9)],
    ids=["PrSFBp-7-32", "OnBn-1-63", "OffBn-5-168"],
)
def test_paper_initial_bias_currents(name, jaer, expected_a):
    assert CoarseFine.from_jaer(*jaer).current_a == pytest.approx(expected_a, rel=0.01)


@pytest.mark.parametrize("coarse", range(8))
def test_coarse_conversion_round_trip(coarse):
    assert libcaer_to_jaer_coarse(jaer_to_libcaer_coarse(coarse)) == coarse
    assert jaer_to_libcaer_coarse(coarse) == 7 - coarse
    assert CoarseFine.from_jaer(coarse, 100).jaer_coarse == coarse


@pytest.mark.parametrize("coarse", range(8))
def test_current_round_trip(coarse):
    bias = CoarseFine(coarse=coarse, fine=200)
    assert CoarseFine.from_current(bias.current_a) == bias


def test_refractory_range_of_the_fast_loop_at_jaer_coarse_4():
    biases = DavisBiases.from_jaer()
    biases.set("RefrBp", coarse=4, fine=4, jaer=True)
    slow = pixel_params(biases).refractory_s
    biases.set("RefrBp", fine=57)
    fast = pixel_params(biases).refractory_s
    assert slow == pytest.approx(170e-6, rel=0.02)
    assert fast == pytest.approx(12e-6, rel=0.02)
    assert slow / fast == pytest.approx(57 / 4)


def test_thresholds_and_cutoff_from_paper_biases():
    p = pixel_params(DavisBiases.from_jaer())
    assert 0.3 < p.theta_on < 0.36
    assert 0.17 < p.theta_off < 0.22
    assert p.cutoff_hz == pytest.approx(1.38e-12 * 4.69e13, rel=0.02)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"fine": 256}, "0..255"),
        ({"fine": -1}, "0..255"),
        ({"coarse": 8}, "0..7"),
        ({"coarse": 9, "jaer": True}, "0..7"),
        ({"fine": 3.5}, "int"),
    ],
    ids=["fine-256", "fine-neg", "coarse-8", "jaer-coarse-9", "fine-float"],
)
def test_out_of_range_write_raises_clear_error_and_writes_nothing(kwargs, fragment):
    biases = DavisBiases.from_jaer()
    before = biases["RefrBp"]
    with pytest.raises(BiasRangeError) as info:
        biases.set("RefrBp", **kwargs)
    message = str(info.value)
    assert "RefrBp" in message and fragment in message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)
    assert biases["RefrBp"] == before


def test_unknown_bias_name_suggests_the_right_one():
    with pytest.raises(UnknownNameError, match="Did you mean 'RefrBp'"):
        DavisBiases.from_jaer().set("RefrBpp", fine=3)


def test_prophesee_aliases_address_davis_biases():
    biases = DavisBiases.from_jaer()
    biases.set("bias_refr", fine=11)
    biases.set("bias_diff_on", fine=70)
    biases.set("bias_diff_off", fine=150)
    biases.set("bias_fo", fine=40)
    assert biases["RefrBp"].fine == 11 and biases["OnBn"].fine == 70
    assert biases["OffBn"].fine == 150 and biases["PrSFBp"].fine == 40
    biases.set("bias_hpf", fine=41)
    assert biases.hpf_code == 41 and pixel_params(biases).hpf_hz == pytest.approx(1.0)
    with pytest.raises(BiasRangeError, match="0..120"):
        biases.set("bias_hpf", fine=121)


def test_register_word_follows_libcaer_bit_layout():
    word = CoarseFine(coarse=5, fine=0xAB).register_value("OnBn")
    assert (word >> 12) & 0x7 == 5
    assert (word >> 4) & 0xFF == 0xAB
    assert word & 0xF == 0b1111  # enabled, sexN (n-type), typeNormal, currentLevelNormal
    assert CoarseFine(coarse=5, fine=0xAB).register_value("PrBp") & 0b10 == 0  # p-type


def test_on_bias_below_diff_bias_is_rejected():
    biases = DavisBiases.from_jaer()
    biases.set("OnBn", coarse=0, fine=1)
    with pytest.raises(BiasRangeError, match="OnBn current"):
        pixel_params(biases)


def test_all_biases_are_required():
    with pytest.raises(ConfigError, match="missing"):
        DavisBiases({"PrBp": CoarseFine(coarse=1, fine=1)})
    assert len(DavisBiases.from_libcaer()) == len(BIAS_NAMES)
