"""`corrigible route` run as a user runs it (subprocess, real MiniLM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "corrigible.launch.cli", "route"]
DATA = Path(__file__).resolve().parents[2] / "corrections" / "data"
FROZEN = DATA / "labelled_corrections.jsonl"
OTHERS = DATA / "labelled_corrections_others.jsonl"
LABELS = ["plan", "skill", "preference", "control", "undo"]


def _route(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_score_file_prints_one_json_object_and_writes_out(tmp_path):
    out = tmp_path / "score.json"
    proc = _route("--file", str(FROZEN), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result == json.loads(out.read_text())
    assert result["labels"] == LABELS
    assert result["confusion_columns"] == [*LABELS, "ask_back"]
    assert result["n"] == 231 and result["accuracy"] >= 0.9784
    assert sum(map(sum, result["confusion"])) == 231
    assert set(result["per_label"]["skill"]) == {"precision", "recall", "support"}


def test_score_the_second_set_with_undo_and_ask_backs():
    proc = _route("--file", str(OTHERS))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["n"] == 236 and result["accuracy"] >= 0.90
    confusion = result["confusion"]
    assert all(len(row) == len(LABELS) + 1 for row in confusion)
    assert sum(map(sum, confusion)) == 236
    assert sum(row[-1] for row in confusion) == result["ask_backs"]
    correct = sum(confusion[i][i] for i in range(len(LABELS)))
    assert round(correct / 236, 4) == result["accuracy"]
    assert result["per_label"]["undo"]["support"] == 32


def test_text_prints_decision_and_interpretation():
    proc = _route("--text", "a bit more to the left", "--skill", "place")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decision"]["label"] == "skill"
    effect = result["interpretation"]["effects"][0]
    assert (effect["skill"], effect["param"], effect["delta"]) == ("place", "offset_y", 0.03)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"text": "stop", "label": "control"}\n{"text": "oops"\n', ":2:"),
        ('{"text": "stop", "label": "control"}\n\n{"text": "go", "label": "ctrl"}\n', ":3:"),
        ('["stop", "control"]\n', ":1:"),
    ],
    ids=["malformed-json", "unknown-label", "not-an-object"],
)
def test_bad_file_exits_2_naming_the_line(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    proc = _route("--file", str(path))
    assert proc.returncode == 2
    assert needle in proc.stderr


def test_text_undo_has_no_effects_of_its_own():
    proc = _route("--text", "undo that")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decision"]["label"] == "undo" and result["interpretation"] is None
    assert "takes back" in result["note"]


def test_needs_file_or_text():
    proc = _route()
    assert proc.returncode == 2 and "exactly one" in proc.stderr


def test_a_raw_line_separator_inside_a_json_string_is_accepted(tmp_path):
    """U+2028 / U+2029 are valid in JSON strings: lines end at "\\n" only, not where
    `str.splitlines` would split."""
    from corrigible.launch.route import read_labelled

    path = tmp_path / "sep.jsonl"
    path.write_text(
        '{"text": "stop\u2028now", "label": "control"}\r\n{"text": "x\u2029", "label": "plan"}\n',
        encoding="utf-8",
    )
    assert read_labelled(path) == [("stop\u2028now", "control"), ("x\u2029", "plan")]
