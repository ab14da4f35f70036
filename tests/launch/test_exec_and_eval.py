import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "corrigible.launch.cli"]


def corrigible(*args, timeout=300):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("source", "rc", "status", "error_class"),
    [
        (
            "names = get_obj_names()\nput_first_on_second('purple block', 'gray bowl')\n",
            0,
            "ok",
            None,
        ),
        ("while True:\n    pass\n", 1, "error", "timeout"),
        ("import os\nos.system('touch /tmp/x')\n", 1, "error", "forbidden"),
        ("pick('unicorn')\n", 1, "error", "runtime"),
        ("def f(:\n", 1, "error", "syntax"),
    ],
    ids=["ok", "loop", "import", "unknown-object", "syntax"],
)
def test_exec_prints_one_json_result(tmp_path, source, rc, status, error_class):
    prog = tmp_path / "prog.py"
    prog.write_text(source)
    out = corrigible("exec", str(prog), "--cpu-time-s", "1", "--wall-time-s", "5")
    assert out.returncode == rc, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == status and result["error_class"] == error_class
    if error_class:
        assert result["line"] is not None and result["message"]


def test_exec_bad_file():
    out = corrigible("exec", "/nonexistent/prog.py")
    assert out.returncode == 2 and json.loads(out.stdout)["error_class"] == "usage"


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--wall-time-s", "nan", "must be > 0 s, got nan"),
        ("--wall-time-s", "-1", "must be > 0 s, got -1"),
        ("--wall-time-s", "inf", "must be a finite number of at most 86400 s, got inf"),
        ("--wall-time-s", "1e9", "must be a finite number of at most 86400 s"),
        ("--cpu-time-s", "0", "must be > 0 s, got 0"),
        ("--cpu-time-s", "nan", "must be > 0 s, got nan"),
    ],
    ids=["wall_nan", "wall_negative", "wall_inf", "wall_huge", "cpu_zero", "cpu_nan"],
)
def test_exec_refuses_unusable_limits(tmp_path, flag, value, says):
    prog = tmp_path / "prog.py"
    prog.write_text("x = 1\n")
    out = corrigible("exec", str(prog), flag, value)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and f"{flag} {says}" in out.stderr, out.stderr
    assert json.loads(out.stdout)["error_class"] == "usage"


def test_exec_prints_strict_capped_json(tmp_path):
    # NaN in robot-call arguments made the JSON invalid; the api_calls trace printed megabytes
    # against a 64 KiB output cap.
    prog = tmp_path / "flood.py"
    prog.write_text(
        "say(float('nan'))\n"
        "for i in range(150):\n"
        "    say('y' * 15000)\n"
        "    try:\n"
        "        get_obj_pos('x' * 20000)\n"
        "    except Exception as exc:\n"
        "        pass\n"
    )
    out = corrigible("exec", str(prog), "--sim", "pybullet", "--perception", "privileged")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.encode()) <= 64 * 1024 + 1  # the JSON and its newline

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    result = json.loads(out.stdout, parse_constant=refuse)
    assert result["status"] == "ok" and result["truncated"] is True
    assert result["omitted"]["api_calls"] > 0 and result["api_calls"][0]["args"] == ["nan"]


def test_trace_show_and_eval_smoke(tmp_path):
    out = corrigible(
        "run",
        "stack all the blocks",
        "--expect",
        "stacked(all blocks)",
        "--trace",
        str(tmp_path / "t.jsonl"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    shown = corrigible("trace", "show", str(tmp_path / "t.jsonl"))
    assert (
        shown.returncode == 0 and "plan [grammar]" in shown.stdout and "checkpoint" in shown.stdout
    )
    res = corrigible("eval", "--suite", "smoke", "--limit", "2", "--out", str(tmp_path / "e.json"))
    assert res.returncode == 0, res.stderr
    results = json.loads((tmp_path / "e.json").read_text())
    assert len(results["episodes"]) == 2 and all(e["success"] for e in results["episodes"])


def test_eval_rejects_invalid_suite(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nversion: 1\nepisodes:\n  - id: a\n    family: f\n    instruction: go home\n"
    )
    out = corrigible("eval", "--suite", str(bad))
    assert out.returncode == 2 and "expect" in out.stderr


_SELECTION_SUITE = """name: selection
version: 1
episodes:
- {id: a-train, family: a, split: train, instruction: fly to the moon, expect: "in(red block, blue bowl)", seed: 1, objects: [{kind: block, color: red}, {kind: bowl, color: blue}]}
- {id: a-held-1, family: a, split: heldout, instruction: fly to the moon, expect: "in(red block, blue bowl)", seed: 2, objects: [{kind: block, color: red}, {kind: bowl, color: blue}]}
- {id: a-held-2, family: a, split: heldout, instruction: fly to the moon, expect: "in(red block, blue bowl)", seed: 3, objects: [{kind: block, color: red}, {kind: bowl, color: blue}]}
- {id: b-held-1, family: b, split: heldout, instruction: juggle the bowls, expect: "in(red block, blue bowl)", seed: 4, objects: [{kind: block, color: red}, {kind: bowl, color: blue}]}
"""  # noqa: E501


def test_eval_selects_per_family_and_split_and_counts_refusals_apart(tmp_path):
    """--split heldout --per-family 1 keeps a-held-1 and b-held-1; a refusal is no invalid plan."""
    suite = tmp_path / "selection.yaml"
    suite.write_text(_SELECTION_SUITE)
    out = tmp_path / "e.json"
    res = corrigible(
        "eval", "--suite", str(suite), "--split", "heldout", "--per-family", "1", "--out", str(out)
    )
    assert res.returncode == 0, res.stderr
    results = json.loads(out.read_text())
    assert [e["id"] for e in results["episodes"]] == ["a-held-1", "b-held-1"]
    stats = results["planning"]["mujoco"]
    assert stats["plans"] == 2 and stats["refusals"] == 2, stats
    assert stats["invalid"] == 0 and stats["invalid_per_100_plans"] == 0.0
    assert stats["written_by_llm"] == 0 and stats["fgen_calls"] == 0
    assert set(stats["error_types"]) <= {"ParseError", "UnknownObjectError"}
    assert stats["plan_s_p50"] is not None and stats["plan_s_p50"] < stats["plan_s_p95"] + 1e-9
    bad = corrigible("eval", "--suite", str(suite), "--split", "held-out", "--out", str(out))
    assert bad.returncode == 2 and "heldout" in bad.stderr  # names the suite's splits
