"""Runs an untrusted generated program in a locked-down child process and traces it.

The parent (this module) validates the program, starts `child.py` in a fresh interpreter with an
empty environment and private working directory, sends it the program, then serves its API
calls: the child holds only stubs that send `{name, args, kwargs}` as JSON, and the parent calls
the real function from `api`.

Every limit is enforced here, outside the child, so nothing the program does switches one off:
a watchdog thread counts the run's wall time (robot API calls included, pauses excluded) and,
when it runs out inside an API call, kills the child and expires the `SandboxControl` so the
skill stops at its next checkpoint; the main loop reads the child's CPU time from /proc and
its step counter from shared memory (`max_steps`, and `max_line_cpu_s` for a child that burns
CPU without reaching a new line). No API call is served once the outcome is decided. How a run
failed comes only from the child's own report or, if it died without one, from its exit status
and the parent's own decisions, never from text the program could write to stderr.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corrigible.errors import (
    ConfigError,
    CorrigibleError,
    SafetyError,
    SandboxInterrupted,
    SkillError,
    UnknownObjectError,
    did_you_mean,
)
from corrigible.policies.sandbox import allowlists, protocol
from corrigible.policies.sandbox.config_sandbox import SandboxLimits
from corrigible.policies.sandbox.control import SandboxControl
from corrigible.policies.sandbox.result import ErrorClass, SandboxResult
from corrigible.policies.sandbox.validator import validate_program

_CHILD_PATH = Path(__file__).with_name("child.py")
_EXIT_MEMORY = 86  # child.py: ran out of memory while reporting
_EXIT_PROTOCOL = 87  # child.py: the pipe broke or the init frame was bad
_STARTUP_TIMEOUT_S = 30.0  # s for the child to import NumPy and lock down (not program time)
_POLL_S = 0.05  # s between checks of the control object and the wall clock
_EXIT_WAIT_S = 1.0  # s a child that reported "done" gets to exit by itself
_WATCH_S = 0.02  # s between the watchdog thread's wall-clock checks
_TRACE_VALUE_BYTES = 16 * 1024  # larger API arguments/results are summarised in the trace
_TRACE_BUDGET_BYTES = 1 << 20  # bytes of values a run's trace keeps in full; then only...
_TRACE_VALUE_BYTES_LATE = 256  # ...values up to this size (names and small numbers)
_TRACE_TEXT_CHARS = 1000  # an API error message, as kept in the trace
_REPLY_TEXT_CHARS = 4000  # an API error message, as sent back into the program
_MAX_PROBLEMS = 100  # static problems kept in a result (the count says how many there were)
_STDERR_KEEP = 8 * 1024  # bytes of the child's stderr kept for crash reports
_STDERR_DETAIL_CHARS = 200  # of which one line may appear in an "internal" message
_PIPE_BYTES = 1 << 20  # requested pipe capacity, so the init frame rarely blocks
# Slots of the int64 array the child shares with us (child.py writes the same indices).
_SLOT_LINE = 0  # the line the program is on
_SLOT_STEPS = 1  # line events so far
_STEP_SLACK = 4096  # steps past max_steps before we kill (the child normally reports first)

Event = dict[str, Any]


@dataclass
class _Outcome:
    """How a run ended, before the trace is attached."""

    status: str
    error_class: ErrorClass | None = None
    line: int | None = None
    message: str = ""


class _ChildDied(Exception):
    """The child's pipe closed without a final report."""


def _site_dir() -> str:
    """The directory that holds the `numpy` package, added to the child's empty sys.path."""
    import numpy

    return str(Path(numpy.__file__).resolve().parent.parent)


def _child_env() -> dict[str, str]:
    """The child's whole environment: only what keeps NumPy single-threaded and quiet."""
    return {
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LC_ALL": "C.UTF-8",
    }


def _wait_fd(fd: int, event: int, timeout_s: float) -> bool:
    """Waits until `fd` is ready for `event` (or has hung up); poll() has no FD_SETSIZE cap."""
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(max(0, int(timeout_s * 1000))))


