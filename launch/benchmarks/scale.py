"""`corrigible bench scale`: evaluation throughput serially and on Ray, and a sweep's cost model.

One run measures, side by side on the same episodes (the smoke suite's first episodes, MuJoCo,
grammar planner, privileged perception; 8, or 4 with `--quick`):

- `serial`: the plain loop (`run_suite` without a runner): wall time, episodes per second.
- `ray` with 1 and 2 workers on a local instance started once (`ray_start_s`, not counted in
  the runs). `wall_s` counts everything after the start, actor start-up included;
  `steady_episodes_per_s` counts only the episodes after each worker's first (the rate of a
  long sweep), from the times the rows arrived.
- `ray_overhead`: Ray's own cost per job, measured on jobs that do nothing (a one-worker actor
  streaming one item per job), apart from any episode; and the per-episode difference between
  the one-worker steady rate and the serial rate.
- `sweep_model`: the hours a 10,000-episode sweep would take on N = 1, 8, 32 nodes like this
  one (its CPU count, one worker per CPU), from the measured per-episode time with Ray's
  overhead, the parallel efficiency measured from 1 to 2 workers here, and the start-up:
  hours = (start_s + 10,000 x episode_s / (N x cpus x efficiency)) / 3600, and never faster
  than the driver can take results (10,000 x the no-op job time, one driver);
  `hours_at_full_efficiency` is the same with an efficiency of 1 (dedicated cores).

The machine this runs on may be shared: the efficiency (and so the model) is only as good as
the quiet it had; each row says how many CPUs it saw.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from corrigible.launch.distributed import Job, RayContext, RunnerConfig, Worker, run_jobs

SWEEP_EPISODES = 10_000
SWEEP_NODES = (1, 8, 32)
_COMMON: dict[str, Any] = {"engines": ["mujoco"], "planner": "grammar", "perception": "privileged"}


class NoOpWorker(Worker):
    """Yields its job back: what Ray costs per job when the episode costs nothing."""

    def run(self, job: int) -> Iterator[int]:
        """The job's one item."""
        yield job


def _timed_suite(episodes: list[Any], runner: RunnerConfig | None) -> dict[str, Any]:
    from corrigible.launch.evaluations.suite import run_suite

    arrivals: list[float] = []
    t0 = time.perf_counter()
    rows = run_suite(
        episodes, **_COMMON, runner=runner, on_row=lambda _r: arrivals.append(time.perf_counter())
    )
    wall = time.perf_counter() - t0
    workers = 1 if runner is None or runner.workers is None else runner.workers
    steady = None
    if len(arrivals) > workers:  # the rate once every worker has finished its first episode
        span = arrivals[-1] - arrivals[workers - 1]
        steady = (len(arrivals) - workers) / span if span > 0 else None
    return {
        "episodes": len(rows),
        "successes": sum(bool(r["success"]) for r in rows),
        "wall_s": round(wall, 2),
        "episodes_per_s": round(len(rows) / wall, 3),
        "steady_episodes_per_s": None if steady is None else round(steady, 3),
        "first_row_s": round(arrivals[0] - t0, 2) if arrivals else None,
        "rows": rows,
    }


def _noop_overhead(jobs: int) -> float:
    """Seconds per job of a one-worker Ray run of no-op jobs (after the actor is up)."""
    arrivals: list[float] = []
    run_jobs(
        NoOpWorker,
        [Job(str(i), i) for i in range(jobs)],
        runner=RunnerConfig(ray="local", workers=1),
        on_item=lambda _job, _item: arrivals.append(time.perf_counter()),
    )
    return (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)


def run_bench(quick: bool = False) -> Iterator[dict[str, Any]]:
    """Rows: serial, ray x 1 and x 2 workers, Ray's overhead, then the sweep model."""
    from corrigible.policies.suites.schema import load_suite

    cpus = os.cpu_count() or 1
    n = 4 if quick else 8
    episodes = load_suite("smoke").episodes[:n]
    serial = _timed_suite(episodes, None)
    reference = [{k: v for k, v in r.items() if k != "wall_s"} for r in serial.pop("rows")]
    yield {"mode": "serial", "workers": 1, "cpus": cpus, **serial}

    t0 = time.perf_counter()
    ray = RayContext(RunnerConfig(ray="local", workers=max(2, cpus)))  # DependencyNotInstalled
    with ray:  # one instance for every Ray row; its start is reported apart
        start_s = time.perf_counter() - t0
        measured: dict[int, dict[str, Any]] = {}
        for workers in (1, 2):
            row = _timed_suite(episodes, RunnerConfig(ray="local", workers=workers))
            same = [{k: v for k, v in r.items() if k != "wall_s"} for r in row.pop("rows")]
            measured[workers] = row
            yield {
                "mode": "ray",
                "workers": workers,
                "cpus": cpus,
                "ray_start_s": round(start_s, 2),
                "same_rows_as_serial": same == reference,
                **row,
            }
        noop_jobs = 100 if quick else 300
        noop_s = _noop_overhead(noop_jobs)
        serial_ep = 1 / serial["episodes_per_s"]
        one = measured[1]["steady_episodes_per_s"] or measured[1]["episodes_per_s"]
        two = measured[2]["steady_episodes_per_s"] or measured[2]["episodes_per_s"]
        ray_ep = 1 / one
        yield {
            "mode": "ray_overhead",
            "noop_jobs": noop_jobs,
            "per_job_ms": round(noop_s * 1000, 2),
            "per_episode_ms_vs_serial": round((ray_ep - serial_ep) * 1000, 1),
            "note": "per_job_ms: Ray alone (no-op jobs); per_episode_ms_vs_serial: one Ray "
            "worker's steady episode time minus the serial one (noise on a shared machine)",
        }
        efficiency = min(1.0, two / (2 * one))
        worker_start_s = max(0.0, measured[1]["first_row_s"] - ray_ep)
        setup_s = start_s + worker_start_s
        for nodes in SWEEP_NODES:
            workers = nodes * cpus
            compute_s = SWEEP_EPISODES * ray_ep / (workers * efficiency)
            driver_s = SWEEP_EPISODES * noop_s  # one driver takes every result
            total_s = setup_s + max(compute_s, driver_s)
            ideal_s = setup_s + max(compute_s * efficiency, driver_s)  # efficiency 1
            yield {
                "mode": "sweep_model",
                "episodes": SWEEP_EPISODES,
                "nodes": nodes,
                "workers": workers,
                "episode_s": round(ray_ep, 3),
                "efficiency": round(efficiency, 2),
                "setup_s": round(setup_s, 1),
                "hours": round(total_s / 3600, 3),
                "hours_at_full_efficiency": round(ideal_s / 3600, 3),
                "bound": "driver" if driver_s > compute_s else "workers",
                "assumes": f"nodes like this one ({cpus} CPUs, one worker each), this suite's "
                "episodes, parallel efficiency as measured here from 1 to 2 workers",
            }
