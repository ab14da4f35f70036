"""A `vlm:` monitor that hangs or is unreachable mid-run: a classified error, a safe stop.

(The malformed-answer case is `test_vlm_monitor.py::test_a_junk_answer_mid_run_is_a_safe_stop`.)
Real loopback HTTP server, real simulator; the eval verb and `corrigible repair` both report
the monitor's error as a status, never a traceback.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from corrigible.launch.evaluations.repair import main, run_episode

TASK = ("put the red block in the blue bowl", "in(red block, blue bowl)")


def _unreachable() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize("failure", ["timeout", "unreachable"])
def test_a_silent_monitor_stops_the_run(
    vlm_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: str
) -> None:
    if failure == "timeout":
        vlm_server.replies.append(("hang", 10.0))
        monkeypatch.setenv("CORRIGIBLE_VLM_BASE_URL", vlm_server.base_url)
        monkeypatch.setenv("CORRIGIBLE_VLM_TIMEOUT_S", "0.5")
    else:
        monkeypatch.setenv("CORRIGIBLE_VLM_BASE_URL", _unreachable())
    episode = run_episode(
        engine="mujoco",
        seed=0,
        instruction=TASK[0],
        expect=TASK[1],
        monitor="vlm:qwen2-vl-2b-instruct",
        trace=tmp_path / "run" / "trace.jsonl",
    )
    assert episode["status"] == "monitor_error"
    assert episode["monitor_error"]["kind"] == failure
    assert episode["iterations"] == 0 and not episode["attempts"]  # no repair on no evidence
    events = [
        json.loads(line) for line in (tmp_path / "run" / "trace.jsonl").read_text().splitlines()
    ]
    stop = [e for e in events if e["kind"] == "checkpoint.monitor_error"]
    assert len(stop) == 1 and stop[0]["error_kind"] == failure


def test_repair_command_reports_an_unreachable_monitor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    program = tmp_path / "prog.py"
    program.write_text(
        "put_first_on_second('red block', 'blue bowl')\n"
        "checkpoint('red block placed', expect='in(red block, blue bowl)')\n"
    )
    monkeypatch.setenv("CORRIGIBLE_VLM_BASE_URL", _unreachable())
    code = main(
        [
            "repair",
            str(program),
            "--instruction",
            TASK[0],
            "--expect",
            TASK[1],
            "--monitor",
            "vlm:qwen2-vl-2b-instruct",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "monitor_error" and out["monitor_error"]["kind"] == "unreachable"
    assert code == (0 if out["success"] else 1)
