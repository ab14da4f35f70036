"""The session API in real MuJoCo episodes: corrections, memory, the event stream, the
around-skill chain, and pause / resume / stop / undo from another thread."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from corrigible.errors import ConfigError, UnknownNameError
from corrigible.session import Session, SessionConfig, SessionEvent

PUT = "put the red block in the red bowl"
TO_GRAY = "in(red block, gray bowl)"


def _kinds(events: list[SessionEvent]) -> list[str]:
    return [e.kind for e in events]


def test_bad_options_are_refused_before_anything_is_built():
    with pytest.raises(UnknownNameError, match="Did you mean 'mujoco'"):
        SessionConfig(engine="mujco")
    with pytest.raises(ValidationError, match="seed"):
        SessionConfig(seed=-1)
    with pytest.raises(ValidationError, match="extra"):
        SessionConfig(engnie="mujoco")  # type: ignore[call-arg]
    with pytest.raises(UnknownNameError, match="planner"):
        Session(SessionConfig(planner="gramar"))


def test_a_correction_acts_is_streamed_and_is_remembered(tmp_path, router):
    kb = tmp_path / "kb"
    events: list[SessionEvent] = []
    with Session(SessionConfig(kb=kb, episode="first"), router=router) as session:
        unsubscribe = session.subscribe(events.append)
        session.correct("no, the gray bowl")
        result = session.run(PUT, expect=TO_GRAY)
        learned = session.learn(task_succeeded=bool(result.expect_holds))
        assert session.api is not None
        chain = session.api.describe_middleware()
        unsubscribe()
        session.env.trace.emit("after.unsubscribe")  # type: ignore[union-attr]
    assert result.expect_holds, result.expect_details
    assert chain == [
        "RunGate",
        "SafetyGate",
        "MemoryLookup",
        "PlanRuleGuard",
        "CorrectionLoop",
        "SkillTracer",
    ]
    kinds = _kinds(events)
    for kind in ("plan", "program.lines", "skill.start", "skill.end", "correction.reply"):
        assert kind in kinds, kind
    assert "after.unsubscribe" not in kinds
    assert kinds.index("correction.reply") < kinds.index("skill.start")  # taken before the skill
    (reply,) = [e.data for e in events if e.kind == "correction.reply"]
    assert reply["status"] == "applied" and "gray bowl" in reply["reply"]
    assert all(e.episode == "first" for e in events)
    assert [d.text for d in learned] == ["put red things in the gray bowl"]
    # A new session on the same knowledge base needs no correction.
    again: list[SessionEvent] = []
    with Session(SessionConfig(kb=kb, seed=3, episode="second"), router=router) as session:
        session.subscribe(again.append)
        result = session.run(PUT, expect=TO_GRAY)
    assert result.expect_holds, result.expect_details
    (used,) = [e.data for e in again if e.kind == "knowledge.used"]
    assert used["text"] == "put red things in the gray bowl"


def test_a_plain_session_runs_without_the_correction_links():
    with Session(SessionConfig(seed=2)) as session:
        result = session.run(
            "put the blue block in the green bowl", expect="in(blue block, green bowl)"
        )
        assert session.api is not None
        assert session.api.describe_middleware() == ["RunGate", "SafetyGate", "SkillTracer"]
        with pytest.raises(ConfigError, match="without a correction channel"):
            session.correct("no, the red bowl")
    assert result.expect_holds, result.expect_details


def test_correct_refuses_what_it_cannot_deliver(router):
    with Session(SessionConfig(corrections=["no, the gray bowl"]), router=router) as session:
        session.run(PUT)
        with pytest.raises(ConfigError, match="closes when the run starts"):
            session.correct("a bit more to the left")
    with Session(SessionConfig(), corrector=_Silent(), router=router) as session:
        session.reset(mention=[PUT])
        with pytest.raises(ConfigError, match="scripted corrector"):
            session.correct("no")


def test_undo_takes_a_correction_back_so_nothing_is_learned(tmp_path, router):
    with Session(
        SessionConfig(kb=tmp_path / "kb", corrections=["no, the gray bowl"]), router=router
    ) as session:
        result = session.run(PUT, expect=TO_GRAY)
        undone = session.undo()
        assert undone is not None and undone["text"] == "no, the gray bowl"
        assert session.undo() is None
        assert session.learn(task_succeeded=bool(result.expect_holds)) == []
        assert session.env is not None
        assert session.env.trace.of_kind("correction.undone")


def _run_in_thread(
    session: Session, instruction: str, expect: str
) -> tuple[threading.Thread, list]:
    out: list = []

    def target() -> None:
        out.append(session.run(instruction, expect=expect))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_pause_holds_the_arm_until_resume():
    # The run thread builds the scene too: a GL context belongs to the thread that made it.
    with Session(SessionConfig(seed=1)) as session:
        moving = threading.Event()
        session.subscribe(lambda e: e.kind == "arm.move_to" and moving.set())
        thread, out = _run_in_thread(session, PUT, "in(red block, red bowl)")
        assert moving.wait(120), "the arm never moved"
        assert session.env is not None
        session.pause()
        time.sleep(0.5)  # the arm stops at its next control step
        held = session.env.backend.time
        time.sleep(1.0)
        assert session.env.backend.time == held, "simulated time went on while paused"
        assert thread.is_alive()
        session.resume()
        thread.join(300)
        assert not thread.is_alive()
    (result,) = out
    assert result.expect_holds, result.expect_details


def test_stop_ends_the_run_at_once_and_the_session_refuses_more():
    with Session(SessionConfig(seed=1)) as session:
        moving = threading.Event()
        session.subscribe(lambda e: e.kind == "arm.move_to" and moving.set())
        thread, out = _run_in_thread(session, PUT, "in(red block, red bowl)")
        assert moving.wait(120), "the arm never moved"
        session.stop("the operator pressed stop")
        thread.join(120)
        assert not thread.is_alive()
        (result,) = out
        (step,) = result.steps
        assert step["status"] == "error" and step["error_class"] == "interrupted", step
        assert not result.expect_holds
        with pytest.raises(ConfigError, match="stopped"):
            session.run(PUT)


class _Silent:
    """A scripted corrector that never says anything."""

    def watch(self, api) -> None:
        pass

    def on_failure(self, *args, **kwargs):
        return None

    def before_place(self, *args, **kwargs):
        return None


def test_an_engaged_e_stop_refuses_the_next_skill_with_a_way_out():
    with Session(SessionConfig(seed=1)) as session:
        session.reset(mention=[PUT])
        assert session.env is not None
        session.env.arm.stop()
        result = session.run(PUT, expect="in(red block, red bowl)")
        (step,) = result.steps
        assert step["status"] != "ok" and "e-stop is engaged" in step["message"], step
        session.env.arm.reset_stop()
        again = session.run(PUT, expect="in(red block, red bowl)")
    assert again.expect_holds, again.expect_details


def test_a_subscriber_that_raises_is_dropped_and_the_run_goes_on():
    seen: list[str] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("viewer bug")

    with Session(SessionConfig(seed=1)) as session:
        session.subscribe(broken)
        session.subscribe(lambda e: seen.append(e.kind))
        result = session.run(PUT, expect="in(red block, red bowl)")
        assert session.env is not None
        (dropped,) = session.env.trace.of_kind("session.subscriber_dropped")
    assert result.expect_holds, result.expect_details
    assert "viewer bug" in dropped["error"]
    assert "skill.end" in seen  # the healthy subscriber kept receiving


@pytest.mark.parametrize(
    "bias",
    [(0.0, float("nan"), 0.0), (float("inf"), 0.0, 0.0), (0.0, 0.0, 1e9), (-0.2, 0.0, 0.0)],
    ids=["nan", "inf", "1e9", "beyond-0.1"],
)
def test_camera_bias_is_finite_and_small(bias):
    with pytest.raises(ConfigError, match="camera_bias"):
        SessionConfig(camera_bias=bias)
    assert SessionConfig(camera_bias=(0.1, -0.1, 0.0)).camera_bias == (0.1, -0.1, 0.0)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0])
def test_correction_timeout_is_finite_and_positive(timeout):
    with pytest.raises(ValidationError, match="correction_timeout_s"):
        SessionConfig(correction_timeout_s=timeout)
