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
