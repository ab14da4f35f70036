"""Sandbox child: runs one validated program under OS limits, talking to the parent over pipes.

`executor.py` starts this file as `python -I -S -B child.py SITE_DIR READ_FD WRITE_FD LINE_FD`
with an empty environment, an empty private working directory and stdin on /dev/null. It is a
script, never imported by the parent, and loads its helpers (allowlists, checker, protocol,
safe_numpy) by file path so that it needs only the standard library and NumPy.

Order matters: everything that needs files, imports or privileges (NumPy, helper modules,
compiling the program) happens first; then the process locks itself down (rlimits, drop to
uid nobody, no_new_privs, a seccomp syscall allowlist, no import machinery); only then does the
untrusted program run, with a builtins dict of allowlisted names, a stub per API function and
a line tracer.

The line tracer writes the current line and the step count into a page of memory shared with
the parent, which enforces `max_steps` and `max_line_cpu_s` from there, so the budget holds even
if the tracer stops. CPython switches a tracer off when calling it fails (a caught
RecursionError at the recursion limit does that), so a SIGPROF timer (every 20 ms of CPU)
re-arms it: the handler re-installs the tracer and re-attaches it to every program frame on the
stack. Nothing of the program runs after it has ended: the final report is sent first and the
process leaves with `os._exit`, so suspended generators' `finally` blocks never run unlimited.
"""

from __future__ import annotations

import os
import sys

# Exit codes the parent understands when no "done" frame arrived.
_EXIT_MEMORY = 86
_EXIT_PROTOCOL = 87

_FLUSH_INTERVAL_S = 0.05  # how often the tracer sends the lines it has seen
_OUT_CHUNK = 4096  # bytes of print() output buffered before a frame is sent
_TICK_S = 0.02  # s of CPU between checks that the line tracer is still installed
_HEADROOM = 48  # free recursion levels our protocol code needs (JSON nests up to 32 deep)
# Slots of the int64 array shared with the parent (executor.py reads the same indices).
_SLOT_LINE = 0  # the line the program is on
_SLOT_STEPS = 1  # line events so far (the step count)


