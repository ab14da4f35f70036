"""Failure localisation on traces: every class from the evidence that defines it."""

from __future__ import annotations

from pathlib import Path

import pytest

from corrigible.corrections.repair.faults import FaultFile
from corrigible.corrections.repair.localise import FAILURE_CLASSES, FailureRecord, localise
from corrigible.corrections.repair.program import split_program
from corrigible.errors import ConfigError

PROGRAM = (
    "'put the red block in the blue bowl and the green block in the red bowl'\n"
    "put_first_on_second('red block', 'blue bowl')\n"
    "checkpoint('red block placed', expect='in(red block, blue bowl)')\n"
    "put_first_on_second('green block', 'red bowl')\n"
    "checkpoint('green block placed', expect='in(green block, red bowl)')\n"
)


def _result(line: int | None, error_class: str | None = "runtime", message: str = "x") -> dict:
    status = "ok" if error_class is None else "error"
    return {
        "kind": "program.result",
        "status": status,
        "error_class": error_class,
        "line": line,
        "message": message,
    }


def _place(obj: str, target: object, ok: bool = True, message: str = "") -> dict:
    return {
        "kind": "skill",
        "skill": "place",
        "args": {"obj": obj, "target": target},
        "success": ok,
        "message": message,
    }


def _verdict(expect: str, why: str, line: int) -> dict:
    return {
        "kind": "checkpoint.verdict",
        "name": "c",
        "expect": expect,
        "line": line,
        "holds": False,
        "monitor": "perception",
        "reason": why,
        "atoms": [{"atom": expect, "kind": expect.split("(")[0], "holds": False, "why": why}],
    }


FAR = "red block is 24.0 cm from the blue bowl centre (limit 6.5)"
NEAR = "red block is 7.9 cm from the blue bowl centre (limit 6.5)"
CASES = {
    "code_error": [
        {
            "kind": "api",
            "name": "put_first_on_second",
            "error": "UnknownObjectError: no object 'red blok' is visible",
        },
        _result(2),
    ],
    "grasp_failure": [
        {
            "kind": "skill",
            "skill": "pick",
            "args": {"obj": "red block"},
            "success": False,
            "message": "'red block' slipped out of the gripper while lifting (rose 0.1 cm)",
        },
        {"kind": "api", "name": "put_first_on_second", "error": "SkillError: slipped"},
        _result(2),
    ],
    "perception_error": [
        {
            "kind": "skill",
            "skill": "pick",
            "args": {"obj": "red block"},
            "success": False,
            "message": "grasp missed 'red block' (fingers touched nothing)",
        },
        {"kind": "api", "name": "put_first_on_second", "error": "SkillError: missed"},
        _result(2),
    ],
    "wrong_object": [
        _place("cyan block", "blue bowl"),
        _verdict("in(red block, blue bowl)", FAR, 3),
        _result(3),
    ],
    "wrong_target": [
        _place("red block", "gray bowl"),
        _verdict("in(red block, blue bowl)", FAR, 3),
        _result(3),
    ],
    "placement_inaccuracy": [
        _place("red block", "blue bowl", ok=False, message=NEAR),
        {"kind": "api", "name": "put_first_on_second", "error": "SkillError: off"},
        _result(2),
    ],
    "plan_error": [
        {
            "kind": "api",
            "name": "put_first_on_second",
            "error": "SkillError: the drawer is closed (0 cm open); open it first",
        },
        _result(4),
    ],
}


@pytest.mark.parametrize("expected", sorted(CASES), ids=sorted(CASES))
def test_each_class_from_its_evidence(expected: str) -> None:
    record = localise(CASES[expected], split_program(PROGRAM))
    assert record is not None and record.failure_class == expected, record
    assert record.evidence and record.line in (2, 3, 4)
    assert record.subgoal == (0 if record.line in (2, 3) else 1)
    assert record.line_text  # the failing line's code


def test_wrong_object_names_what_was_moved_instead() -> None:
    record = localise(CASES["wrong_object"], split_program(PROGRAM))
    assert record is not None and record.moved_instead == ["cyan block"]
    assert record.obj == "red block" and record.target == "blue bowl"


def test_missing_step_found_by_the_final_look() -> None:
    events = [_place("red block", "blue bowl"), _result(None, error_class=None)]
    final = {
        "holds": False,
        "monitor": "perception",
        "reason": "no",
        "atoms": [
            {
                "atom": "in(green block, red bowl)",
                "kind": "in",
                "holds": False,
                "why": "green block is 30.0 cm from the red bowl centre (limit 6.5)",
            }
        ],
    }
    record = localise(events, split_program(PROGRAM), final=final)
    assert record is not None and record.failure_class == "wrong_object"
    events = [_result(None, error_class=None)]
    record = localise(events, split_program(PROGRAM), final=final)
    assert record is not None and record.failure_class == "plan_error"
    assert localise(events, split_program(PROGRAM), final={**final, "holds": True}) is None


def test_python_errors_and_plan_failures() -> None:
    record = localise([_result(5, "syntax")], split_program("x = (\n"))
    assert record is not None and record.failure_class == "code_error"
    record = localise([_result(2, message="NameError: nme")], split_program(PROGRAM))
    assert record is not None and record.failure_class == "code_error"
    record = localise([{"kind": "plan", "error": "cannot parse"}], split_program(""))
    assert record is not None and record.failure_class == "plan_error"
    assert set(FAILURE_CLASSES) == {*CASES, "unknown"}
    assert (
        "grasp_failure at line 2"
        in FailureRecord(failure_class="grasp_failure", line=2, subgoal=0, message="m").summary()
    )


def test_program_subgoals_and_remainder() -> None:
    parts = split_program(PROGRAM)
    assert [s.expect for s in parts.subgoals] == [
        "in(red block, blue bowl)",
        "in(green block, red bowl)",
    ]
    assert parts.subgoals[1].objects == ("green block",) and parts.at_line(4).index == 1
    rest = parts.remainder(1)
    assert rest.startswith("'put the red") and "red block', 'blue bowl')" not in rest
    loop = split_program("for b in ['a']:\n    put_first_on_second(b, 'x')\n    checkpoint(b)\n")
    assert len(loop.subgoals) == 1 and loop.subgoals[0].expect is None


def test_fault_files(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text("faults:\n  - kind: grasp_slip\n    slip_speed: 0.1\n  - kind: wrong_target\n")
    faults = FaultFile.load(path)
    assert [faults.draw(i, i).kind for i in range(3)] == [
        "grasp_slip",
        "wrong_target",
        "grasp_slip",
    ]
    path.write_text("faults:\n  - kind: gravity_off\n")
    with pytest.raises(ConfigError, match="faults.0.kind"):
        FaultFile.load(path)
    path.write_text("faults:\n  - kind: grasp_slip\n    probability: 0.0\n")
    assert FaultFile.load(path).draw(0, 0) is None
