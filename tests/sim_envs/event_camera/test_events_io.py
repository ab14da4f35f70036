from __future__ import annotations

import numpy as np
import pytest

from corrigible.errors import ConfigError
from corrigible.sim_envs.event_camera.events_io import EVENT_DTYPE, read_events, write_events


def _events(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 10**6, n))
    ev["x"] = rng.integers(0, 346, n)
    ev["y"] = rng.integers(0, 260, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


@pytest.mark.parametrize("suffix", [".h5", ".npz"], ids=["hdf5", "numpy"])
@pytest.mark.parametrize("n", [0, 1000], ids=["empty", "1000"])
def test_write_read_round_trip(tmp_path, suffix, n):
    events = _events(n)
    path = write_events(
        tmp_path / f"ev{suffix}", events, width=346, height=260, meta={"biases": {"PrBp": [6, 1]}}
    )
    back, meta = read_events(path)
    assert back.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(back, events)
    assert meta["width"] == 346 and meta["height"] == 260 and meta["t_unit"] == "us"
    assert meta["biases"] == {"PrBp": [6, 1]}


def test_hdf5_columns_are_plain_datasets(tmp_path):
    import h5py

    path = write_events(tmp_path / "ev.h5", _events(10), width=4, height=3)
    with h5py.File(path) as f:
        assert sorted(f["events"]) == ["p", "t", "x", "y"]
        assert f["events/t"].dtype == np.int64


def test_unknown_suffix_and_wrong_dtype_raise(tmp_path):
    with pytest.raises(ConfigError, match="suffix"):
        write_events(tmp_path / "ev.csv", _events(2), width=4, height=3)
    with pytest.raises(ConfigError, match="dtype"):
        write_events(tmp_path / "ev.h5", np.zeros(3), width=4, height=3)