def _load(name: str):
    """Loads sibling module `name`.py under a private name (no package, no sys.path change)."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        f"_corrigible_sandbox_{name}", os.path.join(here, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Syscalls the program may make after lockdown, per machine. Anything else fails with EPERM:
# no open/openat, socket, connect, execve, fork/clone, kill, ptrace, setrlimit, chdir, ioctl.
_SECCOMP_TABLES: dict[str, tuple[int, tuple[int, ...]]] = {
    "x86_64": (
        0xC000003E,  # AUDIT_ARCH_X86_64
        (0, 1, 3, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 19, 20, 23, 24, 25, 28, 35, 39, 60, 63)
        + (96, 98, 99, 100, 102, 104, 107, 108, 110, 131, 186, 202, 204, 219, 228, 229, 230)
        + (231, 262, 270, 271, 318, 334),
    ),
    "aarch64": (
        0xC00000B7,  # AUDIT_ARCH_AARCH64
        (57, 62, 63, 64, 65, 66, 67, 72, 73, 79, 80, 93, 94, 98, 101, 113, 114, 115, 123, 124)
        + (128, 132, 134, 135, 139, 153, 160, 165, 169, 172, 173, 174, 175, 176, 177, 178, 179)
        + (214, 215, 216, 222, 226, 233, 278, 293),
    ),
}


def _install_seccomp() -> str:
    """Installs a seccomp-BPF syscall allowlist; returns a word for the hardening report."""
    import ctypes

    machine = os.uname().machine
    if machine not in _SECCOMP_TABLES:
        return f"seccomp:unsupported-arch:{machine}"
    arch, allowed = _SECCOMP_TABLES[machine]
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    kill_process, allow, errno_eperm = 0x80000000, 0x7FFF0000, 0x00050000 | 1
    prog: list[tuple[int, int, int, int]] = [
        (ld_abs, 0, 0, 4),  # A = seccomp_data.arch
        (jeq, 1, 0, arch),
        (ret, 0, 0, kill_process),
        (ld_abs, 0, 0, 0),  # A = seccomp_data.nr
    ]
    if machine == "x86_64":  # x32 ABI syscalls share numbers with a high bit set
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, errno_eperm)]
    for index, number in enumerate(allowed):
        prog.append((jeq, len(allowed) - index, 0, number))
    prog += [(ret, 0, 0, errno_eperm), (ret, 0, 0, allow)]

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(prog))(*[SockFilter(*insn) for insn in prog])
    fprog = SockFprog(len(prog), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    zero = ctypes.c_ulong(0)
    if libc.prctl(pr_set_no_new_privs, ctypes.c_ulong(1), zero, zero, zero) != 0:
        return f"seccomp:no_new_privs-failed:errno{ctypes.get_errno()}"
    mode = ctypes.c_ulong(seccomp_mode_filter)
    if libc.prctl(pr_set_seccomp, mode, ctypes.byref(fprog), zero, zero) != 0:
        return f"seccomp:failed:errno{ctypes.get_errno()}"
    return "seccomp"


def _headroom(levels: int) -> bool:
    """Recurses `levels` deep, to fail early when the program has used up the stack.

    Raising RecursionError here, *before* any protocol I/O starts, means a frame is never half
    written and a reply never left unread.
    """
    return levels <= 0 or _headroom(levels - 1)


def _open_fds() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        return [0, 1, 2]


def _vm_size_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def _lockdown(limits: dict, hardening: list[str]) -> None:
    """Applies rlimits, drops privileges, installs seccomp and disables imports."""
    import math
    import resource
    import time

    cpu = math.ceil(time.process_time() + float(limits["cpu_time_s"]))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    hardening.append(f"rlimit_cpu:{cpu}s")
    mem = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    hardening.append(f"rlimit_as:{limits['memory_mb']}MiB")
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    hardening += ["rlimit_fsize:0", "rlimit_core:0"]
    highest = max(_open_fds())
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, highest + 1))
    hardening.append(f"rlimit_nofile:{highest + 1}")
    if os.getuid() == 0:
        # As root the kernel ignores RLIMIT_NPROC and lets us raise hard limits; drop to nobody.
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            hardening += ["rlimit_nproc:0", "uid:nobody"]
        except OSError as exc:
            hardening.append(f"uid:unchanged:{exc.errno}")
    else:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        hardening += ["rlimit_nproc:0", "uid:unchanged"]
    try:
        hardening.append(_install_seccomp())
    except Exception as exc:  # noqa: BLE001 - best effort; the other layers still hold
        hardening.append(f"seccomp:error:{type(exc).__name__}")
    # Nothing new can be imported from here on (the program cannot import anyway; this stops
    # interpreter objects it might reach from loading code).
    sys.meta_path[:] = []
    sys.path_hooks[:] = []
    sys.path[:] = []
    sys.path_importer_cache.clear()
    hardening.append("imports:disabled")


class _Interrupted(BaseException):
    """The operator interrupted the run; deliberately not an Exception subclass."""


class _Runtime:
    """State shared by the tracer, print(), the API stubs and the final report."""

    def __init__(
        self, protocol, rfd: int, wfd: int, limits: dict, filename: str, line_slot
    ) -> None:
        import time

        self.protocol = protocol
        self.rfd = rfd
        self.wfd = wfd
        self.limits = limits
        self.filename = filename
        self.line_slot = line_slot
        self.monotonic = time.monotonic
        self.process_time = time.process_time
        self.new_lines: list[int] = []
        self.state = [0, 0, 0]  # line events, last line, lines kept
        self.sent_count = 0
        self.last_flush = self.monotonic()
        self.out_chunks: list[str] = []
        self.out_pending = 0
        self.out_total = 0
        self.calls = 0
        self.reserve: bytearray | None = bytearray(4 << 20)  # freed to report MemoryError
        self.active = False  # True while program code may run (the tick handler re-arms then)
        self.set_recursion_limit = sys.setrecursionlimit
        self.exit_recursion_limit = sys.getrecursionlimit() + 4 * _HEADROOM  # for finish()
        import signal

        self.signal = signal
        self.quiet = {signal.SIGPROF}  # blocked during protocol I/O: no handler mid-frame

    # -- messages ----------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        _headroom(_HEADROOM)
        frame = self.protocol.encode(message)
        mask = self.signal.pthread_sigmask
        old = mask(self.signal.SIG_BLOCK, self.quiet)
        try:
            self.protocol.write_all(self.wfd, frame)
        finally:
            mask(self.signal.SIG_SETMASK, old)

    def flush(self) -> None:
        state = self.state
        if self.new_lines or state[0] != self.sent_count:
            lines = self.new_lines[:]
            self.new_lines.clear()
            self.sent_count = state[0]
            self.send({"t": "lines", "lines": lines, "count": state[0], "last": state[1]})
        if self.out_chunks:
            text = "".join(self.out_chunks)
            self.out_chunks.clear()
            self.out_pending = 0
            self.send({"t": "out", "text": text})
        self.last_flush = self.monotonic()

    def finish(self, message: dict) -> None:
        """Sends the final report and exits without running any more program code.

        The program may have used up the stack (a limit hit at the recursion limit): the
        recursion limit is raised first, since no program code runs after this. Only at the
        very limit can even that call fail; the RecursionError then goes back into the program
        and the parent's own checks (steps, CPU, wall time) end the run instead.
        """
        self.set_recursion_limit(self.exit_recursion_limit)
        self.active = False
        self.reserve = None
        try:
            self.flush()
            message["t"] = "done"
            message["line_count"] = self.state[0]
            message["cpu_s"] = self.process_time()
            self.send(message)
        except MemoryError:
            os._exit(_EXIT_MEMORY)
        except OSError:
            os._exit(_EXIT_PROTOCOL)
        os._exit(0)

    def fail(self, error_class: str, message: str, line: int | None = None) -> None:
        self.finish(
            {
                "ok": False,
                "class": error_class,
                "line": self.state[1] if line is None else line,
                "message": message,
            }
        )

    # -- tracing -----------------------------------------------------------------------------
    def make_tracer(self):
        """Returns (global tracer, line tracer, tick handler that re-arms them)."""
        state = self.state
        new_lines = self.new_lines
        filename = self.filename
        keep = int(self.limits["max_trace_lines"])
        max_steps = int(self.limits["max_steps"])
        monotonic = self.monotonic
        slot = self.line_slot
        line_slot, steps_slot = _SLOT_LINE, _SLOT_STEPS  # closure constants: cheaper per line
        runtime = self

        def local(frame, event, arg):
            if event == "line":
                count = state[0] + 1
                state[0] = count
                line = frame.f_lineno
                state[1] = line
                slot[line_slot] = line
                slot[steps_slot] = count
                if state[2] < keep:
                    new_lines.append(line)
                    state[2] += 1
                if not count & 1023:
                    if count > max_steps:
                        runtime.fail(
                            "timeout",
                            f"the program executed more than max_steps={max_steps} lines; "
                            "look for an endless loop",
                        )
                    if monotonic() - runtime.last_flush > _FLUSH_INTERVAL_S:
                        runtime.flush()
            return local

        def global_(frame, event, arg):
            if frame.f_code.co_filename == filename:
                return local
            return None

        gettrace, settrace = sys.gettrace, sys.settrace

        def on_tick(signum, frame):
            # CPython drops a tracer whose call failed (RecursionError at the recursion limit,
            # MemoryError); put it back, on the frames already running too.
            if runtime.active and gettrace() is not global_:
                settrace(global_)
                while frame is not None:
                    if frame.f_code.co_filename == filename:
                        frame.f_trace = local
                    frame = frame.f_back

        return global_, local, on_tick

    # -- print -------------------------------------------------------------------------------
    def make_print(self):
        cap = int(self.limits["max_output_bytes"])
        runtime = self

        def print(*args, sep=None, end=None, file=None, flush=False):  # noqa: A001
            """Prints to the run's captured output (capped)."""
            if file is not None:
                raise TypeError("print(file=...) is not available in the sandbox")
            if sep is not None and not isinstance(sep, str):
                raise TypeError("sep must be None or a string")
            if end is not None and not isinstance(end, str):
                raise TypeError("end must be None or a string")
            text = (" " if sep is None else sep).join([str(a) for a in args])
            text += "\n" if end is None else end
            size = len(text.encode("utf-8", "replace"))
            if runtime.out_total + size > cap:
                room = max(0, cap - runtime.out_total)
                kept = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
                runtime.out_chunks.append(kept)
                runtime.fail(
                    "limit",
                    f"print output exceeded max_output_bytes={cap}; print less "
                    "(summaries instead of every value)",
                )
            runtime.out_total += size
            runtime.out_chunks.append(text)
            runtime.out_pending += size
            if runtime.out_pending >= _OUT_CHUNK:
                runtime.flush()

        return print

    # -- API stubs ---------------------------------------------------------------------------
    def call(self, name: str, args: tuple, kwargs: dict, errors: dict, array_factory):
        protocol = self.protocol
        self.calls += 1
        if self.calls > int(self.limits["max_api_calls"]):
            self.fail(
                "limit",
                f"the program made more than max_api_calls={self.limits['max_api_calls']} "
                "API calls; look for a loop that calls the robot too often",
            )
        try:
            wire_args = protocol.to_wire(list(args), tag_arrays=False)
            wire_kwargs = protocol.to_wire(dict(kwargs), tag_arrays=False)
        except protocol._WireTypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        frame = protocol.encode(
            {"t": "call", "name": name, "args": wire_args, "kwargs": wire_kwargs}
        )
        limit = int(self.limits["max_message_bytes"])
        if len(frame) > limit:
            raise ValueError(
                f"{name}(): arguments are {len(frame)} bytes, more than max_message_bytes={limit}"
            )
        self.flush()
        # From here until the reply is read nothing may interrupt the exchange: enough stack
        # for every call below, and no tick handler in between.
        _headroom(_HEADROOM)
        mask = self.signal.pthread_sigmask
        old = mask(self.signal.SIG_BLOCK, self.quiet)
        try:
            protocol.write_all(self.wfd, frame)
            reply = protocol.receive(self.rfd, 1 << 30)
        except MemoryError:
            self.fail("memory", f"{name}(): no memory left to receive the result")
        except BaseException:  # noqa: BLE001 - a broken exchange cannot be resumed
            os._exit(_EXIT_PROTOCOL)
        finally:
            mask(self.signal.SIG_SETMASK, old)
        if reply is None:
            os._exit(_EXIT_PROTOCOL)
        if reply.get("ok"):
            return protocol.from_wire(reply.get("value"), array_factory)
        kind = reply.get("kind", "api")
        message = str(reply.get("message", "the API call failed"))
        if kind == "interrupted":
            raise _Interrupted(message)
        if kind == "limit":
            self.fail("limit", message)
        raise errors.get(kind, errors["api"])(message)


