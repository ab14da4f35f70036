"""The episode runner (launch/distributed.py): serial and Ray give the same results, a worker
that dies or raises is retried and reported, and the verbs' options are checked.

Ray runs for real here: a local instance (2 CPUs) shared by the module's tests; the
multi-node case with a killed node is in test_ray_cluster.py (slow).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corrigible.errors import BackendError, ConfigError
from corrigible.launch.distributed import (
    Job,
    RunnerConfig,
    Worker,
    bare_ray_flag,
    raise_if_lost,
    run_jobs,
)

ray = pytest.importorskip("ray")


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without wall-clock times (the episode's and each plan's), the only fields two runs
    of an episode may differ in."""
    return [
        {
            **{k: v for k, v in r.items() if k not in ("wall_s", "plans")},
            "plans": [{k: v for k, v in p.items() if k != "plan_s"} for p in r.get("plans", [])],
        }
        for r in rows
    ]


# -- options (no Ray needed) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ray"], ["--ray=local"]),
        (["--ray", "--limit", "2"], ["--ray=local", "--limit", "2"]),
        (["--ray", "10.0.0.1:6379"], ["--ray", "10.0.0.1:6379"]),
        (["--limit", "2"], ["--limit", "2"]),
        (["--", "--ray"], ["--", "--ray"]),
    ],
)
def test_a_bare_ray_flag_means_a_local_instance(args: list[str], expected: list[str]) -> None:
    assert bare_ray_flag(args) == expected


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"ray": ""}, "empty address"),
        ({"ray": "head-node"}, "no cluster address"),
        ({"ray": "head:99999"}, "no cluster address"),
        ({"ray": "local", "workers": 0}, "--workers must be between 1"),
        ({"max_retries": -1}, "max_retries"),
        ({"start_timeout_s": float("nan")}, "start_timeout_s"),
    ],
)
def test_unusable_runner_options_are_refused(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RunnerConfig(**fields)


def test_eval_refuses_workers_without_ray() -> None:
    from corrigible.launch.eval import EvalConfig

    with pytest.raises(ConfigError, match="give --ray too"):
        EvalConfig(suite="smoke", workers=2, out=None)
    assert EvalConfig(suite="smoke", ray="10.0.0.1:6379", out=None).runner().ray == "10.0.0.1:6379"


# -- Ray for real ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the module (starting one costs seconds on a busy machine)."""
    import cloudpickle

    # The test workers below live in this module, which the Ray workers cannot import.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_a_tiny_suite_gives_the_same_rows_serially_and_on_ray(local_ray: None, tmp_path) -> None:
    """Real episodes (MuJoCo, the grammar planner) on two Ray workers: the rows, their order
    and the summary equal the serial run's; every row streamed to the partial file."""
    from corrigible.launch.evaluations.suite import run_suite, summarise
    from corrigible.policies.suites.schema import load_suite

    episodes = load_suite("smoke").episodes[:2]
    common: dict[str, Any] = {"engines": ["mujoco"], "planner": "grammar"}
    common["perception"] = "privileged"
    serial = run_suite(episodes, **common)
    seen: list[str] = []
    partial = tmp_path / "eval.partial.jsonl"
    reports: list[Any] = []
    on_ray = run_suite(
        episodes,
        **common,
        partial=partial,
        on_row=lambda row: seen.append(row["id"]),
        runner=RunnerConfig(ray="local", workers=2),
        report=reports,
    )
    assert _comparable(on_ray) == _comparable(serial)
    assert [r["id"] for r in on_ray] == [e.id for e in episodes]
    assert summarise(on_ray) == summarise(serial)
    assert sorted(seen) == sorted(e.id for e in episodes)  # the progress bar got every episode
    lines = [json.loads(line) for line in partial.read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(e.id for e in episodes)
    assert reports[0].backend == "ray" and reports[0].workers == 2 and not reports[0].failed


class _KillOnce(Worker):
    """Yields the job's numbers; the first time it meets `die_on`, its process dies (os._exit)."""

    def __init__(self, *, marker: str, die_on: str) -> None:
        self.marker, self.die_on = Path(marker), die_on

    def run(self, job: tuple[str, int]) -> Iterator[dict[str, Any]]:
        key, n = job
        for i in range(n):
            if key == self.die_on and i == 1 and not self.marker.exists():
                self.marker.write_text(str(os.getpid()))
                os._exit(1)  # the process is gone mid-job, after one delivered item
            yield {"job": key, "i": i, "square": i * i}


def _jobs(n: int = 4) -> list[Job]:
    return [Job(f"job{k}", (f"job{k}", 3)) for k in range(n)]


def test_a_worker_killed_mid_job_is_retried_and_reported(local_ray: None, tmp_path) -> None:
    """The killed worker's job runs again on a new actor; the item it had delivered is not
    delivered twice, and the retry is in the report."""
    kwargs = {"marker": str(tmp_path / "died"), "die_on": "job1"}
    serial = run_jobs(_KillOnce, _jobs(), worker_kwargs={"marker": "", "die_on": ""})
    seen: list[tuple[str, int]] = []
    report = run_jobs(
        _KillOnce,
        _jobs(),
        runner=RunnerConfig(ray="local", workers=2, start_timeout_s=30),
        worker_kwargs=kwargs,
        on_item=lambda job, item: seen.append((job.key, item["i"])),
    )
    assert (tmp_path / "died").exists()  # the worker really died
    assert report.items == serial.items
    assert sorted(seen) == sorted((f"job{k}", i) for k in range(4) for i in range(3))
    assert [(a.key, a.attempt, a.worker_lost) for a in report.retries] == [("job1", 1, True)]
    assert not report.failed
    raise_if_lost(report)  # nothing lost: no error


class _Broken(Worker):
    """Raises on one job, every time."""

    def run(self, job: tuple[str, int]) -> Iterator[int]:
        if job[0] == "job2":
            raise ValueError("this job cannot be run")
        yield job[1]


def test_a_job_that_always_fails_is_reported_never_dropped(local_ray: None) -> None:
    report = run_jobs(_Broken, _jobs(), runner=RunnerConfig(ray="local", workers=2, max_retries=1))
    assert [a.key for a in report.retries] == ["job2"]
    assert [(a.key, a.attempt, a.worker_lost) for a in report.failed] == [("job2", 2, False)]
    assert "this job cannot be run" in report.failed[0].error
    assert {k: v for k, v in report.items.items() if v} == {f"job{k}": [3] for k in (0, 1, 3)}
    with pytest.raises(BackendError, match="1 of 4 episodes failed: job2: ValueError.*2 attempt"):
        raise_if_lost(report)


def test_serially_an_error_propagates_as_in_a_plain_loop() -> None:
    with pytest.raises(ValueError, match="cannot be run"):
        run_jobs(_Broken, _jobs())