def _proc_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process `pid`, from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        fields = data[data.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _check_api(api: Mapping[str, Callable[..., Any]]) -> None:
    reserved = allowlists.FORBIDDEN_NAMES | allowlists.NAMESPACES
    for name, fn in api.items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise ConfigError(
                f"API name {name!r} is not a public identifier; name API functions like "
                "'pick_place' (no leading underscore)."
            )
        if name in reserved:
            raise ConfigError(f"API name {name!r} is reserved by the sandbox; rename it.")
        if not callable(fn):
            raise ConfigError(f"api[{name!r}] must be callable, got {type(fn).__name__}.")


def _api_error_kind(exc: BaseException) -> str:
    if isinstance(exc, SandboxInterrupted):
        return "interrupted"
    if isinstance(exc, SafetyError):
        return "safety"
    if isinstance(exc, UnknownObjectError):
        return "unknown_object"
    if isinstance(exc, SkillError):
        return "skill"
    return "api"


def strict_json(value: Any, depth: int = 0) -> Any:
    """`value` with NaN and infinities as the strings "nan", "inf", "-inf" (strict JSON).

    Wire data nests at most `protocol.MAX_DEPTH` levels (plus an ndarray tag); anything deeper
    is summarised rather than walked.
    """
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if depth > protocol.MAX_DEPTH + 2:
        return {"omitted": "nested too deeply"}
    if isinstance(value, list):
        return [strict_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {str(key): strict_json(item, depth + 1) for key, item in value.items()}
    return value


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _trace_value(value: Any, limit: int = _TRACE_VALUE_BYTES) -> tuple[Any, int]:
    """(value for the trace, its size): small values as strict JSON, big ones summarised."""
    try:
        size = len(protocol.encode({"t": "v", "v": value}))
    except (TypeError, ValueError, RecursionError):
        return {"unserialisable": type(value).__name__}, 0
    if size > limit:
        return {"omitted_bytes": size}, size
    return strict_json(value), size


class _Watchdog(threading.Thread):
    """Counts the run's wall time from a second thread, so it also runs out inside API calls.

    Paused time (`SandboxControl.pause()`) is not counted. When the budget is spent while the
    main thread is inside an API call, the child is killed and the control expired, so that a
    skill checking `control.checkpoint()` stops; the main loop handles every other case.
    """

    def __init__(self, session: _Session) -> None:
        super().__init__(name="sandbox-watchdog", daemon=True)
        self._session = session
        self.stopping = threading.Event()

    def run(self) -> None:
        session = self._session
        control = session.control
        last = time.monotonic()
        while not self.stopping.wait(_WATCH_S):
            now = time.monotonic()
            if session.started and not (control is not None and control.is_paused):
                session.wall_used += now - last
            last = now
            if session.wall_used > session.limits.wall_time_s:
                session.overrun_in_call()


class _StderrDrain(threading.Thread):
    """Reads the child's stderr so it can never block, keeping only the tail."""

    def __init__(self, stream: Any) -> None:
        super().__init__(name="sandbox-stderr", daemon=True)
        self._stream = stream
        self.tail = b""

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._stream.read1(65536):
                self.tail = (self.tail + chunk)[-_STDERR_KEEP:]


class _Session:
    """One run: spawn, serve, classify, clean up."""

    def __init__(
        self,
        source: str,
        api: Mapping[str, Callable[..., Any]],
        limits: SandboxLimits,
        on_event: Callable[[Event], None] | None,
        control: SandboxControl | None,
        validate: bool,
    ) -> None:
        self.source = source
        self.api = dict(api)
        self.limits = limits
        self.on_event = on_event
        self.control = control
        self.validate = validate
        self.t0 = time.monotonic()
        self.proc: subprocess.Popen[bytes] | None = None
        self.rfd = -1
        self.wfd = -1
        self.line_map: mmap.mmap | None = None
        self.lines: list[int] = []
        self.line_count = 0
        self.last_line: int | None = None
        self.output: list[str] = []
        self.output_bytes = 0
        self.output_truncated = False
        self.api_calls: list[dict[str, Any]] = []
        self.api_bytes = 0
        self.hardening: list[str] = []
        self.violations: list[str] = []
        self.started = False
        self.startup_s: float | None = None
        self.wall_used = 0.0
        self.killed_by_parent = False
        self.interrupt_deadline: float | None = None
        self.stderr: _StderrDrain | None = None
        self.cpu_time_s: float | None = None
        self.cpu_at_start = 0.0
        self.next_cpu_check = 0.0
        self.returncode: int | None = None
        self.lock = threading.Lock()  # guards in_call / call_overrun against the watchdog
        self.in_call: str | None = None  # the API function being served, if any
        self.call_overrun = False  # the watchdog ended the run during that call
        self.watchdog: _Watchdog | None = None
        self.steps_seen = 0  # step count at the last progress check...
        self.cpu_at_steps = 0.0  # ...and the child's CPU seconds when it last changed
        self.trace_bytes = 0  # bytes of API values kept in full in the trace

    # -- events -----------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        if self.on_event is not None:
            event.setdefault("t", round(time.monotonic() - self.t0, 6))
            self.on_event(event)

    # -- process ----------------------------------------------------------------------------
    def spawn(self, workdir: str) -> None:
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        line_fd = os.memfd_create("corrigible-sandbox-line", os.MFD_CLOEXEC)
        os.ftruncate(line_fd, mmap.PAGESIZE)
        self.line_map = mmap.mmap(line_fd, mmap.PAGESIZE)
        for fd in (p2c_w, c2p_w):
            with contextlib.suppress(OSError, AttributeError):
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(_CHILD_PATH), _site_dir()]
                + [str(p2c_r), str(c2p_w), str(line_fd)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=_child_env(),
                pass_fds=(p2c_r, c2p_w, line_fd),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(p2c_r)
            os.close(c2p_w)
            os.close(line_fd)
        self.rfd, self.wfd = c2p_r, p2c_w
        os.set_blocking(self.wfd, False)
        self.stderr = _StderrDrain(self.proc.stderr)
        self.stderr.start()

    def send(self, message: dict[str, Any]) -> None:
        """Writes one frame without ever blocking past the wall-clock budget."""
        self.send_frame(protocol.encode(message))

    def send_frame(self, frame: bytes) -> None:
        """Writes an encoded frame without ever blocking past the wall-clock budget."""
        data = memoryview(frame)
        deadline = time.monotonic() + max(1.0, self.limits.wall_time_s)
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ChildDied("the child stopped reading its pipe")
            if not _wait_fd(self.wfd, select.POLLOUT, min(remaining, _POLL_S)):
                continue
            try:
                written = os.write(self.wfd, data)
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as exc:
                raise _ChildDied(str(exc)) from None
            data = data[written:]

    def signal_group(self, sig: int) -> None:
        if self.proc is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def kill_and_reap(self) -> None:
        """Waits briefly for a clean exit, then SIGKILLs the process group and reaps."""
        proc = self.proc
        if proc is None or self.returncode is not None:
            return
        deadline = time.monotonic() + (0.0 if self.killed_by_parent else _EXIT_WAIT_S)
        while time.monotonic() < deadline:
            # WNOWAIT: see the exit without reaping, so the group id stays ours for killpg.
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                break
            time.sleep(0.005)
        self.signal_group(signal.SIGCONT)  # harmless; un-freezes a paused group for SIGKILL
        self.signal_group(signal.SIGKILL)
        _, status, rusage = os.wait4(proc.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        proc.returncode = self.returncode
        self.cpu_time_s = rusage.ru_utime + rusage.ru_stime

    # -- main loop --------------------------------------------------------------------------
    def drive(self) -> _Outcome | None:
        """Serves the child until it reports, dies or breaks a limit; None means it died."""
        limits = self.limits
        biggest = max(
            limits.max_message_bytes, limits.max_output_bytes, 12 * limits.max_trace_lines, 1 << 20
        )
        reader = protocol.FrameReader(biggest + 65536)
        self.send(
            {
                "t": "init",
                "source": self.source,
                "api_names": sorted(self.api),
                "limits": self.limits.to_json(),
                "validate": self.validate,
            }
        )
        startup_deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        stopped = False
        control = self.control
        while True:
            now = time.monotonic()
            if control is not None:
                if control.is_interrupted and self.interrupt_deadline is None:
                    self.interrupt_deadline = now + self.limits.interrupt_grace_s
                    if stopped:
                        self.signal_group(signal.SIGCONT)
                        stopped = False
                    self.emit({"type": "interrupted", "reason": control.reason})
                elif control.is_paused and not stopped and self.interrupt_deadline is None:
                    self.signal_group(signal.SIGSTOP)
                    stopped = True
                    self.sync_line()
                    self.emit({"type": "paused", "line": self.last_line})
                elif stopped and not control.is_paused:
                    self.signal_group(signal.SIGCONT)
                    stopped = False
                    self.emit({"type": "resumed", "line": self.last_line})
            if self.interrupt_deadline is not None and now >= self.interrupt_deadline:
                return self._interrupted_outcome()
            if not self.started and now > startup_deadline:
                return _Outcome(
                    "error",
                    ErrorClass.INTERNAL,
                    None,
                    f"the sandbox child did not start within {_STARTUP_TIMEOUT_S:.0f} s",
                )
            if self.started and self.wall_used > self.limits.wall_time_s:
                return self._limit_kill(ErrorClass.TIMEOUT, self._wall_message())
            if self.started and not stopped and now >= self.next_cpu_check:
                self.next_cpu_check = now + _POLL_S
                outcome = self._check_progress()
                if outcome is not None:
                    return outcome
            if stopped:
                assert control is not None  # stopped only ever set through control
                control.wait_for_change(_POLL_S)
                continue
            if not _wait_fd(self.rfd, select.POLLIN, _POLL_S):
                continue
            try:
                data = os.read(self.rfd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                return None
            try:
                frames = reader.feed(data)
            except protocol._ProtocolError as exc:
                return self._protocol_error(str(exc))
            for message, size in frames:
                outcome = self.handle(message, size)
                if outcome is not None:
                    return outcome  # frames after it are dropped: no call is served

    def _slot(self, index: int) -> int:
        if self.line_map is None:
            return 0
        return int.from_bytes(self.line_map[8 * index : 8 * index + 8], sys.byteorder, signed=True)

    def sync_line(self) -> None:
        """Reads the line the child's tracer last wrote into shared memory."""
        line = self._slot(_SLOT_LINE)
        if line > 0:
            self.last_line = line

    def _check_progress(self) -> _Outcome | None:
        """Checks CPU time (/proc) and the step count (shared memory), out of the program's reach.

        RLIMIT_CPU counts whole seconds; this check makes the CPU limit precise.
        """
        limits = self.limits
        steps = self._slot(_SLOT_STEPS)
        if steps > limits.max_steps + _STEP_SLACK:
            return self._limit_kill(ErrorClass.TIMEOUT, self._steps_message())
        used = _proc_cpu_s(self.proc.pid) if self.proc is not None else None
        if used is None:
            return None
        used -= self.cpu_at_start
        if used > limits.cpu_time_s:
            return self._limit_kill(ErrorClass.TIMEOUT, self._cpu_message())
        if steps != self.steps_seen:
            self.steps_seen, self.cpu_at_steps = steps, used
        elif used - self.cpu_at_steps > limits.max_line_cpu_s:
            return self._limit_kill(
                ErrorClass.TIMEOUT,
                f"the program used {used - self.cpu_at_steps:.1f} s of CPU without reaching a "
                f"new line (max_line_cpu_s={limits.max_line_cpu_s:g}){self._at_line()}; split "
                "the computation into smaller steps",
            )
        return None

    def overrun_in_call(self) -> None:
        """Watchdog thread: the wall budget ran out while an API call is being served."""
        with self.lock:
            if self.in_call is None or self.call_overrun:
                return
            self.call_overrun = True
            self.killed_by_parent = True
            self.signal_group(signal.SIGKILL)  # the program gets no reply, and no more calls
        if self.control is not None:
            self.control.expire(
                f"the program's time (wall_time_s={self.limits.wall_time_s:g}) ran out"
            )

    def _halt(self) -> None:
        """Kills a still running child and reads its final line.

        The outcome's line and the message's then agree; every caller is deciding a limit or
        an interrupt, so the child has to go anyway.
        """
        if not self.killed_by_parent:
            self.killed_by_parent = True
            self.signal_group(signal.SIGKILL)
        self.sync_line()

    def _at_line(self) -> str:
        self._halt()
        return "" if self.last_line is None else f" (last line reached: {self.last_line})"

    def _wall_message(self) -> str:
        return (
            f"the program ran longer than wall_time_s={self.limits.wall_time_s:g} (robot API "
            f"calls included){self._at_line()}; look for an endless loop, a slow computation or "
            "too many robot calls"
        )

    def _steps_message(self) -> str:
        return (
            f"the program executed more than max_steps={self.limits.max_steps} lines"
            f"{self._at_line()}; look for an endless loop"
        )

    def _cpu_message(self) -> str:
        return (
            f"the program used more than cpu_time_s={self.limits.cpu_time_s:g} of CPU"
            f"{self._at_line()}; look for an endless loop or a huge computation"
        )

    def _limit_kill(self, error_class: ErrorClass, message: str) -> _Outcome:
        self._halt()
        return _Outcome("error", error_class, self.last_line, message)

    def _protocol_error(self, detail: str) -> _Outcome:
        return self._limit_kill(ErrorClass.INTERNAL, f"sandbox protocol error: {detail}")

    def _interrupted_outcome(self) -> _Outcome:
        reason = self.control.reason if self.control is not None else "interrupted"
        return self._limit_kill(ErrorClass.INTERRUPTED, f"{reason}{self._at_line()}")

    # -- frames -----------------------------------------------------------------------------
    def handle(self, message: dict[str, Any], size: int) -> _Outcome | None:
        kind = message["t"]
        if kind == "lines":
            return self._on_lines(message)
        if kind == "out":
            return self._on_output(message)
        if kind == "call":
            return self._on_call(message, size)
        if kind == "started":
            self.started = True
            self.startup_s = time.monotonic() - self.t0
            cpu = message.get("cpu_s")
            self.cpu_at_start = float(cpu) if isinstance(cpu, int | float) else 0.0
            hardening = message.get("hardening", [])
            self.hardening = [str(h) for h in hardening] if isinstance(hardening, list) else []
            pid = self.proc.pid if self.proc is not None else None
            self.emit({"type": "started", "pid": pid, "startup_s": self.startup_s})
            return None
        if kind == "done":
            return self._on_done(message)
        return self._protocol_error(f"unexpected frame type {kind!r}")

    def _on_lines(self, message: dict[str, Any]) -> _Outcome | None:
        lines, count, last = message.get("lines"), message.get("count"), message.get("last")
        if not isinstance(lines, list) or not isinstance(count, int):
            return self._protocol_error("bad lines frame")
        room = self.limits.max_trace_lines - len(self.lines)
        if room > 0:
            self.lines.extend(int(n) for n in lines[:room] if isinstance(n, int))
        self.line_count = count
        if isinstance(last, int) and last > 0:
            self.last_line = last
        self.emit({"type": "lines", "lines": lines, "count": count})
        return None

    def _on_output(self, message: dict[str, Any]) -> _Outcome | None:
        text = message.get("text")
        if not isinstance(text, str):
            return self._protocol_error("bad output frame")
        size = len(text.encode("utf-8", "replace"))
        cap = self.limits.max_output_bytes
        if self.output_bytes + size > cap:
            room = max(0, cap - self.output_bytes)
            self.output.append(text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore"))
            self.output_bytes = cap
            self.output_truncated = True
            return self._limit_kill(
                ErrorClass.LIMIT, f"print output exceeded max_output_bytes={cap}; print less"
            )
        self.output.append(text)
        self.output_bytes += size
        self.emit({"type": "output", "text": text})
        return None

    def _on_call(self, message: dict[str, Any], size: int) -> _Outcome | None:
        name, args, kwargs = message.get("name"), message.get("args"), message.get("kwargs")
        if not (isinstance(name, str) and isinstance(args, list) and isinstance(kwargs, dict)):
            return self._protocol_error("bad call frame")
        if not self.started:
            return self._protocol_error("API call before start-up finished")
        limits = self.limits
        self.api_bytes += size
        if self.wall_used > limits.wall_time_s:
            return self._limit_kill(ErrorClass.TIMEOUT, self._wall_message())
        if len(self.api_calls) >= limits.max_api_calls:
            return self._limit_kill(
                ErrorClass.LIMIT,
                f"the program made more than max_api_calls={limits.max_api_calls} API calls"
                f"{self._at_line()}; look for a loop that calls the robot too often",
            )
        if size > limits.max_message_bytes + 4096 or self.api_bytes > limits.max_api_bytes:
            return self._limit_kill(
                ErrorClass.LIMIT,
                f"API arguments exceeded max_message_bytes={limits.max_message_bytes} per call or"
                f" max_api_bytes={limits.max_api_bytes} per run{self._at_line()}; send less data",
            )
        control = self.control
        if control is not None:
            while control.is_paused and not control.is_interrupted:
                control.wait_for_change(_POLL_S)
        self.sync_line()
        t_start = time.monotonic() - self.t0
        record: dict[str, Any] = {
            "name": _clip(name, _TRACE_TEXT_CHARS),
            "args": self._kept(args),
            "kwargs": self._kept(kwargs),
            "line": self.last_line,
            "t_start": round(t_start, 6),
        }
        self.api_calls.append(record)
        self.emit({"type": "api_call_start", **record})
        reply: dict[str, Any]
        began = time.perf_counter()
        with self.lock:
            self.in_call = name
        try:
            if control is not None:
                control.checkpoint()
            fn = self.api.get(name)
            if fn is None:
                raise UnknownObjectError(f"{_clip(name, 80)!r} is not a robot API function")
            value = fn(*args, **kwargs)
            wire = protocol.to_wire(value, tag_arrays=True)
            reply = {"t": "ret", "ok": True, "value": wire}
            record["result"] = self._kept(wire)
        except protocol._WireTypeError as exc:
            text = f"{name}() returned a value the sandbox cannot pass on: {exc}"
            reply = self._error_reply("api", text)
            record["error"] = {"type": "WireTypeError", "kind": "api", "message": text}
        except Exception as exc:  # noqa: BLE001 - API failures go back into the program
            kind = _api_error_kind(exc)
            if isinstance(exc, CorrigibleError):
                text = f"{name}(): {exc}"
            else:
                text = f"{name}(): {type(exc).__name__}: {exc}"
            reply = self._error_reply(kind, text)
            record["error"] = {
                "type": type(exc).__name__,
                "kind": kind,
                "message": _clip(text, _TRACE_TEXT_CHARS),
            }
        finally:
            with self.lock:
                self.in_call = None
                overrun = self.call_overrun
        record["duration_s"] = round(time.perf_counter() - began, 6)
        if control is not None and control.is_interrupted and reply.get("kind") != "interrupted":
            reply = {"t": "ret", "ok": False, "kind": "interrupted", "message": control.reason}
        frame = protocol.encode(reply)
        if len(frame) > limits.max_message_bytes + 4096:
            text = (
                f"{_clip(name, 80)}() returned {len(frame)} bytes, more than max_message_bytes="
                f"{limits.max_message_bytes}; ask for less data"
            )
            record["error"] = {"type": "ResultTooLarge", "kind": "api", "message": text}
            record.pop("result", None)
            frame = protocol.encode(self._error_reply("api", text))
        self.emit({"type": "api_call_end", **record})
        if overrun:
            stopped = (
                "which was asked to stop at its next checkpoint"
                if control is not None
                else "which ran to its end (no SandboxControl to stop it)"
            )
            return _Outcome(
                "error",
                ErrorClass.TIMEOUT,
                record["line"],
                f"the program ran longer than wall_time_s={limits.wall_time_s:g}: the time ran "
                f"out inside the robot API call {_clip(name, 80)}() after "
                f"{record['duration_s']:.1f} s, {stopped}; ask for less, or allow more time",
            )
        try:
            self.send_frame(frame)
        except _ChildDied:
            return None
        return None

    def _kept(self, value: Any) -> Any:
        """An API value as the trace keeps it: in full until the run's budget is spent."""
        limit = _TRACE_VALUE_BYTES if self.trace_bytes < _TRACE_BUDGET_BYTES else 0
        kept, size = _trace_value(value, max(limit, _TRACE_VALUE_BYTES_LATE))
        if not (isinstance(kept, dict) and "omitted_bytes" in kept):
            self.trace_bytes += size
        return kept

    @staticmethod
    def _error_reply(kind: str, text: str) -> dict[str, Any]:
        return {"t": "ret", "ok": False, "kind": kind, "message": _clip(text, _REPLY_TEXT_CHARS)}

    def _on_done(self, message: dict[str, Any]) -> _Outcome:
        count = message.get("line_count")
        if isinstance(count, int):
            self.line_count = count
        if message.get("ok") is True:
            return _Outcome("ok")
        try:
            error_class = ErrorClass(message.get("class"))
        except ValueError:
            error_class = ErrorClass.INTERNAL
        line = message.get("line")
        line = line if isinstance(line, int) and line > 0 else None
        text = _clip(str(message.get("message", "")), 4000) or f"the program failed ({error_class})"
        if error_class is ErrorClass.UNKNOWN_API:
            name = message.get("name")
            if isinstance(name, str):
                known = sorted(set(self.api) | allowlists.ALLOWED_BUILTINS)
                text += (
                    "; it is neither a robot API function nor a builtin."
                    f"{did_you_mean(name, known)}"
                )
        if self.control is not None and self.control.is_interrupted:
            error_class = ErrorClass.INTERRUPTED
        return _Outcome("error", error_class, line, text)

    # -- after death ------------------------------------------------------------------------
    def classify_death(self) -> _Outcome:
        """Explains a child that died without a report (rlimit signal, crash).

        Only the exit status counts (our own codes, signals): never the child's stderr, which
        the program can fill with any text ("MemoryError" included) before it crashes.
        """
        self.sync_line()
        rc = self.returncode
        cpu = self.cpu_time_s or 0.0
        if self.control is not None and self.control.is_interrupted:
            return _Outcome("error", ErrorClass.INTERRUPTED, self.last_line, self.control.reason)
        if rc == -signal.SIGXCPU or (rc == -signal.SIGKILL and cpu >= self.limits.cpu_time_s):
            return _Outcome("error", ErrorClass.TIMEOUT, self.last_line, self._cpu_message())
        if rc == _EXIT_MEMORY:
            return _Outcome(
                "error",
                ErrorClass.MEMORY,
                self.last_line,
                f"the program exceeded memory_mb={self.limits.memory_mb}{self._at_line()}; "
                "allocate less",
            )
        if rc == -signal.SIGKILL and not self.killed_by_parent:
            return _Outcome(
                "error",
                ErrorClass.MEMORY,
                self.last_line,
                f"the system killed the program{self._at_line()}, most likely for lack of "
                "memory; allocate less",
            )
        crash_signals = {
            signal.SIGSEGV: "SIGSEGV",
            signal.SIGBUS: "SIGBUS",
            signal.SIGABRT: "SIGABRT",
        }
        if rc is not None and -rc in crash_signals:
            # The interpreter itself crashed, contained in the child: the program's doing
            # (typically a C stack overflow through thousands of nested map/filter objects).
            return _Outcome(
                "error",
                ErrorClass.RUNTIME,
                self.last_line,
                f"the program crashed the interpreter with {crash_signals[-rc]}"
                f"{self._at_line()}, usually a C stack overflow from deeply nested iterators "
                "or data; flatten the nesting",
            )
        tail = self.stderr.tail.decode("utf-8", "replace").strip() if self.stderr else ""
        if rc == _EXIT_PROTOCOL:
            detail = "its pipe to the parent broke"
        elif tail:  # shown escaped, never used to classify
            detail = (
                f"last error output {ascii(_clip(tail.splitlines()[-1], _STDERR_DETAIL_CHARS))}"
            )
        else:
            detail = "no error output"
        return _Outcome(
            "error",
            ErrorClass.INTERNAL,
            self.last_line,
            f"the sandbox child exited unexpectedly (exit status {rc}): {detail}",
        )

    def run(self) -> SandboxResult:
        workdir = tempfile.mkdtemp(prefix="corrigible-sandbox-")
        outcome: _Outcome | None = None
        try:
            self.spawn(workdir)
            self.watchdog = _Watchdog(self)
            self.watchdog.start()
            try:
                outcome = self.drive()
            except _ChildDied:
                outcome = None
        finally:
            if self.watchdog is not None:
                self.watchdog.stopping.set()
                self.watchdog.join()
            if self.control is not None:
                self.control.clear_expiry()
            self.kill_and_reap()
            for fd in (self.rfd, self.wfd):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            if outcome is None:
                self.sync_line()
            if self.line_map is not None:
                self.line_map.close()
                self.line_map = None
            if self.stderr is not None:
                self.stderr.join(timeout=1.0)
            if self.proc is not None and self.proc.stderr is not None:
                with contextlib.suppress(OSError):
                    self.proc.stderr.close()
            try:
                leftovers = os.listdir(workdir)
            except OSError:
                leftovers = []
            if leftovers:
                self.violations.append(f"files appeared in the sandbox directory: {leftovers}")
            shutil.rmtree(workdir, ignore_errors=True)
        if outcome is None:
            outcome = self.classify_death()
        result = SandboxResult(
            status="ok" if outcome.status == "ok" else "error",
            error_class=outcome.error_class,
            line=outcome.line,
            message=outcome.message,
            output="".join(self.output),
            output_truncated=self.output_truncated,
            api_calls=self.api_calls,
            lines=self.lines,
            line_count=self.line_count,
            duration_s=time.monotonic() - self.t0,
            cpu_time_s=self.cpu_time_s,
            hardening=self.hardening,
            violations=self.violations,
        )
        self.emit({"type": "end", "result": result.to_json()})
        return result


def _static_failure(
    error_class: ErrorClass, message: str, line: int | None, started: float, problems: list[Any]
) -> SandboxResult:
    return SandboxResult(
        status="error",
        error_class=error_class,
        line=line,
        message=message,
        duration_s=time.monotonic() - started,
        problems=problems,
    )


def _run(
    source: str,
    api: Mapping[str, Callable[..., Any]],
    limits: SandboxLimits | None,
    on_event: Callable[[Event], None] | None,
    control: SandboxControl | None,
    validate: bool,
) -> SandboxResult:
    started = time.monotonic()
    limits = SandboxLimits() if limits is None else limits
    if not isinstance(source, str):
        raise TypeError(f"source must be str, got {type(source).__name__}")
    _check_api(api)
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > limits.max_source_bytes:
        return _static_failure(
            ErrorClass.LIMIT,
            f"the program is {size} bytes, more than max_source_bytes={limits.max_source_bytes}",
            None,
            started,
            [],
        )
    if validate:
        report = validate_program(source, api.keys())
        first = report.first_problem
        if first is not None:
            extra = len(report.problems) - 1
            message = first.message + (f" (and {extra} more problems)" if extra else "")
            problems = [p.to_json() for p in report.problems[:_MAX_PROBLEMS]]
            return _static_failure(first.error_class, message, first.line, started, problems)
    return _Session(source, api, limits, on_event, control, validate).run()


def run_program(
    source: str,
    api: Mapping[str, Callable[..., Any]],
    limits: SandboxLimits | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
    control: SandboxControl | None = None,
    ast_rules: bool = True,
) -> SandboxResult:
    """Validates and runs one untrusted program; never raises for anything the program does.

    Args:
        source: the generated Python program.
        api: robot API functions by name. They run here, in the caller's process; the program
            reaches them only through JSON messages (arguments arrive as plain lists, dicts,
            numbers, strings, bools and None; ndarray results reach the program as ndarrays).
        limits: resource limits; defaults to `SandboxLimits()`.
        on_event: called in this thread with every trace event: started, lines, output,
            api_call_start, api_call_end, paused, resumed, interrupted, end. An exception it
            raises stops the run (the child is killed) and propagates.
        control: pause / resume / interrupt from another thread.
        ast_rules: check the program against the AST rules, here and again in the child (the
            default). False skips both checks, so only the other layers (process isolation,
            rlimits, seccomp, the emptied import machinery, the parent's watchdog) contain the
            program: for auditing those layers with programs that break the rules on purpose
            (`tests/policies/sandbox/test_defence_in_depth.py`), never for generated code.

    Returns:
        The result with status, error class, offending line, message, output and the trace.

    Raises:
        ConfigError: an API name is not a public identifier, is reserved, or is not callable.
    """
    return _run(source, api, limits, on_event, control, validate=ast_rules)


def exec_file(
    path: str | os.PathLike[str],
    api: Mapping[str, Callable[..., Any]],
    limits: SandboxLimits | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
    control: SandboxControl | None = None,
) -> SandboxResult:
    """Runs the program stored in `path` (what `corrigible exec FILE` does).

    The CLI prints `exec_file(...).to_json()` as one JSON object of at most 64 KiB of strict
    JSON: status, error_class, line, message, output, output_truncated, api_calls, lines,
    line_count, duration_s, cpu_time_s, problems, hardening, violations, truncated, omitted.

    Raises:
        ConfigError: the file cannot be read, or `api` is malformed.
    """
    started = time.monotonic()
    limits = SandboxLimits() if limits is None else limits
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_source_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read program file {str(path)!r}: {exc}") from exc
    if len(raw) > limits.max_source_bytes:
        return _static_failure(
            ErrorClass.LIMIT,
            f"{path} is larger than max_source_bytes={limits.max_source_bytes}",
            None,
            started,
            [],
        )
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _static_failure(
            ErrorClass.SYNTAX, f"{path} is not valid UTF-8: {exc}", None, started, []
        )
    return run_program(source, api, limits, on_event=on_event, control=control)