def _make_errors() -> dict[str, type[BaseException]]:
    """Exception classes the program sees for errors raised by the robot API in the parent."""

    class ApiError(Exception):
        """A robot API call failed in the robot process."""

    class SkillError(ApiError, RuntimeError):
        """A skill could not be carried out."""

    class UnknownObjectError(ApiError, KeyError):
        """A name refers to no object in the scene."""

        def __str__(self) -> str:
            return str(self.args[0]) if self.args else ""

    class SafetyError(ApiError, RuntimeError):
        """The safety envelope refused a command; no motion happened."""

    return {
        "api": ApiError,
        "skill": SkillError,
        "unknown_object": UnknownObjectError,
        "safety": SafetyError,
    }


def _make_import(modules: dict):
    """The program's `__import__`: hands back already-loaded NumPy modules, nothing else.

    The program cannot name `__import__` (the rules forbid dunder names), but NumPy's C code,
    called from a program line, imports its helpers (e.g. `numpy._core._methods`) through the
    builtins of the *calling* frame. Those modules were loaded before lockdown.
    """

    def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if level == 0 and isinstance(name, str) and (name == "numpy" or name.startswith("numpy.")):
            module = modules.get(name)
            if module is not None:
                return module if fromlist else modules["numpy"]
        raise ImportError(f"import of {name!r} is not allowed in the sandbox")

    return restricted_import


