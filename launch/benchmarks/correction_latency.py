"""`corrigible bench latency`: correction latency, from a correction's arrival to the redo.

The latency of a correction is the wall time from its arrival at the correction loop to the
first arm control step after it was applied (`AppliedCorrection.latency_s`, measured by
`corrections.onthefly.CorrectionLoop` with `time.perf_counter`): routing (grammar, else MiniLM),
interpretation, staging against what the camera sees, the commit, and the redone skill up to
its first control tick. It is the figure `corrigible demo` averages per round.

One run plays the demo tour (launch/evaluations/corrections_demo.py `TOUR`: three built-in
scenarios, the simulated corrector, MuJoCo) under the "none" memory condition, where every
task is corrected on the fly, with MiniLM loaded before timing starts (as in the demo), and
prints one row per scenario and one for all corrections:
n, p50, p95, max (ms) and whether the goal, p95 <= 50 ms over all corrections, is met.
`quick` plays round 1 only (10 corrections; p95 is then close to the max). The machine may be
shared: each row carries the 1-minute load average at the start and the end of the run.

Example:
    python -m corrigible.launch.benchmarks.correction_latency --quick

(`corrigible bench latency` once it is registered in launch/bench.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

GOAL_P95_MS = 50.0


def _stats(values_s: list[float]) -> dict[str, Any]:
    ms = [1000.0 * v for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1) if ms else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
    }


def measure(*, rounds: int | None = None, engine: str = "mujoco") -> dict[str, Any]:
    """Plays the tour under "none"; returns every applied correction's latency and text.

    Args:
        rounds: the tour's first `rounds` rounds (None: all three).
        engine: physics engine.
    """
    from corrigible.corrections.scenarios import load_scenarios
    from corrigible.launch.evaluations.corrections_demo import (
        LearningPlan,
        make_demo_router,
        run_scenario,
        tour,
    )

    scenarios, selection = tour(load_scenarios(None))
    plan = LearningPlan(engine=engine, selection=selection, conditions=("none",), rounds=rounds)
    router = make_demo_router(None)  # MiniLM loaded now: start-up, not correction latency
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    samples: list[dict[str, Any]] = []
    for scenario in scenarios:
        for task in run_scenario(scenario, "none", plan, router=router):
            # `latencies_s` lists the task's applied corrections that reached an arm step.
            texts = task.correction_texts
            for i, latency in enumerate(task.latencies_s):
                text = texts[i] if len(texts) == len(task.latencies_s) else None
                samples.append({"scenario": task.scenario, "text": text, "latency_s": latency})
    return {
        "samples": samples,
        "wall_s": time.perf_counter() - t0,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "engine": engine,
    }


def run_bench(quick: bool = False) -> Iterator[dict[str, Any]]:
    """One row per scenario, then the overall row with the goal."""
    result = measure(rounds=1 if quick else None)
    samples = result["samples"]
    common = {
        "benchmark": "correction_latency",
        "engine": result["engine"],
        "load_1min_start": round(result["load_start"], 2),
        "load_1min_end": round(result["load_end"], 2),
    }
    for scenario in dict.fromkeys(s["scenario"] for s in samples):
        mine = [s["latency_s"] for s in samples if s["scenario"] == scenario]
        yield {**common, "scenario": scenario, **_stats(mine)}
    overall = _stats([s["latency_s"] for s in samples])
    p95 = overall["p95_ms"]
    yield {
        **common,
        "scenario": "all",
        **overall,
        "goal_p95_ms": GOAL_P95_MS,
        "goal_met": p95 is not None and p95 <= GOAL_P95_MS,
        "wall_s": round(result["wall_s"], 1),
        "slowest": [
            {"text": s["text"], "ms": round(1000 * s["latency_s"], 1)}
            for s in sorted(samples, key=lambda s: -s["latency_s"])[:3]
        ],
    }


def main() -> None:
    """Command line: prints one JSON row per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="round 1 of the tour only")
    args = parser.parse_args()
    for row in run_bench(quick=args.quick):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
