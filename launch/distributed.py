"""Runs an evaluation's independent jobs serially or as Ray actors, with the same results.

`corrigible eval`, `demo` and `events eval` split their work into jobs (a suite episode; a
(condition, scenario) pair of the learning experiment, whose tasks share one knowledge base; a
controller on a traversal) that do not depend on each other. Each job yields one or more items
(rows, task records, controller runs). `run_jobs` runs them:

- serially (the default, and always without Ray installed): one in-process worker, jobs in
  order, an exception propagates exactly as in a plain loop;
- on Ray (`--ray` starts a local instance sized to the machine, `--ray ADDRESS` joins a
  cluster): one actor per worker process, each building its worker once (MiniLM, an LLM
  backend, a renderer) and running job after job on it. Items stream back as each finishes
  (progress and the `.partial.jsonl` file are fed in completion order); results are returned
  in job order, so they equal the serial run's. A job whose actor dies (a killed process or
  node) or whose code raises is run again from its start on another actor, up to
  `max_retries` times; items it had already delivered are not delivered twice. Every retry and
  every job that still failed is in the returned `RunReport`: nothing is silently lost.

Why actors and not plain tasks: a worker's start-up (importing the engines, loading MiniLM,
compiling shaders) costs more than a short episode, and an actor pays it once per process.
Why one job per actor at a time: each actor owns one simulator; Ray schedules actors by CPU, so
a cluster runs as many episodes at once as it has CPUs.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from corrigible.config import StrictConfig
from corrigible.errors import BackendError, ConfigError, DependencyNotInstalled

LOCAL = "local"  # `--ray` with no address: start a Ray instance on this machine
_MAX_WORKERS = 1024


class RunnerConfig(StrictConfig):
    """Where the jobs run (`--ray [ADDRESS]`, `--workers`)."""

    ray: str | None = None  # None: serial; "local": a new local instance; "auto" or host:port
    workers: int | None = Field(default=None)  # Ray actors; None: one per CPU of the cluster
    max_retries: int = 2  # runs of a failed job after its first (a killed worker's too)
    # wait this long for a new worker process to be placed and started, then give up (a busy
    # machine can take a minute to start one; a cluster without a free CPU never will)
    start_timeout_s: float = 180.0

    @field_validator("ray")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ConfigError(
                "--ray got an empty address; give none (a local instance), 'auto' (the "
                "cluster this machine joined with `ray start`) or HOST:PORT of a head node"
            )
        if value in (LOCAL, "auto") or value.startswith("ray://"):
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"--ray {value!r} is no cluster address; give HOST:PORT of the head node "
                "(`ray start --head` prints it, port 6379 by default), 'auto' or nothing"
            )
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= _MAX_WORKERS:
            raise ConfigError(f"--workers must be between 1 and {_MAX_WORKERS}, got {value}")
        return value

    @field_validator("max_retries")
    @classmethod
    def _retries(cls, value: int) -> int:
        if not 0 <= value <= 100:
            raise ConfigError(f"max_retries must be between 0 and 100, got {value}")
        return value

    @field_validator("start_timeout_s")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value < 86_400:  # refuses NaN too
            raise ConfigError(f"start_timeout_s must be > 0 s and < one day, got {value}")
        return value

    @property
    def uses_ray(self) -> bool:
        """Whether the jobs go to Ray."""
        return self.ray is not None

    def check(self) -> RunnerConfig:
        """Before any work: Ray is installed and the head node answers (when one is named).

        Raises:
            DependencyNotInstalled: Ray is asked for and not installed.
            ConfigError: the head node does not answer.
        """
        if self.uses_ray:
            import_ray()
            if self.ray not in (LOCAL, "auto"):
                _check_reachable(self.ray or "")
        return self


class Worker(ABC):
    """What one worker process holds (a simulator, models) and how it runs a job.

    Built once per process with keyword arguments only (they are sent to every actor, so keep
    them small and picklable), then reused for every job the process runs.
    """

    @abstractmethod
    def run(self, job: Any) -> Iterator[Any]:
        """Runs one job, yielding its items (picklable) in order."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Releases what the worker holds (called once, when the run ends)."""