def _program_line(exc: BaseException, filename: str) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - the message itself failed; report the type only
        text = ""
    if len(text) > 1000:
        text = text[:1000] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main() -> None:
    """Runs the protocol: init -> lockdown -> started -> program -> done."""
    site_dir, rfd, wfd, line_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sys.path.append(site_dir)
    import mmap

    # One shared int64 the tracer overwrites with the current line, so the parent knows where
    # the program was even when it is killed inside a long C call that sends nothing.
    line_map = mmap.mmap(line_fd, mmap.PAGESIZE)
    os.close(line_fd)
    line_slot = memoryview(line_map).cast("q")
    os.environ.clear()
    import builtins
    import time
    import warnings

    import numpy
    import numpy.linalg  # noqa: F401 - used through np.linalg
    import numpy.ma  # noqa: F401 - histogram/percentile import it lazily; no imports after lockdown

    warnings.simplefilter("ignore")  # a warning would try to read source files after lockdown
    allowlists = _load("allowlists")
    checker = _load("checker")
    protocol = _load("protocol")
    safe_numpy = _load("safe_numpy")

    init = protocol.receive(rfd, 1 << 26)
    if init is None or init.get("t") != "init":
        os._exit(_EXIT_PROTOCOL)
    limits = init["limits"]
    source = init["source"]
    api_names = [str(n) for n in init["api_names"]]
    filename = checker.PROGRAM_FILENAME
    runtime = _Runtime(protocol, rfd, wfd, limits, filename, line_slot)

    # Second, independent check of the rules (the parent checked already).
    if init.get("validate", True):
        tree, problems = checker.check_source(source, api_names)
        if problems:
            first = problems[0]
            runtime.fail(first.error_class, first.message, first.line)
    else:  # run_program(..., ast_rules=False): auditing the OS layers on their own
        tree = source
    try:
        code = compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        runtime.fail("syntax", _describe(exc), exc.lineno)
    except (ValueError, RecursionError, MemoryError) as exc:
        runtime.fail("syntax", checker.unparsable_message(exc))

    errors = _make_errors()

    def array_factory(data, dtype):
        return numpy.asarray(data, dtype=dtype)

    program_builtins: dict = {
        name: getattr(builtins, name)
        for name in allowlists.ALLOWED_BUILTINS
        if hasattr(builtins, name)
    }
    program_builtins["print"] = runtime.make_print()
    program_builtins["__import__"] = _make_import(sys.modules)
    for error in errors.values():
        program_builtins[error.__name__] = error
    program_globals: dict = {
        "__builtins__": program_builtins,
        "np": safe_numpy.build_numpy_namespace(),
        "math": safe_numpy.build_math_namespace(),
    }

    def make_stub(api_name: str):
        def stub(*args, **kwargs):
            return runtime.call(api_name, args, kwargs, errors, array_factory)

        stub.__name__ = stub.__qualname__ = api_name
        return stub

    for api_name in api_names:
        program_globals[api_name] = make_stub(api_name)

    baseline = _vm_size_mb()
    hardening: list[str] = []
    if baseline is not None and baseline + 32 > float(limits["memory_mb"]):
        runtime.fail(
            "memory",
            f"memory_mb={limits['memory_mb']} leaves no room: the interpreter and NumPy "
            f"already use {baseline:.0f} MiB of address space; raise memory_mb",
            None,
        )
    tracer, _, on_tick = runtime.make_tracer()
    # The tick timer is armed before lockdown: seccomp refuses setitimer afterwards (and so
    # does it for the program, which cannot reach the timer anyway).
    runtime.signal.signal(runtime.signal.SIGPROF, on_tick)
    runtime.signal.setitimer(runtime.signal.ITIMER_PROF, _TICK_S, _TICK_S)
    hardening.append(f"tracer_rearm:{_TICK_S * 1000:.0f}ms")
    _lockdown(limits, hardening)
    runtime.send(
        {
            "t": "started",
            "hardening": hardening,
            "baseline_mb": baseline,
            "cpu_s": time.process_time(),
        }
    )
    del init, source, builtins, allowlists, checker, safe_numpy
    started = time.process_time()
    try:
        runtime.active = True
        sys.settrace(tracer)
        exec(code, program_globals)  # noqa: S102 - the whole point: validated code, locked down
        runtime.active = False
        sys.settrace(None)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a report
        # Report and leave at once. Clearing the program's globals here would finalise its
        # suspended generators, running their `finally` blocks (robot calls included) after
        # the program has failed; finish() sends the report and calls os._exit instead.
        runtime.active = False
        sys.settrace(None)
        runtime.reserve = None
        line = _program_line(exc, filename)
        if isinstance(exc, MemoryError):
            error_class = "memory"
        elif isinstance(exc, _Interrupted):
            error_class = "interrupted"
        elif isinstance(exc, errors["safety"]):
            error_class = "safety"
        elif isinstance(exc, NameError) and not isinstance(exc, UnboundLocalError):
            error_class = "unknown_api"
        else:
            error_class = "runtime"
        report = {
            "ok": False,
            "class": error_class,
            "line": line,
            "message": _describe(exc),
            "exc_type": type(exc).__name__,
            "name": getattr(exc, "name", None) if isinstance(exc, NameError) else None,
        }
        runtime.finish(report)
    runtime.finish({"ok": True, "program_cpu_s": time.process_time() - started})


if __name__ == "__main__":
    try:
        main()
    except MemoryError:
        os._exit(_EXIT_MEMORY)
