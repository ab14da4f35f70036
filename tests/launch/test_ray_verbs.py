"""`demo` and `events eval` on Ray give the serial figures; `bench scale` measures side by side.

Slow (each starts a local Ray instance and runs real MuJoCo episodes or renders): run with
`python3 -m pytest tests/launch/test_ray_verbs.py -m slow`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

_SCENARIO = """\
version: 1
name: tiny_preference
family: preference
persona: terse
objects:
  - {kind: block, color: red}
  - {kind: bowl, color: blue}
  - {kind: bowl, color: yellow}
preferences:
  - {color: red, target: blue bowl}
rounds:
  - - instruction: put the red block in the yellow bowl
      expect: "in(red block, blue bowl)"
      seed: 1
  - - instruction: put the red block in the yellow bowl
      expect: "in(red block, blue bowl)"
      seed: 2
"""

# Differ between any two runs of the same seeds: times, and knowledge entries' random ids.
_TIMES = ("wall_s", "latencies_s", "mean_latency_ms", "entry_id")


def _without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def test_demo_records_are_the_same_serially_and_on_ray(tmp_path: Path) -> None:
    from corrigible.launch.demo import DemoConfig, run

    (tmp_path / "scen").mkdir()
    (tmp_path / "scen" / "tiny.yaml").write_text(_SCENARIO)
    results = {}
    for name, fields in (("serial", {"workers": 1}), ("ray", {"ray": "local", "workers": 2})):
        out = tmp_path / f"{name}.json"
        results[name] = run(DemoConfig(scenarios=tmp_path / "scen", out=out, **fields))
        assert len((tmp_path / f"{name}.partial.jsonl").read_text().splitlines()) == 6
    serial, ray = results["serial"], results["ray"]
    assert ray["runner"]["backend"] == "ray" and serial["runner"]["backend"] == "serial"
    assert _without_times(ray["tasks"]) == _without_times(serial["tasks"])
    assert _without_times(ray["summary"]) == _without_times(serial["summary"])
    assert ray["acceptance"] == serial["acceptance"]


def test_events_eval_figures_are_the_same_serially_and_on_ray(tmp_path: Path) -> None:
    from corrigible.launch.distributed import RunnerConfig
    from corrigible.launch.evaluations.config_event_camera import load_eval_config
    from corrigible.launch.evaluations.event_camera import run_eval

    cfg = load_eval_config(
        None,
        quick=True,
        overrides={
            "warmup_s": 0.5,
            "conditions": ["low", "changing"],
            "workers": 2,  # the serial path's forked controllers
            "routes": {"test": {"length_m": 4.0}},
            "emulator": {"width": 64, "height": 48},
        },
    )
    serial = run_eval(cfg, log=lambda _line: None)
    partial = tmp_path / "events.partial.jsonl"
    on_ray = run_eval(
        cfg,
        log=lambda _line: None,
        runner=RunnerConfig(ray="local", workers=2),
        partial=partial,
    )
    for key in ("results", "summary", "traces", "acceptance", "bands"):
        assert on_ray[key] == serial[key], key
    lines = [json.loads(line) for line in partial.read_text().splitlines()]
    assert len(lines) == 3 * len(cfg.controllers.enabled)  # reference + 2 conditions x 1 repeat


def test_bench_scale_measures_serial_and_ray_side_by_side() -> None:
    from corrigible.launch.benchmarks.scale import SWEEP_NODES, run_bench

    rows = list(run_bench(quick=True))
    modes = [(r["mode"], r.get("workers")) for r in rows[:3]]
    assert modes == [("serial", 1), ("ray", 1), ("ray", 2)]
    assert all(r["same_rows_as_serial"] for r in rows[1:3])
    assert all(r["episodes_per_s"] > 0 and r["episodes"] == 4 for r in rows[:3])
    overhead = rows[3]
    assert overhead["mode"] == "ray_overhead" and 0 < overhead["per_job_ms"] < 1000
    model = rows[4:]
    assert [r["nodes"] for r in model] == list(SWEEP_NODES)
    hours = [r["hours"] for r in model]
    assert hours == sorted(hours, reverse=True) and hours[-1] > 0  # more nodes, less time