@dataclass(frozen=True)
class Job:
    """One unit of work: `key` names it in reports; `payload` is what `Worker.run` gets."""

    key: str
    payload: Any
    items: int | None = None  # items it will yield, when known (for the progress bar)


@dataclass
class Attempt:
    """A failed run of a job (kept in the report)."""

    key: str
    attempt: int  # 1 = the first run
    worker_lost: bool  # the process (or its node) died; False: the job's code raised
    error: str  # the exception's class and message
    where: str = ""  # the actor's node (Ray) or "" (serial)


@dataclass
class RunReport:
    """What `run_jobs` ran: items per job (job order), failed attempts and lost jobs."""

    items: dict[str, list[Any]]  # job key -> its items, in the order the job yielded them
    retries: list[Attempt] = field(default_factory=list)  # failed attempts later retried
    failed: list[Attempt] = field(default_factory=list)  # jobs that failed their last attempt
    workers: int = 1  # worker processes used (1: serial)
    backend: str = "serial"  # "serial" or "ray"
    wall_s: float = 0.0

    def flat(self) -> list[Any]:
        """Every item, job after job (the serial order)."""
        return [item for items in self.items.values() for item in items]

    def summary(self) -> dict[str, Any]:
        """JSON-able: backend, workers, retries and failed jobs with their errors."""

        def rows(attempts: list[Attempt]) -> list[dict[str, Any]]:
            return [a.__dict__.copy() for a in attempts]

        return {
            "backend": self.backend,
            "workers": self.workers,
            "wall_s": round(self.wall_s, 2),
            "retries": rows(self.retries),
            "failed": rows(self.failed),
        }


OnItem = Callable[[Job, Any], None]


WorkerSpec = str | type[Worker]  # "module:Class" (imported by each process), or the class


def build_worker(spec: WorkerSpec, kwargs: dict[str, Any]) -> Worker:
    """The worker class (or the one at "module:Class"), built with `kwargs` in this process."""
    if isinstance(spec, str):
        module, _, name = spec.partition(":")
        cls = getattr(importlib.import_module(module), name, None)
    else:
        cls = spec
    if not (isinstance(cls, type) and issubclass(cls, Worker)):
        raise ConfigError(f"{spec!r} is not a distributed.Worker subclass")
    return cls(**kwargs)


def run_jobs(
    worker: WorkerSpec,
    jobs: Iterable[Job],
    *,
    runner: RunnerConfig | None = None,
    worker_kwargs: dict[str, Any] | None = None,
    on_item: OnItem | None = None,
) -> RunReport:
    """Runs `jobs` on workers of class `worker` ("module:Class"), serially or on Ray.

    Args:
        worker: the `Worker` subclass, or "module:Class" (every process must import it).
        jobs: the jobs; consumed lazily (on Ray, one more whenever an actor is idle), so a
            generator can prepare a job's inputs just in time.
        runner: serial (default) or Ray, workers, retries.
        worker_kwargs: what each worker is built with.
        on_item: called in this thread for each item as it arrives (completion order).

    Raises:
        DependencyNotInstalled: Ray was asked for and is not installed.
        ConfigError: the cluster cannot be reached.
    """
    runner = runner or RunnerConfig()
    kwargs = dict(worker_kwargs or {})
    if not runner.uses_ray:
        return _run_serial(worker, jobs, kwargs, on_item)
    with RayContext(runner) as ctx:
        return _RayRun(ctx, worker, kwargs, runner, on_item).run(jobs)


def _run_serial(
    worker: WorkerSpec, jobs: Iterable[Job], kwargs: dict[str, Any], on_item: OnItem | None
) -> RunReport:
    t0 = time.perf_counter()
    instance = build_worker(worker, kwargs)
    report = RunReport(items={})
    try:
        for job in jobs:
            got = report.items.setdefault(job.key, [])
            for item in instance.run(job.payload):
                got.append(item)
                if on_item is not None:
                    on_item(job, item)
    finally:
        instance.close()
    report.wall_s = time.perf_counter() - t0
    return report


