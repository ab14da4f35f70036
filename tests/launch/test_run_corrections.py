"""`corrigible run` with typed corrections and a knowledge base, run as a user runs it.

Real subprocesses (real MuJoCo, real MiniLM, real FAISS knowledge base in tmp_path); stdin is
piped for `--interactive`, so its end is a real EOF.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "corrigible.launch.cli"]
PUT = "put the red block in the red bowl"


def corrigible(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def result_of(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(out.stdout.strip().splitlines()[-1])


def events(trace: Path, kind: str) -> list[dict[str, Any]]:
    lines = trace.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["kind"] == kind]


def test_correct_moves_the_place_target_and_expect_holds(tmp_path: Path) -> None:
    out = corrigible(
        "run", PUT, "--correct", "no, the gray bowl", "--expect", "in(red block, gray bowl)",
        "--trace", str(tmp_path / "t.jsonl"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "[correction] 'no, the gray bowl': plan: place target red bowl -> gray bowl for the "
        "red block; applies to this put_first_on_second"
    ) in out.stdout
    [correction] = result_of(out)["corrections"]
    assert correction["status"] == "applied" and correction["target_after"] == "gray bowl"
    assert correction["source"] == "typed" and "gray bowl" in correction["reply"]


def test_interactive_refusals_change_nothing_and_reach_no_memory(tmp_path: Path) -> None:
    kb, trace = tmp_path / "kb", tmp_path / "t.jsonl"
    lines = "\n   \nasdf qwerty\nput it in the purple bowl\n"  # then EOF
    out = corrigible(
        "run", PUT, "--interactive", "--kb", str(kb), "--expect", "in(red block, red bowl)",
        "--trace", str(trace), stdin=lines,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    result = result_of(out)
    assert [c["status"] for c in result["corrections"]] == ["refused"] * 4
    replies = [c["reply"] for c in result["corrections"]]
    assert "is empty" in replies[0] and "is empty" in replies[1]
    assert "could not understand 'asdf qwerty'" in replies[2]
    assert replies[3].startswith("there is no purple bowl here (I see: ")
    assert all(r.endswith("nothing changed") for r in replies)
    assert out.stdout.count("[correction] ") == 4  # one printed reply per line
    assert result["learned"] == []
    skills = {e["skill"]: e for e in events(trace, "skill")}
    assert skills["pick"]["params"]["grasp_offset_y"] == 0.0
    assert skills["place"]["args"]["target"] == "red bowl"
    listed = corrigible("kb", "list", "--kb", str(kb))
    assert listed.returncode == 0, listed.stderr
    assert "put red" not in listed.stdout and "pick the" not in listed.stdout


def test_stop_ends_the_run_cleanly(tmp_path: Path) -> None:
    out = corrigible(
        "run", PUT, "--correct", "stop", "--expect", "in(red block, red bowl)",
        "--trace", str(tmp_path / "t.jsonl"),
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr  # judged as documented: expect fails
    assert "# stopped: the person said 'stop'" in out.stdout
    assert "[program interrupted]" in out.stdout
    result = result_of(out)
    assert result["stopped"] == "stopped: the person said 'stop'"
    assert result["steps"][0]["skills"] == []


@pytest.mark.slow
def test_kb_second_run_recalls_what_the_first_learned(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    first = corrigible(
        "run", "pick up the red block then place it in the red bowl",
        "--correct", "a tiny bit more to the left",  # taken before the pick
        "--correct", "no, the gray bowl",  # taken before put_first_on_second
        "--expect", "in(red block, gray bowl)", "--kb", str(kb),
        "--trace", str(tmp_path / "first.jsonl"),
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    learned = {e["kind"]: e["text"] for e in result_of(first)["learned"]}
    assert learned["preference"] == "put red things in the gray bowl"
    assert "grasp offset y +0.010" in learned["skill_params"]
    second_trace = tmp_path / "second.jsonl"
    second = corrigible(
        "run", PUT, "--expect", "in(red block, gray bowl)", "--kb", str(kb),
        "--trace", str(second_trace),
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    used = {e["entry_kind"]: e for e in events(second_trace, "knowledge.used")}
    assert used["preference"]["text"] == "put red things in the gray bowl"
    assert used["skill_params"]["skill"] == "pick"
    pick = next(e for e in events(second_trace, "skill") if e["skill"] == "pick")
    assert pick["params"]["grasp_offset_y"] == pytest.approx(0.01)
    assert "# recalled for place the red block" in second.stdout


@pytest.mark.parametrize(
    "options",
    [
        ["--memory", "text"],
        ["--kb", "KB", "--memory", "visual"],
        ["--correct", "stop", "--correction-timeout", "0"],
    ],
    ids=["memory-without-kb", "unknown-memory-mode", "zero-timeout"],
)
def test_unusable_correction_options_exit_2(tmp_path: Path, options: list[str]) -> None:
    options = [str(tmp_path / "kb") if o == "KB" else o for o in options]
    out = corrigible("run", PUT, *options, "--trace", str(tmp_path / "t.jsonl"))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "error" in out.stderr
