"""What one sandboxed program run produced: status, error class, offending line and the trace."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal


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

    def to_json(self) -> dict[str, Any]:
        """Returns one JSON-able dict (the object `corrigible exec` prints)."""
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
        }
