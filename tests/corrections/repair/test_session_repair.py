"""`SessionConfig(monitor=..., repair=...)`: a session repairs its own programs.

Runs once the session options exist (the lead applies the `session.py` change that builds
`attach_repair` from them); until then the module is skipped, saying why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corrigible.corrections.repair.faults import Fault, FaultInjector
from corrigible.errors import UnknownNameError
from corrigible.policies.middleware import SkillTracer
from corrigible.session import Session, SessionConfig

pytestmark = pytest.mark.skipif(
    "monitor" not in SessionConfig.model_fields,
    reason="SessionConfig has no monitor/repair options yet (session.py change pending)",
)
TASK = ("put the red block in the blue bowl", "in(red block, blue bowl)")


def _run(tmp_path: Path, **options: object) -> tuple[dict, list[str]]:
    trace = tmp_path / "trace.jsonl"
    config = SessionConfig(engine="mujoco", seed=0, trace=trace, **options)  # type: ignore[arg-type]
    with Session(config) as session:
        session.reset(mention=[TASK[0]])
        assert session.env is not None and session.api is not None
        slip = FaultInjector(
            Fault(kind="grasp_slip"),
            [o.name for o in session.env.scene.objects],
            session.env.arm,
            session.env.trace.emit,
        )
        session.api.use(slip, before=SkillTracer)  # innermost, as the evaluation injects it
        result = session.run(TASK[0], expect=TASK[1]).to_dict()
        slip.close()
    kinds = [json.loads(line)["kind"] for line in trace.read_text().splitlines()]
    return result, kinds


def test_a_session_repairs_a_slipping_grasp(tmp_path: Path) -> None:
    result, kinds = _run(tmp_path, monitor="perception", repair=True)
    (step,) = result["steps"]
    assert result["expect_holds"] is True and step["status"] == "ok"
    assert step["iterations"] == 1 and step["failures"][0]["failure_class"] == "grasp_failure"
    assert kinds.count("repair.attempt") == 1 and "checkpoint.verdict" in kinds


def test_monitoring_alone_localises_but_does_not_repair(tmp_path: Path) -> None:
    result, kinds = _run(tmp_path, monitor="oracle")
    (step,) = result["steps"]
    assert result["expect_holds"] is False and step["status"] == "gave_up"
    assert step["iterations"] == 0 and step["failures"][0]["failure_class"] == "grasp_failure"
    assert "repair.failure" in kinds and "repair.attempt" not in kinds


def test_bad_session_options_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="perception"):
        SessionConfig(monitor="percepton")
    assert SessionConfig(repair=True).monitor == "perception"  # repair needs eyes: the default
    assert SessionConfig().monitor is None  # off unless asked: the plain run is unchanged
