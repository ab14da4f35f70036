"""Runs the hostile-program set through the sandbox and counts outcomes, escapes and misses.

Each file in `hostile-programs/` (package data, not an importable package) starts with
`# attempt: ...` and `# expect: CLASS` (alternatives joined by '|', or `ok` for benign
programs); optional headers in its first ten lines tighten the check:

- `# expect-line: N` (or `N|M`): the line the result must report;
- `# expect-message: TEXT`: a fragment the result's message must contain;
- `# max-api-calls: N`: at most N API calls may be served (more means the program acted after
  it should have been stopped).

Unparsable programs are stored as `.txt`.

An escape is any evidence of an effect beyond the robot API or a limit that did not hold: a
marker file `/tmp/corrigible_escape_<name>` (every payload aims there), a file in the child's
private working directory, a child process still alive after the run, an attack that ran to
"ok", more API calls than `max-api-calls`, or a run longer than `wall_time_s` (plus start-up
and a second of slack). A result is misclassified when its outcome is not an expected one, its
line or message is not the expected one, an error comes without a message, or its JSON is not
strict or is larger than `RESULT_JSON_MAX_BYTES`.

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
from corrigible.policies.sandbox.result import RESULT_JSON_MAX_BYTES, SandboxResult

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

_HEADER_LINES = 10  # the headers sit in a program's first lines
_WALL_SLACK_S = 1.0  # s past wall_time_s (start-up excluded) a run may take to be stopped
# s one call of the fake `slow_skill` sleeps at most. Not a divisor of wall_time_s (3 s): with
# 0.5 s the sixth call ended right at the deadline, and on a loaded machine the deadline now and
# then fell between two calls, not inside one (the program is still stopped; its message then
# names no call). With 0.7 s the deadline lands 0.2 s into the fifth call.
_SLOW_SKILL_MAX_S = 0.7

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
    expected_lines: tuple[int, ...] = ()  # the reported line must be one of these, if any
    expected_message: str = ""  # a fragment the message must contain, if any
    max_api_calls: int | None = None  # API calls that may be served, if limited

    @property
    def expected_class(self) -> str:
        """The `# expect:` header as written ("timeout|memory"), the key bench rows use."""
        return "|".join(self.expected)

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
        headers: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines()[:_HEADER_LINES]:
            key, sep, value = line.removeprefix("# ").partition(":")
            if line.startswith("# ") and sep and key in _HEADERS:
                headers[key] = value.strip()
        if "expect" not in headers:
            raise ValueError(f"{path} lacks a '# expect:' header")
        programs.append(
            HostileProgram(
                path.stem,
                path,
                headers.get("attempt", ""),
                tuple(p.strip() for p in headers["expect"].split("|")),
                expected_lines=tuple(
                    int(n) for n in headers.get("expect-line", "").split("|") if n.strip()
                ),
                expected_message=headers.get("expect-message", ""),
                max_api_calls=(
                    int(headers["max-api-calls"]) if "max-api-calls" in headers else None
                ),
            )
        )
    return programs


_HEADERS = frozenset({"attempt", "expect", "expect-line", "expect-message", "max-api-calls"})


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

    def slow_skill(seconds: Any) -> str:
        """A skill that takes time in the parent (at most `_SLOW_SKILL_MAX_S` per call)."""
        time.sleep(min(max(float(seconds), 0.0), _SLOW_SKILL_MAX_S))
        return "done"

    return {
        "get_obj_names": get_obj_names,
        "get_obj_pos": get_obj_pos,
        "pick_place": pick_place,
        "say": say,
        "echo": echo,
        "unsafe_move": unsafe_move,
        "fail_skill": fail_skill,
        "slow_skill": slow_skill,
    }


@dataclass
class HostileOutcome:
    """What running one hostile program produced and whether it counts as defended."""

    program: HostileProgram
    result: SandboxResult
    escapes: list[str]  # evidence of effects beyond the API or limits not held; must stay empty
    contract: list[str]  # how the result broke its contract (line, message, JSON); stays empty

    @property
    def outcome(self) -> str:
        """'ok' or the error class value."""
        return "ok" if self.result.is_ok else str(self.result.error_class)

    @property
    def matched(self) -> bool:
        """True when the outcome is one of the expected ones."""
        return self.outcome in self.program.expected

    @property
    def misclassified(self) -> bool:
        """True when the outcome is unexpected or the result breaks its contract."""
        return not self.matched or bool(self.contract)

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-able summary row."""
        return {
            "name": self.program.name,
            "expected": list(self.program.expected),
            "outcome": self.outcome,
            "line": self.result.line,
            "message": self.result.message[:200],
            "escapes": self.escapes,
            "contract": self.contract,
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
    startup: list[float] = []  # s from spawn to the program's start

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "started":
            if isinstance(event.get("pid"), int):
                pids.append(event["pid"])
            startup.append(float(event.get("startup_s") or 0.0))

    result = run_program(program.source, fake_api(), limits, on_event=on_event)
    escapes = list(result.violations)
    if marker.exists():
        escapes.append(f"marker file {marker} was created")
        marker.unlink(missing_ok=True)
    escapes += [f"child process {pid} is still alive" for pid in pids if _is_alive(pid)]
    if result.is_ok and "ok" not in program.expected:
        escapes.append("an attack ran to completion")
    calls = len(result.api_calls)
    if program.max_api_calls is not None and calls > program.max_api_calls:
        escapes.append(f"{calls} API calls were served, at most {program.max_api_calls} allowed")
    running = result.duration_s - (startup[0] if startup else 0.0)
    if running > limits.wall_time_s + _WALL_SLACK_S:
        escapes.append(f"ran {running:.1f} s against wall_time_s={limits.wall_time_s:g}")
    return HostileOutcome(program, result, escapes, result_contract(program, result))


def result_contract(program: HostileProgram, result: SandboxResult) -> list[str]:
    """Ways `result` breaks what the program's headers and `SandboxResult.to_json` promise."""
    broken = []
    if program.expected_lines and result.line not in program.expected_lines:
        broken.append(f"line {result.line}, expected {program.expected_lines}")
    if program.expected_message and program.expected_message not in result.message:
        broken.append(f"message lacks {program.expected_message!r}")
    if not result.is_ok and not result.message.strip():
        broken.append("an error without a message")
    text = json.dumps(result.to_json())
    if len(text) > RESULT_JSON_MAX_BYTES:
        broken.append(f"result JSON is {len(text)} bytes, over {RESULT_JSON_MAX_BYTES}")
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        broken.append(f"result JSON is not strict: {exc}")
    return broken


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def iter_hostile_suite(
    limits: SandboxLimits = SUITE_LIMITS, workers: int = 2
) -> Iterator[HostileOutcome]:
    """Yields the outcome of every hostile program (in name order), `workers` at a time."""
    programs = load_hostile_programs()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(lambda p: run_hostile_program(p, limits), programs)


def run_hostile_suite(limits: SandboxLimits = SUITE_LIMITS, workers: int = 2) -> dict[str, Any]:
    """Runs the whole set; returns totals and, per expected class, count, escapes and misses.

    Returns:
        A JSON-able dict: total, escapes and misclassified (both must be 0), matched,
        by_class ({expected class: {count, escapes, misclassified}}), by_outcome,
        mismatches (name, expected, outcome, message, contract) and escaped (name, evidence).
    """
    started = time.monotonic()
    outcomes = list(iter_hostile_suite(limits, workers))
    by_class: dict[str, dict[str, int]] = {}
    for o in sorted(outcomes, key=lambda o: o.program.expected_class):
        row = by_class.setdefault(
            o.program.expected_class, {"count": 0, "escapes": 0, "misclassified": 0}
        )
        row["count"] += 1
        row["escapes"] += bool(o.escapes)
        row["misclassified"] += o.misclassified
    by_outcome = Counter(o.outcome for o in outcomes)
    return {
        "total": len(outcomes),
        "escapes": sum(1 for o in outcomes if o.escapes),
        "misclassified": sum(1 for o in outcomes if o.misclassified),
        "matched": sum(1 for o in outcomes if o.matched),
        "by_class": by_class,
        "by_outcome": dict(sorted(by_outcome.items())),
        "mismatches": [o.to_json() for o in outcomes if o.misclassified],
        "escaped": [o.to_json() for o in outcomes if o.escapes],
        "duration_s": round(time.monotonic() - started, 2),
    }


def main() -> None:
    """Prints the full hostile-set report as JSON.

    `corrigible bench sandbox` adds start-up latency and the hostile-instruction corpus.
    """
    print(json.dumps(run_hostile_suite(), indent=2))


if __name__ == "__main__":
    main()
