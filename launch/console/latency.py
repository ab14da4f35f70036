"""Measures the console's interrupt latencies on real sessions (MuJoCo, the real router).

Example:
    python -m corrigible.launch.console.latency --runs 5 --out runs/console-latency.json

For each run it starts the default pick-and-place, waits until the arm moves, then (after a
seeded random delay of up to 0.3 s) gives one request through the console, as a key or the
Enter key would: a stop (request -> halted arm), a pause (request -> held arm; five per run) or
the correction "a bit to the left" (request -> halted arm, and -> the first control tick of the
redone skill with the changed command). The latencies are the run gate's own records (wall
time, `time.perf_counter`), the same figures the trace carries ("motion.halted",
"motion.paused", "motion.command_changed").
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from corrigible.launch.console.driver import ConsoleSession, ConsoleSettings


def _wait(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("the session did not get there in time")
        time.sleep(0.002)


def _moving(console: ConsoleSession) -> bool:
    assert console.session is not None and console.session.env is not None
    return console.state().skill is not None and console.session.env.arm.measured_speed > 0.02


def _one_run(kind: str, rng: random.Random, kb: Path) -> list[dict[str, Any]]:
    console = ConsoleSession(ConsoleSettings(kb=kb, correction_timeout_s=1.0, learn=False, seed=0))
    console.start()
    try:
        _wait(lambda: console.wait_ready(0) and _moving(console), 120)
        time.sleep(rng.uniform(0.0, 0.3))
        if kind == "stop":
            console.stop()
        elif kind == "correct":
            console.correct("a bit to the left")
        else:
            for _ in range(5):
                _wait(lambda: _moving(console), 60)
                console.pause()
                time.sleep(0.1)
                console.resume()
                time.sleep(rng.uniform(0.05, 0.3))
        _wait(lambda: console.join(0), 120)
        assert console.session is not None and console.session.gate is not None
        return list(console.session.gate.latencies)
    finally:
        console.close()


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2) if values else float("nan"),
        "max_ms": round(max(values), 2) if values else float("nan"),
    }


def measure(runs: int = 5, seed: int = 0) -> dict[str, Any]:
    """Runs `runs` sessions per request kind; returns p50 / max per latency."""
    rng = random.Random(seed)
    out: dict[str, list[float]] = {
        "stop_to_halt": [],
        "pause_to_hold": [],
        "correction_to_halt": [],
        "correction_to_changed_command": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            for kind in ("stop", "pause", "correct"):
                for rec in _one_run(kind, rng, Path(tmp) / f"kb-{kind}-{i}"):
                    if rec["event"] == "motion.halted" and rec.get("cause") == "stop":
                        out["stop_to_halt"].append(rec["latency_ms"])
                    elif rec["event"] == "motion.paused":
                        out["pause_to_hold"].append(rec["latency_ms"])
                    elif rec["event"] == "motion.halted" and rec.get("cause") == "correction":
                        out["correction_to_halt"].append(rec["latency_ms"])
                    elif rec["event"] == "motion.command_changed":
                        out["correction_to_changed_command"].append(rec["latency_ms"])
    return {name: _stats(values) for name, values in out.items()}


def main() -> None:
    """Command line: prints (and optionally writes) the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="sessions per request kind")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random delays")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args()
    figures = measure(args.runs, args.seed)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
