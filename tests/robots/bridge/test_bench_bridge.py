"""`corrigible bench bridge --quick` measures real round trips and rates, then leaves nothing.

The benchmark drives the project's server and a node over real MuJoCo sessions with real
roslibpy clients; the rows must hold measured, mutually consistent figures, and every server,
worker and session thread it started must be gone afterwards.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from corrigible.launch.benchmarks.bridge import run_bench


def _bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("rosbridge", "bridge-"))]


def test_the_quick_benchmark_measures_real_round_trips_and_rates(router: Any) -> None:
    before = _bridge_threads()
    rows = list(run_bench(quick=True, router=router))

    assert [(r["measure"], r["clients"]) for r in rows] == [
        ("joint_states_rate", 1),
        ("joint_states_rate", 10),
        ("correction_round_trip", 1),
        ("correction_round_trip", 10),
    ]
    assert all(r["benchmark"] == "bridge" and "loadavg" in r["note"] for r in rows)
    for row in rows[:2]:
        # the node publishes at 20 Hz between episodes; every client hears most of them
        assert 5.0 < row["hz_min"] <= row["hz"] <= row["hz_max"] < 25.0, row
        expected = row["hz"] * row["window_s"] * row["clients"]
        assert abs(row["n"] - expected) <= 2 * row["clients"] + 0.2 * expected, row
    for row in rows[2:]:
        assert row["n"] >= 10 and row["sent"] == row["n"] + row["discarded"], row
        assert 0.0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"] < 60_000.0, row
        assert sum(row["reply_status"].values()) == row["n"], row
        assert row["warmup_ms"] is not None and row["warmup_ms"] > 0.0, row
    # the server, its pools (shut down without waiting) and the node's worker all end
    deadline = time.monotonic() + 10.0
    while _bridge_threads() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _bridge_threads() == before
