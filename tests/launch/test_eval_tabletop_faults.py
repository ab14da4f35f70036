"""`corrigible eval --suite tabletop-faults`: the repair evaluation through the eval verb.

Real physics, one seed: the JSON's shape, figures that follow from the episodes (not
constants), a PNG that shows something, and bad options refused before any physics starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from corrigible.launch.cli import build_app

CLI = [sys.executable, "-m", "corrigible.launch.cli"]


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "eval", "--suite", "tabletop-faults", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _check_figures(results: dict, settings: list[str], engine: str) -> None:
    """Every figure of the summary recomputed from the episode records."""
    summary, episodes = results["summary"], results["episodes"]
    assert sorted(summary["settings"]) == sorted(settings)
    for setting, row in summary["settings"].items():
        eps = [e for e in episodes if e["repair"] == (setting == "on")]
        assert row["episodes"] == len(eps) == 1
        assert row["successes"] == sum(e["success"] for e in eps)
        assert row["success"] == pytest.approx(row["successes"] / len(eps))
        assert row["iterations_per_episode"] == [e["iterations"] for e in eps]
        assert row["iterations_per_episode"] == [len(e["attempts"]) for e in eps]
        assert list(row["by_engine"]) == [engine]
    records = [f["failure_class"] for e in episodes for f in e["failures"]]
    assert sum(summary["failure_classes"].values()) == len(records)
    assert set(summary["failure_classes"]) == set(records)
    for e in episodes:
        assert e["engine"] == engine and e["wall_s"] > 0 and e["fault_struck"] >= 1
        assert e["success"] == (e["status"] == "ok")  # the oracle agrees with the monitor here


def test_repair_on_and_off_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    res = _eval("--sim", "mujoco", "--seeds", "1", "--out", str(out))
    assert res.returncode == 0, res.stderr
    results = json.loads(out.read_text())
    _check_figures(results, ["on", "off"], "mujoco")
    summary = results["summary"]
    # Seed 0 draws the first built-in fault, a certain grasp slip: without repair it fails, the
    # repair (a slower lift) makes it succeed, so the gain is measured, here 100 points.
    on, off = summary["settings"]["on"], summary["settings"]["off"]
    assert [e["fault"] for e in results["episodes"]] == ["grasp_slip", "grasp_slip"]
    assert off["successes"] == 0 and off["iterations_per_episode"] == [0]
    assert on["iterations_per_episode"][0] >= 1
    assert summary["success_gain_points"]["mujoco"] == pytest.approx(
        100 * (on["success"] - off["success"])
    )
    assert summary["class_accuracy"] is not None and summary["faults_acted"] == 2
    # What the verb prints: success per setting, iterations per episode, the histogram.
    assert "tabletop-faults" in res.stdout and "iter./episode" in res.stdout
    assert "failure classes" in res.stdout and "grasp_failure" in res.stdout
    assert f"{on['successes']}/1" in res.stdout and "points" in res.stdout
    # The PNG beside the JSON: a real picture with bars in it, not a blank canvas.
    png = cv2.imread(str(out.with_suffix(".png")))
    assert png is not None and png.shape[0] > 200 and float(np.std(png)) > 10
    assert summary["png"] == str(out.with_suffix(".png"))
    traces = sorted(p.parent.name for p in out.with_suffix("").glob("*/trace.jsonl"))
    assert traces == ["mujoco-s0-repair-off", "mujoco-s0-repair-on"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["pybullet"])
def test_one_setting_with_a_fault_file_and_oracle(tmp_path: Path, engine: str) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - kind: placement_offset\n    offset: [0.08, 0.0]\n")
    out = tmp_path / "off.json"
    res = _eval(
        "--sim",
        engine,
        "--seeds",
        "1",
        "--repair",
        "off",
        "--monitor",
        "oracle",
        "--faults",
        str(faults),
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    results = json.loads(out.read_text())
    _check_figures(results, ["off"], engine)
    assert results["summary"]["monitor"] == "oracle"
    assert results["summary"]["success_gain_points"] == {}  # one setting: no difference
    assert results["episodes"][0]["fault"] == "placement_offset"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--suite", "tabletop-faults", "--repair", "maybe"], "--repair must be on, off"),
        (["--suite", "tabletop-faults", "--repair", "on,on"], "each once"),
        (["--suite", "tabletop-faults", "--monitor", "percepton"], "perception"),
        (["--suite", "tabletop-faults", "--monitor", "vlm:"], "vlm"),
        (["--suite", "tabletop-faults", "--seeds", "0"], "seeds"),
        (["--suite", "tabletop-faults", "--max-iterations", "-1"], "max_iterations"),
        (["--suite", "tabletop-faults", "--ray"], "--ray"),
        (["--suite", "tabletop-faults", "--limit", "2"], "--limit"),
        (["--suite", "tabletop-faults", "--faults", "missing.yaml"], "no such file"),
        (["--suite", "smoke", "--repair", "on"], "belong"),
        (["--suite", "smoke", "--monitor", "oracle", "--seeds", "2"], "--monitor, --seeds"),
    ],
    ids=[
        "repair-word",
        "repair-twice",
        "monitor-typo",
        "vlm-no-model",
        "no-seeds",
        "negative-iterations",
        "ray",
        "limit",
        "fault-file",
        "repair-on-other-suite",
        "monitor-on-other-suite",
    ],
)
def test_bad_options_are_refused_before_physics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CORRIGIBLE_VLM_BASE_URL", raising=False)
    res = CliRunner().invoke(build_app(), ["eval", *args, "--out", str(tmp_path / "e.json")])
    assert res.exit_code == 2, res.output
    assert says in res.output and res.output.count("error:") == 1
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "e").exists()