# -- Ray ------------------------------------------------------------------------------------------
def import_ray() -> Any:
    """The `ray` module, or `DependencyNotInstalled` naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyNotInstalled(
            "--ray needs Ray: pip install 'corrigible[ray]' (without --ray the run is serial)"
        ) from exc
    return ray


def available() -> bool:
    """Whether Ray can be imported here."""
    try:
        import_ray()
    except DependencyNotInstalled:
        return False
    return True


class RayContext:
    """Connects to Ray for one run.

    Starts a local instance, joins a cluster, or reuses the connection this process already has
    (then leaves it open, as a test's cluster or a notebook's `ray.init` expects).
    """

    def __init__(self, runner: RunnerConfig) -> None:
        self.runner = runner
        self.ray = import_ray()
        self._owned = False

    def __enter__(self) -> RayContext:
        ray = self.ray
        if ray.is_initialized():
            return self
        # Workers share this terminal: keep their model-loading bars off the progress display.
        env = {
            "TQDM_DISABLE": "1",
            "TRANSFORMERS_VERBOSITY": "error",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report over the network
        common: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "runtime_env": {"env_vars": env},
        }
        if self.runner.ray not in (LOCAL, "auto"):
            _check_reachable(self.runner.ray or "")
        try:
            if self.runner.ray == LOCAL:
                cpus = self.runner.workers or os.cpu_count() or 1
                ray.init(num_cpus=cpus, **common)
            else:
                ray.init(address=self.runner.ray, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"--ray {self.runner.ray}: cannot reach a Ray cluster ({exc}); start one with "
                "`ray start --head` and give the address it prints"
            ) from exc
        self._owned = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            self.ray.shutdown()

    def cluster_cpus(self) -> int:
        """CPUs the cluster offers now (at least 1)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fails fast on a head node nobody answers at (Ray itself retries for minutes).

    Raises:
        ConfigError: no TCP connection to the address within `timeout_s`.
    """
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--ray {address}: no Ray head node answers there ({exc}); start one with "
            "`ray start --head` on that machine and give the address it prints"
        ) from exc


_ACTOR_CLASS: list[Any] = []  # the Ray actor class, made once per process


def _actor_class(ray: Any) -> Any:
    if not _ACTOR_CLASS:

        class _WorkerActor:
            """One worker process: builds the worker once, runs job after job on it.

            The worker is built by the first job, not in `__init__`: `ready` then measures only
            scheduling and process start (a node with no room left times out there), and a
            worker that cannot be built fails its job with its own error, which is reported.
            """

            def __init__(self, spec: WorkerSpec, kwargs: dict[str, Any]) -> None:
                self.spec, self.kwargs = spec, kwargs
                self.worker: Worker | None = None

            def ready(self) -> str:
                return ray.get_runtime_context().get_node_id()

            def run(self, payload: Any) -> Iterator[Any]:
                if self.worker is None:
                    self.worker = build_worker(self.spec, self.kwargs)
                yield from self.worker.run(payload)

            def close(self) -> None:
                if self.worker is not None:
                    self.worker.close()

        _ACTOR_CLASS.append(ray.remote(num_cpus=1, max_restarts=0)(_WorkerActor))
    return _ACTOR_CLASS[0]


@dataclass
class _State:
    job: Job
    delivered: int = 0  # items already passed on (a retry skips that many)
    attempts: int = 0
    done: bool = False


class _RayRun:
    """The driver side of a Ray run.

    One thread per actor pulls jobs and streams its items back; the calling thread hands jobs
    out, receives the items, feeds `on_item` and decides retries (so callbacks never run
    concurrently).
    """

    def __init__(
        self,
        ctx: RayContext,
        worker: WorkerSpec,
        kwargs: dict[str, Any],
        runner: RunnerConfig,
        on_item: OnItem | None,
    ) -> None:
        self.ctx, self.ray = ctx, ctx.ray
        self.spec, self.kwargs, self.runner, self.on_item = worker, kwargs, runner, on_item
        self.todo: queue.Queue[_State | None] = queue.Queue()  # jobs for the threads
        self.events: queue.Queue[tuple[Any, ...]] = queue.Queue()  # from the threads
        self.start_error = "no Ray worker left to run it"
        self.stopping = threading.Event()  # the run is over: threads stop starting workers

    # -- one thread per actor ---------------------------------------------------------------------
    def _start_actor(self) -> tuple[Any, str] | None:
        actor = _actor_class(self.ray).remote(self.spec, self.kwargs)
        ref = actor.ready.remote()
        deadline = time.monotonic() + self.runner.start_timeout_s
        try:
            while not self.ray.wait([ref], timeout=1.0)[0]:
                if self.stopping.is_set() or time.monotonic() > deadline:
                    raise TimeoutError("no free CPU for it, or the process is still starting")
            node = self.ray.get(ref)
        except Exception as exc:  # no free CPU left (a node died), or the process cannot start
            self.start_error = (
                f"no Ray worker could start within {self.runner.start_timeout_s:g} s "
                f"({_describe(exc)})"
            )
            self.ray.kill(actor)
            return None
        return actor, str(node)

    def _thread(self, tid: int) -> None:
        try:
            self._serve(tid)
        finally:  # always said, so the driver never waits on a thread that is gone
            self.events.put(("exit", tid))

    def _serve(self, tid: int) -> None:
        started = self._start_actor()
        while started is not None:
            actor, node = started
            state = self.todo.get()
            if state is None:
                self._close(actor)
                break
            self.events.put(("start", tid, state))
            index = 0
            try:
                gen = actor.run.options(num_returns="streaming").remote(state.job.payload)
                for ref in gen:
                    item = self.ray.get(ref)
                    self.events.put(("item", tid, state, index, item))
                    index += 1
            except Exception as exc:
                lost = isinstance(
                    exc,
                    (
                        self.ray.exceptions.RayActorError,
                        self.ray.exceptions.WorkerCrashedError,
                        self.ray.exceptions.ObjectLostError,
                        self.ray.exceptions.NodeDiedError,
                    ),
                )
                self.events.put(("error", tid, state, lost, _describe(exc), node))
                if lost:  # this process is gone: start another (maybe elsewhere) or stop
                    self.ray.kill(actor)
                    started = self._start_actor()
                continue
            self.events.put(("done", tid, state))

    def _close(self, actor: Any) -> None:
        try:
            self.ray.get(actor.close.remote(), timeout=30)
        except Exception:  # closing is best effort; the process ends with the run anyway
            pass
        self.ray.kill(actor)

    # -- the driver loop ------------------------------------------------------------------------
    def run(self, jobs: Iterable[Job]) -> RunReport:
        t0 = time.perf_counter()
        n_workers = self.runner.workers or self.ctx.cluster_cpus()
        report = RunReport(items={}, workers=n_workers, backend="ray")
        pending = iter(jobs)
        exhausted = False
        states: list[_State] = []
        outstanding = 0  # jobs handed out, not yet done or failed for good
        queued = 0  # jobs waiting in `todo` for a thread
        alive = n_workers
        threads = [
            threading.Thread(target=self._thread, args=(i,), daemon=True) for i in range(n_workers)
        ]
        for t in threads:
            t.start()

        def hand_out() -> None:
            # One job waits ahead of the threads, so `jobs` is read just in time.
            nonlocal exhausted, outstanding, queued
            while queued < 1 and not exhausted:
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    break
                if job.key in report.items:
                    raise ConfigError(f"two jobs share the key {job.key!r}")
                report.items[job.key] = []
                state = _State(job)
                states.append(state)
                self.todo.put(state)
                outstanding += 1
                queued += 1

        try:
            hand_out()
            while outstanding > 0 and alive > 0:
                event = self.events.get()
                kind = event[0]
                if kind == "start":
                    event[2].attempts += 1
                    queued -= 1
                elif kind == "item":
                    _, _, state, index, item = event
                    if index >= state.delivered:  # a retry's repeat of a delivered item: skip
                        state.delivered += 1
                        report.items[state.job.key].append(item)
                        if self.on_item is not None:
                            self.on_item(state.job, item)
                elif kind == "done":
                    event[2].done = True
                    outstanding -= 1
                elif kind == "error":
                    _, _, state, lost, error, node = event
                    attempt = Attempt(state.job.key, state.attempts, lost, error, node)
                    if state.attempts <= self.runner.max_retries:
                        report.retries.append(attempt)
                        self.todo.put(state)  # whichever thread is free takes it
                        queued += 1
                    else:
                        report.failed.append(attempt)
                        outstanding -= 1
                elif kind == "exit":
                    alive -= 1
                hand_out()
            # Every thread gone with jobs left: no worker can run them (e.g. no node left).
            failed = {a.key for a in report.failed}
            for state in states:
                if not state.done and state.job.key not in failed:
                    report.failed.append(
                        Attempt(state.job.key, state.attempts, True, self.start_error)
                    )
            for job in pending:
                report.items[job.key] = []
                report.failed.append(Attempt(job.key, 0, True, self.start_error))
        finally:
            self.stopping.set()
            for _ in threads:
                self.todo.put(None)
            for t in threads:
                t.join(timeout=60)
        report.wall_s = time.perf_counter() - t0
        return report


def _describe(exc: BaseException) -> str:
    """The class and first line of an error (a Ray task error: the cause's)."""
    cause = getattr(exc, "cause", None)
    inner = cause if isinstance(cause, BaseException) else exc
    lines = traceback.format_exception_only(type(inner), inner)
    return (lines[-1] if lines else repr(inner)).strip()[:500]


def raise_if_lost(report: RunReport, what: str = "episodes") -> None:
    """Raises when a job failed on every attempt, naming each one and its last error.

    Raises:
        BackendError: at least one job failed for good.
    """
    if report.failed:
        lines = "; ".join(
            f"{a.key}: {a.error} ({a.attempt} attempt(s))" for a in report.failed[:10]
        )
        more = f" (+{len(report.failed) - 10} more)" if len(report.failed) > 10 else ""
        raise BackendError(
            f"{len(report.failed)} of {len(report.items)} {what} failed: {lines}{more}; "
            "the items that finished are in the .partial.jsonl file"
        )


# -- the command line ---------------------------------------------------------------------------
RAY_HELP = (
    "run episodes on Ray: bare --ray starts a local instance sized to this machine; "
    "--ray HOST:PORT (or auto) joins a cluster started with `ray start --head`"
)


def bare_ray_flag(args: list[str]) -> list[str]:
    """`--ray` with no address (last, or before another option) becomes `--ray=local`.

    typer options take a value or none, not both; this lets `--ray` alone mean "local".
    """
    out = []
    for i, arg in enumerate(args):
        if arg == "--":  # everything after is positional
            out += args[i:]
            break
        following = args[i + 1] if i + 1 < len(args) else None
        if arg == "--ray" and (following is None or following.startswith("-")):
            out.append(f"--ray={LOCAL}")
        else:
            out.append(arg)
    return out


def ray_command_class() -> type:
    """A typer command class whose verb accepts a bare `--ray` (`bare_ray_flag`)."""
    from typer.core import TyperCommand

    class RayOptionCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            return super().parse_args(ctx, bare_ray_flag(list(args)))

    return RayOptionCommand


def share(value: Any) -> Any:
    """`value` as jobs should carry it (read it back with `resolve`).

    On Ray, one copy in the object store: a handle that every job on a node reads without a
    copy, instead of the value pickled into each job; serially, `value` itself.
    """
    try:
        import ray
    except ImportError:
        return value
    return ray.put(value) if ray.is_initialized() else value


def resolve(handle: Any) -> Any:
    """What `share` was given."""
    try:
        import ray
    except ImportError:
        return handle
    return ray.get(handle) if isinstance(handle, ray.ObjectRef) else handle
