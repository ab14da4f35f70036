"""The closed loop on real physics: injected faults and buggy programs repaired without a human."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrigible.corrections.repair.faults import Fault
from corrigible.launch.evaluations.repair import RepairRunConfig, repair_file, run_episode
from corrigible.launch.trace import TraceShowConfig
from corrigible.launch.trace import run as show_trace

PROGRAMS = Path(__file__).parent / "programs"
TASK = ("put the red block in the blue bowl", "in(red block, blue bowl)")


def _episode(tmp_path: Path, fault: str | None, *, repair: bool = True, **kw) -> dict:
    return run_episode(
        engine=kw.pop("engine", "mujoco"),
        seed=kw.pop("seed", 0),
        instruction=kw.pop("instruction", TASK[0]),
        expect=kw.pop("expect", TASK[1]),
        fault=None if fault is None else Fault(kind=fault),  # type: ignore[arg-type]
        repair=repair,
        trace=tmp_path / "run" / "trace.jsonl",
        **kw,
    )


def test_a_slipping_grasp_is_repaired_and_shown_in_the_trace(tmp_path: Path, capsys) -> None:
    episode = _episode(tmp_path, "grasp_slip")
    assert episode["fault_struck"] >= 1
    assert episode["success"] and episode["status"] == "ok", episode["failures"]
    (failure,) = episode["failures"]
    assert failure["failure_class"] == "grasp_failure" and failure["line"] == 2
    assert failure["subgoal"] == 0 and failure["obj"] == "red block"
    (attempt,) = episode["attempts"]
    assert attempt["strategy"] == "regrasp_slower"
    assert attempt["params"]["red block"]["pick"]["speed"] < 0.15  # below the slip speed
    # the repaired program resumes from the failed subgoal, the header kept
    assert attempt["program"].splitlines()[1].startswith("put_first_on_second('red block'")
    assert show_trace(TraceShowConfig(episode=str(tmp_path / "run"))) == 0
    shown = capsys.readouterr().out
    assert "FAILURE [grasp_failure] line=2 subgoal=0" in shown
    assert "REPAIR #1 [grasp_failure] regrasp_slower" in shown
    assert "evidence: skill pick failed" in shown


def test_without_repair_the_same_fault_fails(tmp_path: Path) -> None:
    episode = _episode(tmp_path, "grasp_slip", repair=False)
    assert not episode["success"] and episode["status"] == "gave_up"
    assert [f["failure_class"] for f in episode["failures"]] == ["grasp_failure"]
    assert episode["iterations"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "cls", "strategy"),
    [
        ("wrong_object", "wrong_object", "replan_remainder"),
        ("wrong_target", "wrong_target", "replan_remainder"),
        ("placement_offset", "placement_inaccuracy", "retry_with_offset"),
    ],
)
@pytest.mark.parametrize("engine", ["mujoco", "pybullet"])
def test_injected_faults_are_localised_and_repaired(
    tmp_path: Path, engine: str, fault: str, cls: str, strategy: str
) -> None:
    episode = _episode(tmp_path, fault, engine=engine)
    assert episode["success"], episode["failures"]
    assert episode["failures"][0]["failure_class"] == cls
    assert episode["attempts"][0]["strategy"] == strategy
    checks = episode["checkpoints"]
    assert checks and all(c["monitor"] and c["oracle"] for c in checks)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("program", "instruction", "expect", "cls"),
    [
        ("wrong_name.py", *TASK, "code_error"),
        ("api_misuse.py", *TASK, "code_error"),
        ("missing_step.py", *TASK, "plan_error"),
        ("wrong_target.py", *TASK, "wrong_target"),
        (
            "loop_bounds.py",
            "put the red and green blocks in the blue bowl",
            "in(red block, blue bowl) and in(green block, blue bowl)",
            "plan_error",
        ),
    ],
)
def test_buggy_programs_are_repaired(
    tmp_path: Path, program: str, instruction: str, expect: str, cls: str
) -> None:
    result = repair_file(
        RepairRunConfig(
            file=PROGRAMS / program,
            instruction=instruction,
            expect=expect,
            trace=tmp_path / "t.jsonl",
        )
    )
    assert result["failures"][0]["failure_class"] == cls, result["failures"]
    assert result["success"] and result["status"] == "ok", result["failures"]
    json.dumps(result, default=str)  # what `corrigible repair` prints


@pytest.mark.slow
def test_a_repair_that_worked_is_remembered(tmp_path: Path) -> None:
    from corrigible.memory import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb") as kb:
        first = _episode(tmp_path / "1", "grasp_slip", kb=kb, episode="ep-1")
        assert first["success"] and first["iterations"] == 1
        (learned,) = first["learned"]
        entry = kb.get(learned["entry_id"])
        assert entry.kind == "skill_params" and entry.skill == "pick"
        assert "repair" in entry.tags and "failure:grasp_failure" in entry.tags
        assert entry.provenance[0].correction_texts[0].startswith("repair (grasp_failure)")
        second = _episode(tmp_path / "2", "grasp_slip", kb=kb, episode="ep-2")
    assert second["success"] and second["iterations"] == 0 and not second["failures"]
