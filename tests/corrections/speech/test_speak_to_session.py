"""`speak_to_session` on a real Session (MuJoCo, MiniLM router, typed channel): a said
correction is applied as the typed one is, and marked as spoken."""

from __future__ import annotations

import pytest

from corrigible.corrections.speech import speak_to_session
from corrigible.session import Session, SessionConfig, SessionEvent

TASK = "put the red block in the red bowl"
EXPECT = "in(red block, red bowl)"


def _run(router, give) -> tuple[list[dict], object]:
    events: list[SessionEvent] = []
    session = Session(SessionConfig(seed=1), router=router)
    with session:
        session.subscribe(events.append)
        give(session)
        result = session.run(TASK, expect=EXPECT)
        assert session.loop is not None
        records = [r.to_dict() for r in session.loop.records]
    return records, result


@pytest.mark.slow
def test_said_correction_changes_the_run_as_typed(stt, say, router):
    said: list = []
    spoken, spoken_result = _run(
        router,
        lambda s: said.append(
            speak_to_session(s, say("a bit slower", voice="en-us"), transcriber=stt)
        ),
    )
    typed, typed_result = _run(router, lambda s: s.correct("a bit slower"))
    (outcome,) = said
    assert outcome.action == "sent" and outcome.stop_hit is None
    assert outcome.transcript.text.lower().startswith("a bit slower")
    (spoken_record,) = spoken
    (typed_record,) = typed
    assert spoken_record["source"] == "spoken" and typed_record["source"] == "typed"
    for key in ("label", "skill", "params_after", "applied", "status"):
        assert spoken_record[key] == typed_record[key], key
    assert spoken_record["applied"] and spoken_record["params_after"]
    assert spoken_result.expect_holds and typed_result.expect_holds


@pytest.mark.slow
def test_said_stop_before_the_run_is_queued_like_a_typed_stop(stt, say, router):
    session = Session(SessionConfig(seed=1), router=router)
    with session:
        outcome = speak_to_session(session, say("stop", voice="en-gb+f3"), transcriber=stt)
        # no scene yet: nothing moves, so the gate's pause is not needed; the line is queued
        assert outcome.stop_hit is not None and outcome.stop_hit.word == "stop"
        assert outcome.early_action == "none" and outcome.action == "sent"
        assert session.takes_corrections


@pytest.mark.slow
def test_gate_pauses_a_built_session_then_the_full_text_decides(stt, say, router):
    session = Session(SessionConfig(seed=1, interactive=True), router=router)
    with session:
        session.reset(mention=[TASK])
        assert session.gate is not None
        said = say("wait, put it in the green bowl instead", voice="en-gb+f3")
        content = speak_to_session(session, said, transcriber=stt)
        # "wait" paused at once; the rest was a correction, so the pause was lifted and the text
        # went to the typed channel as a spoken line
        assert content.stop_hit is not None and content.early_action == "pause"
        assert content.action == "sent" and content.resumed
        assert "green bowl" in content.transcript.text.lower()
        stop = speak_to_session(session, say("stop", voice="en-gb+f3"), transcriber=stt)
        assert stop.stop_hit is not None and stop.early_action == "pause"
        if stop.action == "stopped":  # the full pass heard "stop" too: the run is ended
            assert session.gate.stopped is not None
        else:  # the full pass misheard it: the provisional pause is lifted, the text sent
            assert stop.action == "sent" and stop.resumed
