"""Limits for one sandboxed program run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from corrigible.errors import ConfigError

# Below this the interpreter plus NumPy cannot even start (about 100 MB of address space).
_MIN_MEMORY_MB = 160
# Upper bounds: beyond them a value is a typo, and the OS calls that apply it would overflow.
MAX_TIME_S = 86_400.0  # s, one day, for every time limit
_MAX_MEMORY_MB = 1 << 20  # MiB, 1 TiB of address space
_MAX_COUNT = 1 << 40  # every count and byte limit


@dataclass(kw_only=True, frozen=True)
class SandboxLimits:
    """Resource limits for one program; every field is checked on construction.

    The parent enforces every limit from outside the child, so nothing the program does can
    switch one off: wall-clock time is the whole run after start-up, time inside robot API
    calls included (only paused time is excluded; a skill that overruns is stopped at its next
    `SandboxControl.checkpoint()`); CPU time is read from /proc (RLIMIT_CPU as a backstop);
    `max_steps` and `max_line_cpu_s` are checked against a step counter the child keeps in
    shared memory, whose line tracer re-arms itself if the program switches it off.
    """

    wall_time_s: float = 60.0  # s, whole run after start-up, API calls included, pauses not
    cpu_time_s: float = 10.0  # s, child CPU time, read from /proc; RLIMIT_CPU as a backstop
    memory_mb: int = 512  # MiB, total child address space (RLIMIT_AS), NumPy included
    max_output_bytes: int = 64 * 1024  # bytes of print() output kept; more stops the program
    max_api_calls: int = 1000  # calls to the robot API per run
    max_source_bytes: int = 64 * 1024  # bytes of program source (UTF-8)
    max_message_bytes: int = 256 * 1024  # bytes of one API call's JSON arguments
    max_api_bytes: int = 8 * 1024 * 1024  # bytes of API arguments summed over the run
    max_steps: int = 50_000_000  # program lines executed (a second guard against endless loops)
    max_line_cpu_s: float = 5.0  # s of child CPU without reaching a new line (one huge NumPy
    # call, or a line tracer the program managed to switch off)
    max_trace_lines: int = 10_000  # line numbers kept in the trace; later ones are only counted
    interrupt_grace_s: float = 0.5  # s the program gets to unwind after an interrupt

    def __post_init__(self) -> None:
        positive_floats = ("wall_time_s", "cpu_time_s", "interrupt_grace_s", "max_line_cpu_s")
        for name in positive_floats:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not 0 < value <= MAX_TIME_S
            ):
                raise ConfigError(
                    f"SandboxLimits.{name} must be a finite number of seconds in (0, "
                    f"{MAX_TIME_S:g}], got {value!r}; pass e.g. {name}=5.0."
                )
        positive_ints = (
            "memory_mb",
            "max_output_bytes",
            "max_api_calls",
            "max_source_bytes",
            "max_message_bytes",
            "max_api_bytes",
            "max_steps",
            "max_trace_lines",
        )
        for name in positive_ints:
            value = getattr(self, name)
            top = _MAX_MEMORY_MB if name == "memory_mb" else _MAX_COUNT
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= top:
                raise ConfigError(
                    f"SandboxLimits.{name} must be an integer in [1, {top}], got {value!r}; "
                    f"use the default {getattr(SandboxLimits, name)!r} if unsure."
                )
        if self.memory_mb < _MIN_MEMORY_MB:
            raise ConfigError(
                f"SandboxLimits.memory_mb={self.memory_mb} is below the {_MIN_MEMORY_MB} MiB the "
                "interpreter and NumPy need to start; raise it (default 512)."
            )

    def to_json(self) -> dict[str, Any]:
        """Returns the limits as a JSON-able dict (sent to the child, logged in traces)."""
        return asdict(self)
