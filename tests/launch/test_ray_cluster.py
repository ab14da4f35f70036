"""A multi-node Ray cluster on one machine (Ray's own `cluster_utils.Cluster`): a head node
without CPUs and two worker nodes of one CPU each run a real suite (MuJoCo episodes); one
worker node is killed mid-run. Every episode must still be accounted for, with the same rows
as the serial run, and the killed node's episode must be reported as retried.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow  # three Ray nodes and eight episodes: about a minute on 2 cores


def test_a_suite_survives_a_node_killed_mid_run(tmp_path) -> None:
    from corrigible.launch.distributed import RunnerConfig
    from corrigible.launch.evaluations.suite import run_suite
    from corrigible.policies.suites.schema import load_suite

    episodes = load_suite("smoke").episodes[:6]
    common: dict[str, Any] = {"engines": ["mujoco"], "planner": "grammar"}
    common["perception"] = "privileged"
    serial = run_suite(episodes, **common)

    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},  # the head runs no episode
    )
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    # The runner joins by address, as `--ray HOST:PORT` does (and leaves the cluster at the end).
    killed = threading.Event()

    def kill_a_node_after_the_first_row(_row: dict[str, Any]) -> None:
        # Both workers are busy now (the one that finished took the next episode at once).
        if not killed.is_set():
            killed.set()
            cluster.remove_node(nodes[1], allow_graceful=False)

    reports: list[Any] = []
    partial = tmp_path / "eval.partial.jsonl"
    try:
        rows = run_suite(
            episodes,
            **common,
            partial=partial,
            on_row=kill_a_node_after_the_first_row,
            runner=RunnerConfig(ray=cluster.address, workers=2, start_timeout_s=60),
            report=reports,
        )
    finally:
        ray.shutdown()  # a no-op unless the run failed before leaving
        cluster.shutdown()

    assert killed.is_set()
    report = reports[0]
    assert [r["id"] for r in rows] == [e.id for e in episodes]  # every episode, serial order
    assert not report.failed and all(r["status"] != "lost" for r in rows)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]
    assert strip == [{k: v for k, v in r.items() if k != "wall_s"} for r in serial]
    lost = [a for a in report.retries if a.worker_lost]
    assert lost, f"the killed node's episode was not retried: {report.summary()}"
    assert len(partial.read_text().splitlines()) == len(episodes)
