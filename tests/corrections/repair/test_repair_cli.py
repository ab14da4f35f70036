"""`corrigible repair FILE`: one JSON object, bad input answered with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

from corrigible.launch.evaluations.repair import main

PROGRAM = Path(__file__).parent / "programs" / "wrong_name.py"
TASK = ["--instruction", "put the red block in the blue bowl"]


def test_missing_file(capsys, tmp_path: Path) -> None:
    code = main(
        ["repair", str(tmp_path / "nope.py"), *TASK, "--expect", "in(red block, blue bowl)"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and "no such file" in out["error"]


def test_unknown_monitor_and_bad_predicate(capsys) -> None:
    code = main(
        [
            "repair",
            str(PROGRAM),
            *TASK,
            "--expect",
            "in(red block, blue bowl)",
            "--monitor",
            "percepton",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and "UnknownNameError" in out["error"] and "perception" in out["error"]
    code = main(["repair", str(PROGRAM), *TASK, "--expect", "inside(red block, blue bowl)"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["status"] == "error"
