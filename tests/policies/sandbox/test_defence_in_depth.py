"""With the AST rules switched off, the OS layers of the child still contain the program.

These tests run programs that really escape Python-level restrictions (subclass walks to `os`
and `ctypes`) and check that files, processes, sockets, signals and limits stay out of reach.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from corrigible.policies.sandbox import ErrorClass, SandboxLimits, SandboxResult, run_program

MARKER = Path("/tmp/corrigible_escape_defence_in_depth")


def _run_without_ast_rules(source: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Runs `source` with the AST rules switched off in parent and child, and no API."""
    return run_program(source, {}, limits, ast_rules=False)


_ESCAPE_PRELUDE = """
subs = ().__class__.__base__.__subclasses__()
wrap = [c for c in subs if c.__name__ == "_wrap_close"][0]
osmod = wrap.__init__.__globals__
CDLL = [c for c in subs if c.__name__ == "CDLL"][0]
libc = CDLL(None)
results = {}
def attempt(label, fn):
    try:
        results[label] = repr(fn())
    except Exception as exc:
        results[label] = "blocked:" + exc.__class__.__name__
"""

_ATTACKS = """
attempt("os_open_write", lambda: osmod["open"](MARKER, 0o101, 0o644))
attempt("os_open_read", lambda: osmod["open"]("/etc/hostname", 0))
attempt("os_listdir", lambda: osmod["listdir"]("/"))
attempt("os_fork", lambda: osmod["fork"]())
attempt("os_system", lambda: osmod["system"]("touch " + MARKER))
attempt("os_kill_parent", lambda: osmod["kill"](osmod["getppid"](), 0))
attempt("os_chdir", lambda: osmod["chdir"]("/"))
attempt("libc_socket", lambda: libc.socket(2, 1, 0))
attempt("libc_fork", lambda: libc.fork())
attempt("libc_open", lambda: libc.open(MARKER.encode(), 0o101, 0o644))
attempt("libc_setrlimit", lambda: libc.setrlimit(9, None))
attempt("import_builtin", lambda: __import__("socket"))
attempt("uid", lambda: osmod["getuid"]())
print(results)
"""


@pytest.fixture
def escape_results() -> dict:
    MARKER.unlink(missing_ok=True)
    source = _ESCAPE_PRELUDE + f"MARKER = {str(MARKER)!r}\n" + _ATTACKS
    result = _run_without_ast_rules(source)
    assert result.is_ok, result.message
    assert not MARKER.exists(), "the escaped program created a file"
    assert result.violations == []
    return ast.literal_eval(result.output.strip())


def test_escaped_program_cannot_touch_files(escape_results: dict) -> None:
    assert escape_results["os_open_write"] == "blocked:PermissionError"
    assert escape_results["os_open_read"] == "blocked:PermissionError"
    assert escape_results["os_listdir"] == "blocked:PermissionError"
    assert escape_results["libc_open"] == "-1"
    assert escape_results["os_chdir"] == "blocked:PermissionError"


def test_escaped_program_cannot_spawn_signal_or_network(escape_results: dict) -> None:
    assert escape_results["os_fork"] == "blocked:PermissionError"
    assert escape_results["libc_fork"] == "-1"
    assert escape_results["os_system"] != "0"
    assert escape_results["os_kill_parent"] == "blocked:PermissionError"
    assert escape_results["libc_socket"] == "-1"
    assert escape_results["libc_setrlimit"] == "-1"
    assert escape_results["import_builtin"].startswith("blocked:")


@pytest.mark.skipif(os.getuid() != 0, reason="privileges are only dropped when started as root")
def test_escaped_program_runs_as_nobody(escape_results: dict) -> None:
    assert escape_results["uid"] == "65534"


def test_limits_hold_without_the_rules() -> None:
    limits = SandboxLimits(wall_time_s=3.0, cpu_time_s=1.0, memory_mb=256)
    loop = _run_without_ast_rules("while True:\n    pass\n", limits)
    assert loop.error_class is ErrorClass.TIMEOUT
    memory = _run_without_ast_rules("x = [0] * 10**9\n", limits)
    assert memory.error_class is ErrorClass.MEMORY
