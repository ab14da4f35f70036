"""Runs the hostile-program set through the sandbox and counts outcomes and escapes.

Each file in `hostile-programs/` (package data, not an importable package) starts with
`# attempt: ...` and `# expect: CLASS` (alternatives joined by '|', or `ok` for benign
programs). Unparsable programs are stored as `.txt`.

An escape is any evidence of an effect beyond the robot API: a marker file
`/tmp/corrigible_escape_<name>` (every payload aims there), a file in the child's private
working directory, a child process still alive after the run, or an attack that ran to "ok".

Example:
    python -m corrigible.policies.sandbox.hostile_report
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import SafetyError, SkillError, UnknownObjectError
from corrigible.policies.sandbox.config_sandbox import SandboxLimits
from corrigible.policies.sandbox.executor import run_program
from corrigible.policies.sandbox.result import SandboxResult

# The program files: package data installed beside this module (not an importable package).
HOSTILE_DIR = Path(__file__).with_name("hostile-programs")
MARKER_PREFIX = "/tmp/corrigible_escape_"

# Short limits so the whole set runs in well under a minute on two cores.
SUITE_LIMITS = SandboxLimits(
    wall_time_s=3.0,
    cpu_time_s=1.0,
    memory_mb=256,
    max_output_bytes=4096,
    max_api_calls=50,
    max_message_bytes=64 * 1024,
)

_OBJECTS = {
    "red block": [0.1, -0.5, 0.02],
    "blue block": [-0.1, -0.4, 0.02],
    "green bowl": [0.0, -0.6, 0.0],
    "__class__": [0.0, 0.0, 0.0],  # a hostile-looking name that is only data
}


@dataclass(frozen=True)
class HostileProgram:
    """One program of the set, with what it attempts and the outcomes that count as defended."""

    name: str
    path: Path
    attempt: str
    expected: tuple[str, ...]  # error class values, or ("ok",)

    @property
    def source(self) -> str:
        """The program text (header comments included; they are just comments)."""
        return self.path.read_text(encoding="utf-8")


def load_hostile_programs(directory: Path = HOSTILE_DIR) -> list[HostileProgram]:
    """Reads every `*.py` and `*.txt` program in `directory`, sorted by name."""
    programs = []
    for path_str in sorted(
        glob.glob(str(directory / "*.py")) + glob.glob(str(directory / "*.txt"))
    ):
        path = Path(path_str)
        attempt, expected = "", ()
        for line in path.read_text(encoding="utf-8").splitlines()[:5]:
            if line.startswith("# attempt:"):
                attempt = line.split(":", 1)[1].strip()
            elif line.startswith("# expect:"):
                expected = tuple(p.strip() for p in line.split(":", 1)[1].split("|"))
        if not expected:
            raise ValueError(f"{path} lacks a '# expect:' header")
        programs.append(HostileProgram(path.stem, path, attempt, expected))
    return programs


def fake_api() -> dict[str, Callable[..., Any]]:
    """Harmless parent-side stand-ins for the robot API (perception, skills, speech)."""

    def get_obj_names() -> list[str]:
        return list(_OBJECTS)

    def get_obj_pos(name: str) -> np.ndarray:
        if name not in _OBJECTS:
            raise UnknownObjectError(f"no object named {name!r}; known: {sorted(_OBJECTS)}")
        return np.asarray(_OBJECTS[name], dtype=float)

    def pick_place(obj: str, target: Any) -> dict[str, Any]:
        return {"picked": obj, "placed_at": np.asarray(target, dtype=float).tolist()}

    def say(*args: Any) -> None:
        return None

    def echo(value: Any) -> Any:
        return value

    def unsafe_move(position: Any) -> None:
        raise SafetyError(f"target {position} is outside the workspace; no motion happened")

    def fail_skill(name: str) -> None:
        raise SkillError(f"could not grasp {name!r}: gripper closed on nothing")

    return {
        "get_obj_names": get_obj_names,
        "get_obj_pos": get_obj_pos,
        "pick_place": pick_place,
        "say": say,
        "echo": echo,
        "unsafe_move": unsafe_move,
        "fail_skill": fail_skill,
    }


@dataclass
class HostileOutcome:
    """What running one hostile program produced and whether it counts as defended."""

    program: HostileProgram
    result: SandboxResult
    escapes: list[str]  # evidence of effects beyond the API; must stay empty

    @property
    def outcome(self) -> str:
        """'ok' or the error class value."""
        return "ok" if self.result.is_ok else str(self.result.error_class)

    @property
    def matched(self) -> bool:
        """True when the outcome is one of the expected ones."""
        return self.outcome in self.program.expected

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-able summary row."""
        return {
            "name": self.program.name,
            "expected": list(self.program.expected),
            "outcome": self.outcome,
            "line": self.result.line,
            "message": self.result.message[:200],
            "escapes": self.escapes,
            "duration_s": round(self.result.duration_s, 3),
        }


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0); it is dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def run_hostile_program(
    program: HostileProgram, limits: SandboxLimits = SUITE_LIMITS
) -> HostileOutcome:
    """Runs one program and collects escape evidence."""
    marker = Path(MARKER_PREFIX + program.name)
    marker.unlink(missing_ok=True)
    pids: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "started" and isinstance(event.get("pid"), int):
            pids.append(event["pid"])

    result = run_program(program.source, fake_api(), limits, on_event=on_event)
    escapes = list(result.violations)
    if marker.exists():
        escapes.append(f"marker file {marker} was created")
        marker.unlink(missing_ok=True)
    escapes += [f"child process {pid} is still alive" for pid in pids if _is_alive(pid)]
    if result.is_ok and "ok" not in program.expected:
        escapes.append("an attack ran to completion")
    return HostileOutcome(program, result, escapes)


