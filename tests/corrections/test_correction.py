from __future__ import annotations

import pytest

from corrigible.corrections.correction import Correction
from corrigible.errors import CorrigibleError, InvalidCorrectionError


def test_valid_round_trip():
    c = Correction(text="a bit more to the left", time=3.5, episode="ep-1", step=12)
    assert c.source == "typed"
    assert Correction.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   "}, "empty"),
        ({"text": "x" * 501}, "501 characters"),
        ({"text": "stop\x1b[2J"}, "control character"),
        ({"text": "left\nright"}, "control character"),
        ({"time": -1.0}, "time"),
        ({"time": float("nan")}, "time"),
        ({"episode": ""}, "episode"),
        ({"step": -2}, "step"),
        ({"source": "telepathy"}, "source"),
    ],
    ids=[
        "empty",
        "blank",
        "too-long",
        "escape",
        "newline",
        "neg-time",
        "nan-time",
        "no-episode",
        "neg-step",
        "bad-source",
    ],
)
def test_invalid_fields_are_named(fields, needle):
    base = {"text": "slower", "time": 1.0, "episode": "ep-1"}
    with pytest.raises(InvalidCorrectionError, match=needle) as info:
        Correction(**(base | fields))
    assert isinstance(info.value, CorrigibleError) and isinstance(info.value, ValueError)


def test_500_chars_is_allowed():
    assert len(Correction(text="a" * 500, time=0, episode="e").text) == 500


def test_unknown_key_in_from_dict():
    with pytest.raises(InvalidCorrectionError, match="unknown Correction field"):
        Correction.from_dict({"text": "stop", "time": 0, "episode": "e", "mood": "cross"})
