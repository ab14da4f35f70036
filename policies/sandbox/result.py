"""What one sandboxed program run produced: status, error class, offending line and the trace."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Literal

# The most bytes `SandboxResult.to_json()` produces (what `corrigible exec` prints): longer
# sections are cut, largest first, and the dict says so ("truncated", "omitted").
RESULT_JSON_MAX_BYTES = 64 * 1024
_MIN_JSON_BYTES = 4096  # below this even an empty result might not fit
# Sections that may be cut, and the other fields' caps (a message is never long in practice;
# the cap holds whatever text a program or an API error put into it).
_CUTTABLE = ("output", "api_calls", "lines", "problems", "message", "hardening", "violations")


class ErrorClass(enum.StrEnum):
    """Why a program failed; one value per distinct next step for the planner.

    Values are stable strings (they appear in the JSON that `corrigible exec` prints).
    """

    SYNTAX = "syntax"  # the source does not parse: regenerate or fix the code
    FORBIDDEN = "forbidden"  # a sandbox rule was broken (import, dunder, exec, ...): rewrite
    UNKNOWN_API = "unknown_api"  # a called name does not exist: define it (fgen) or rename
    RUNTIME = "runtime"  # an uncaught exception, including a failed skill: fix the logic
    TIMEOUT = "timeout"  # wall-clock, CPU-time or step limit: look for an endless loop
    MEMORY = "memory"  # the address-space limit was hit: allocate less
    LIMIT = "limit"  # a count limit (output bytes, API calls, argument bytes): do less
    SAFETY = "safety"  # the safety envelope refused a command and the program did not catch it
    INTERRUPTED = "interrupted"  # the operator interrupted the run through SandboxControl
    INTERNAL = "internal"  # the sandbox itself failed (child crashed, protocol broken)


Status = Literal["ok", "error"]


@dataclass(kw_only=True)
class SandboxResult:
    """The outcome and execution trace of one program run.

    `api_calls` entries are dicts with keys name, args, kwargs, result or error, t_start (seconds
    since the run started) and duration_s. `lines` holds the program lines reached, in order,
    up to `SandboxLimits.max_trace_lines`; `line_count` counts all of them.
    """

    status: Status  # "ok" or "error"
    error_class: ErrorClass | None = None  # None when status is "ok"
    line: int | None = None  # offending (or, on timeout, last reached) 1-based program line
    message: str = ""  # human-readable; says what was wrong and what to do next
    output: str = ""  # captured print() text, truncated at max_output_bytes
    output_truncated: bool = False  # True when print output hit the cap
    api_calls: list[dict[str, Any]] = field(default_factory=list)  # skill and perception calls
    lines: list[int] = field(default_factory=list)  # line numbers reached, capped
    line_count: int = 0  # total line events, including those beyond the cap
    duration_s: float = 0.0  # wall-clock seconds for the whole run, start-up included
    cpu_time_s: float | None = None  # child CPU seconds, when the child was reaped
    problems: list[dict[str, Any]] = field(default_factory=list)  # static problems, if any
    hardening: list[str] = field(default_factory=list)  # OS-level measures the child applied
    violations: list[str] = field(default_factory=list)  # tripwires hit (should stay empty)

    @property
    def is_ok(self) -> bool:
        """True when the program ran to completion."""
        return self.status == "ok"

    def to_json(self, max_bytes: int | None = RESULT_JSON_MAX_BYTES) -> dict[str, Any]:
        """Returns one strict-JSON-able dict (the object `corrigible exec` prints).

        Args:
            max_bytes: the most bytes `json.dumps` of the dict may take (default 64 KiB), or
                None for no cap. Over the cap, the largest of output, api_calls, lines,
                problems, message, hardening and violations is halved until it fits;
                `truncated` is then True and `omitted` counts what was cut per section
                (characters for text, items for lists).

        Raises:
            ValueError: `max_bytes` is below 4096.
        """
        data = self._full_json()
        if max_bytes is None:
            return data
        if max_bytes < _MIN_JSON_BYTES:
            raise ValueError(f"max_bytes must be at least {_MIN_JSON_BYTES}, got {max_bytes}")
        return _fit(data, max_bytes)

    def _full_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error_class": None if self.error_class is None else str(self.error_class),
            "line": self.line,
            "message": self.message,
            "output": self.output,
            "output_truncated": self.output_truncated,
            "api_calls": list(self.api_calls),
            "lines": list(self.lines),
            "line_count": self.line_count,
            "duration_s": round(self.duration_s, 6),
            "cpu_time_s": None if self.cpu_time_s is None else round(self.cpu_time_s, 6),
            "problems": list(self.problems),
            "hardening": list(self.hardening),
            "violations": list(self.violations),
            "truncated": False,
            "omitted": {},
        }


def _size(value: Any) -> int:
    return len(json.dumps(value, allow_nan=False))


def _fit(data: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Halves the largest cuttable section of `data` until its JSON fits in `max_bytes`."""
    if _size(data) <= max_bytes:
        return data
    data["truncated"] = True
    omitted: dict[str, int] = data["omitted"]
    while _size(data) > max_bytes:
        key = max(_CUTTABLE, key=lambda k: _size(data[k]))
        value = data[key]
        if not value:
            break  # nothing left to cut (cannot happen above _MIN_JSON_BYTES)
        keep = len(value) // 2
        data[key] = value[:keep]
        omitted[key] = omitted.get(key, 0) + len(value) - keep
        if key == "output":
            data["output_truncated"] = True
    return data