def iter_hostile_suite(
    limits: SandboxLimits = SUITE_LIMITS, workers: int = 2
) -> Iterator[HostileOutcome]:
    """Yields the outcome of every hostile program (in name order), `workers` at a time."""
    programs = load_hostile_programs()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(lambda p: run_hostile_program(p, limits), programs)


def run_hostile_suite(limits: SandboxLimits = SUITE_LIMITS, workers: int = 2) -> dict[str, Any]:
    """Runs the whole set; returns counts per expected class and outcome, escapes and misses.

    Returns:
        A JSON-able dict: total, escapes (must be 0), matched, by_expected, by_outcome,
        mismatches (name, expected, outcome, message) and escaped (name, evidence).
    """
    started = time.monotonic()
    outcomes = list(iter_hostile_suite(limits, workers))
    by_expected = Counter("|".join(o.program.expected) for o in outcomes)
    by_outcome = Counter(o.outcome for o in outcomes)
    return {
        "total": len(outcomes),
        "escapes": sum(1 for o in outcomes if o.escapes),
        "matched": sum(1 for o in outcomes if o.matched),
        "by_expected": dict(sorted(by_expected.items())),
        "by_outcome": dict(sorted(by_outcome.items())),
        "mismatches": [o.to_json() for o in outcomes if not o.matched],
        "escaped": [o.to_json() for o in outcomes if o.escapes],
        "duration_s": round(time.monotonic() - started, 2),
    }


def measure_latency(repeats: int = 5) -> dict[str, float]:
    """Measures child start-up (spawn to program start) and one API round trip, in seconds."""
    startup: list[float] = []
    round_trip: list[float] = []
    calls = 200
    source = f"for i in range({calls}):\n    echo(i)\n"
    for _ in range(repeats):
        events: list[dict[str, Any]] = []
        result = run_program(source, {"echo": lambda x: x}, on_event=events.append)
        if not result.is_ok:
            raise RuntimeError(f"latency probe failed: {result.message}")
        startup += [e["startup_s"] for e in events if e.get("type") == "started"]
        t_starts = [c["t_start"] for c in result.api_calls]
        round_trip.append((t_starts[-1] - t_starts[0]) / (len(t_starts) - 1))
    return {
        "child_startup_s": float(np.median(startup)),
        "api_round_trip_s": float(np.median(round_trip)),
    }


def run_bench(quick: bool = True) -> Iterator[dict[str, Any]]:
    """Benchmark rows for `corrigible bench` (latencies, then the hostile-set summary)."""
    yield {"bench": "sandbox_latency", **measure_latency(3 if quick else 10)}
    summary = run_hostile_suite()
    yield {
        "bench": "sandbox_hostile",
        **{k: v for k, v in summary.items() if k not in ("mismatches", "escaped")},
    }


def main() -> None:
    """Prints the latency row and the full hostile-set report as JSON."""
    print(json.dumps({"latency": measure_latency(), "hostile": run_hostile_suite()}, indent=2))


if __name__ == "__main__":
    main()
