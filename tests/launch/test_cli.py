"""The user-facing commands, run as a user runs them (subprocess, real engines)."""

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "corrigible.launch.cli"]


def corrigible(*args, timeout=300):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_the_verbs():
    out = corrigible("--help")
    assert out.returncode == 0
    for verb in ("demo", "run", "bench"):
        assert verb in out.stdout


@pytest.mark.parametrize("sim", ["mujoco", "pybullet"])
def test_run_acceptance_command(sim, tmp_path):
    out = corrigible(
        "run",
        "put the red block in the blue bowl",
        "--expect",
        "in(red block, blue bowl)",
        "--sim",
        sim,
        "--out",
        str(tmp_path / "r.json"),
        "--trace",
        str(tmp_path / "trace.jsonl"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["expect_holds"] is True and result["exit_status"] == 0
    assert json.loads((tmp_path / "r.json").read_text())["engine"] == sim
    kinds = [
        json.loads(line)["kind"] for line in (tmp_path / "trace.jsonl").read_text().splitlines()
    ]
    assert "skill" in kinds and "arm.move_to" in kinds


def test_run_exit_codes(tmp_path):
    trace = ["--trace", str(tmp_path / "t.jsonl")]
    failed = corrigible(
        "run", "pick up the red block", "--expect", "in(red block, blue bowl)", *trace
    )
    assert failed.returncode == 1
    unverified = corrigible("run", "pick up the red block", *trace)
    assert unverified.returncode == 3 and "unverified" in unverified.stdout
    for bad in (
        ["run", "do a backflip", *trace],
        ["run", "pick up the red block", "--expect", "inn(red block, blue bowl)", *trace],
        ["run", "pick up the red block", "--sim", "gazebo", *trace],
        ["run", "pick up the red block", "--expect", "in(red block, lilac bowl)", *trace],
    ):
        out = corrigible(*bad)
        assert out.returncode == 2, (bad, out.stdout, out.stderr)
        assert "error" in out.stderr.lower()


def test_bench_sim_prints_ratio_for_both_backends():
    out = corrigible("bench", "sim", "--quick")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    rows = [r for r in lines if "backend" in r]
    # Each engine as the machine is, then with a busy process per spare core; a goals row each.
    assert [(r["backend"], r["load"]) for r in rows] == [
        ("mujoco", "quiet"),
        ("pybullet", "quiet"),
        ("mujoco", "busy"),
        ("pybullet", "busy"),
    ]
    for row in rows:
        assert {"raw_steps_per_s", "env_steps_per_s", "ratio", "render_fps"} <= row.keys()
        assert row["ratio"] > 0 and row["render_fps"] > 0
    goals = [r for r in lines if "goals" in r]
    assert [g["goals"] for g in goals] == ["quiet", "busy"]
    assert all(isinstance(g["all_met"], bool) and g["ratio_goal"] == 1.15 for g in goals)


_TINY_SCENARIO = """\
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


def test_demo_writes_results(tmp_path):
    """The default demo (corrections suite) on a one-task-per-round scenario, two workers."""
    (tmp_path / "scen").mkdir()
    (tmp_path / "scen" / "tiny.yaml").write_text(_TINY_SCENARIO)
    out = corrigible(
        "demo", "--scenarios", str(tmp_path / "scen"), "--workers", "2",
        "--out", str(tmp_path / "demo.json"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "demo.json").read_text())
    assert results["suite"] == "corrections" and results["engine"] == "mujoco"
    assert (tmp_path / "demo.png").stat().st_size > 0
    rows = {(r["condition"], r["round"]): r for r in results["summary"]}
    assert set(rows) == {(c, r) for c in ("none", "text", "text+visual") for r in (1, 2)}
    assert len(results["tasks"]) == 6
    assert all(isinstance(t["success"], bool) for t in results["tasks"])
    # the preference is corrected in round 1 and remembered in round 2, except with no memory
    assert rows[("none", 2)]["corrections_per_task"] == 1.0
    assert rows[("text+visual", 2)]["corrections_per_task"] == 0.0


def test_demo_rejects_an_invalid_scenario(tmp_path):
    (tmp_path / "bad.yaml").write_text(_TINY_SCENARIO.replace("persona: terse", "persona: rude"))
    out = corrigible("demo", "--scenarios", str(tmp_path), "--out", str(tmp_path / "d.json"))
    assert out.returncode == 2
    assert "bad.yaml" in out.stderr and "persona" in out.stderr


def test_demo_pickplace_suite_writes_results(tmp_path):
    out = corrigible(
        "demo", "--suite", "pickplace", "--episodes", "1", "--out", str(tmp_path / "demo.json")
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "demo.json").read_text())
    assert set(results["summary"]) == {"mujoco", "pybullet"}
    assert len(results["episodes"]) == 2
    assert all(isinstance(e["success"], bool) for e in results["episodes"])
