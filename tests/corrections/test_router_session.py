"""The undo route and asking back, through a real Session (MuJoCo, MiniLM, typed channel)."""

from __future__ import annotations

import pytest

from corrigible.corrections.router import GrammarEmbeddingRouter, GrammarEmbeddingRouterConfig
from corrigible.session import Session, SessionConfig, SessionEvent

# Two object skills, so two points where a typed line is taken: one line before each.
TASK = ["put the red block in the red bowl", "put the green block in the green bowl"]
BOTH = "in(red block, red bowl) and in(green block, green bowl)"
# Routed by embeddings (no grammar rule fires), as a skill change: "lower" at the place.
UNSURE = "you could be lower"


@pytest.fixture(scope="module")
def asking_router(embedder) -> GrammarEmbeddingRouter:
    """A router unsure of every embedding decision (ask_below=1.0), so UNSURE is asked back."""
    return GrammarEmbeddingRouter(GrammarEmbeddingRouterConfig(ask_below=1.0), embedder=embedder)


def _run(lines: list[str], router) -> tuple[Session, list[SessionEvent], object]:
    events: list[SessionEvent] = []
    session = Session(SessionConfig(corrections=lines, seed=1), router=router)
    session.subscribe(events.append)
    result = session.run(TASK, expect=BOTH)
    return session, events, result


def _replies(events: list[SessionEvent]) -> list[dict]:
    return [e.data for e in events if e.kind == "correction.reply"]


def test_said_undo_takes_the_last_correction_back(router):
    session, events, result = _run(["a bit slower", "undo that"], router)
    with session:
        assert router.route("undo that").label == "undo"
        first, second = _replies(events)
        assert first["status"] == "applied", first
        assert second["status"] == "undo", second
        assert second["reply"].startswith("undo: took back 'a bit slower'")
        assert session.loop is not None and session.loop.records == []  # nothing to learn
        assert session.undo() is None  # already taken back
        assert session.learn(task_succeeded=bool(result.expect_holds)) == []
    assert result.expect_holds, result.expect_details


def test_undo_with_nothing_to_undo_says_so(router):
    session, events, result = _run(["undo"], router)
    with session:
        (reply,) = _replies(events)
        assert reply["status"] == "undo" and "no applied correction" in reply["reply"]
    assert result.expect_holds, result.expect_details


def test_ask_back_then_yes_applies_the_asked_correction(asking_router):
    session, events, result = _run([UNSURE, "yes"], asking_router)
    with session:
        asked, applied = _replies(events)
        assert asked["status"] == "asked" and asked["reply"].startswith("did you mean ")
        assert applied["status"] == "applied", applied
        assert applied["text"] == UNSURE  # the asked correction, not the "yes"
        (ask,) = [e.data for e in events if e.kind == "correction.ask"]
        (answer,) = [e.data for e in events if e.kind == "correction.answer"]
        assert ask["text"] == UNSURE and answer["answer"] is True
        assert session.loop is not None
        (record,) = session.loop.records
        assert record.correction.text == UNSURE and record.route["confirmed_by"] == "yes"
        assert record.params_after  # a skill parameter changed
    assert result.expect_holds, result.expect_details


def test_ask_back_then_no_applies_nothing(asking_router):
    session, events, result = _run([UNSURE, "no"], asking_router)
    with session:
        asked, declined = _replies(events)
        assert asked["status"] == "asked"
        assert declined["status"] == "refused" and "did not apply" in declined["reply"]
        (answer,) = [e.data for e in events if e.kind == "correction.answer"]
        assert answer["answer"] is False
        assert session.loop is not None and session.loop.records == []
    assert result.expect_holds, result.expect_details


def test_a_new_correction_instead_of_an_answer_drops_the_question(asking_router):
    session, events, result = _run([UNSURE, "a bit slower"], asking_router)
    with session:
        asked, applied = _replies(events)
        assert asked["status"] == "asked"
        assert applied["status"] == "applied" and applied["text"] == "a bit slower"
        (answer,) = [e.data for e in events if e.kind == "correction.answer"]
        assert answer["answer"] is None
    assert result.expect_holds, result.expect_details
