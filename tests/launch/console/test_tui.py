"""The terminal console through textual's headless harness, on a real session.

Real physics (MuJoCo), the real router and interpreter, a real knowledge base on disk: the
pilot types into the console while the arm moves, and the trace shows what the robot did.
"""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("textual")

from corrigible.launch.console.driver import ConsoleSession, ConsoleSettings  # noqa: E402
from corrigible.launch.console.tui import ConsoleApp, KbScreen  # noqa: E402


async def _until(pilot, cond, timeout: float, what: str) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.02)


def _console(tmp_path: Path, **kw: object) -> ConsoleSession:
    options: dict[str, object] = {
        "instruction": "put the red block in the red bowl",
        "kb": tmp_path / "kb",
        "correction_timeout_s": 1.0,  # the corrected grasp may miss; do not wait long for more
        "learn": False,
        **kw,
    }
    settings = ConsoleSettings(**options)  # type: ignore[arg-type]
    return ConsoleSession(settings)


# Timing-dependent (issue 16 still open): on a quiet machine the pick can end before the
# typed line is taken, and the executing-line mark is then missed; about half the runs on
# 2026-12-03 timed out waiting for it. Kept runnable with -m slow until the console drives the
# keypress from the arm's own tick.
@pytest.mark.slow
def test_typed_correction_during_a_pick_moves_the_grasp(
    tmp_path: Path, tools: SimpleNamespace
) -> None:
    """'a bit to the left' typed while the arm approaches the block: halt, redo, grasp moves."""
    console = _console(tmp_path)
    app = ConsoleApp(console)

    async def drive() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            # The person types while the robot plans, and presses Enter as the pick starts.
            # (The text is set, not typed key by key: a loaded CI machine takes ~0.5 s a key.)
            await pilot.click("#say")
            app.query_one("#say").value = "a bit to the left"
            await _until(pilot, lambda: console.state().skill is not None, 60, "the pick")
            await pilot.press("enter")
            # The executing line is marked while the pick runs.
            marked = "> " + " 2 put_first_on_second('red block', 'red bowl')"
            await _until(
                pilot, lambda: marked in str(app.query_one("#program").render()), 10, "the mark"
            )
            await _until(pilot, lambda: console.state().replies > 0, 30, "the reply")
            await _until(pilot, lambda: console.join(0), 60, "the episode to end")
            await pilot.pause(0.3)
            shown = str(app.query_one("#reply").render())
            assert "grasp_offset_y" in shown  # the reply is on screen
            program = str(app.query_one("#program").render())
            assert "put_first_on_second('red block', 'red bowl')" in program

    try:
        asyncio.run(drive())
        trace = tools.events(console)
    finally:
        console.close()
    kinds = [e["kind"] for e in trace]
    # The correction arrived mid-motion: the arm halted and the skill was redone.
    assert "motion.halted" in kinds and "skill.redo" in kinds
    halted = next(e for e in trace if e["kind"] == "motion.halted")
    assert halted["cause"] == "correction"
    request = next(r for r in console.requests if r["what"] == "correct")
    assert request["preempted"] is True
    hold = next(e for e in trace if e["kind"] == "arm.hold")
    dt = console.session.env.scene.physics.control_dt
    # Within one control tick of the keypress, in simulated time.
    assert hold["sim_time_s"] - request["sim_time_s"] <= dt + 1e-9
    # The grasp moved left (+y in the table frame) by the correction's step; without it the
    # pick grasps at the object's centre (test_grasp_without_correction_is_centred).
    dx, dy = tools.grasp_offset(trace)
    assert abs(dx) < 0.005
    assert 0.02 < dy < 0.04
    changed = next(e for e in trace if e["kind"] == "motion.command_changed")
    assert changed["latency_ms"] > halted["latency_ms"]


def test_grasp_without_correction_is_centred(tmp_path: Path, tools: SimpleNamespace) -> None:
    """The baseline of the test above: the same pick, nothing typed."""
    console = _console(tmp_path)
    console.start()
    try:
        tools.wait_for(lambda: console.join(0), 120, "the episode")
        trace = tools.events(console)
    finally:
        console.close()
    dx, dy = tools.grasp_offset(trace)
    assert abs(dx) < 0.005 and abs(dy) < 0.005
    assert "motion.halted" not in [e["kind"] for e in trace]


def test_keys_pause_resume_and_stop_halt_the_arm(tmp_path: Path, tools: SimpleNamespace) -> None:
    """F5 pauses mid-motion (the simulation stops advancing), F5 resumes, F6 stops.

    Three blocks to stack: the episode outlasts the keys even on a fast machine.
    """
    console = _console(tmp_path, instruction="stack all the blocks")
    app = ConsoleApp(console)

    async def drive() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await _until(pilot, lambda: console.state().skill is not None, 60, "the pick")
            await pilot.press("f5")
            await _until(pilot, lambda: console.state().status == "paused", 5, "the pause")
            await pilot.pause(0.2)
            env = console.session.env
            t_paused = env.backend.time
            await pilot.pause(0.3)
            assert env.backend.time == t_paused  # held: no control tick while paused
            await pilot.press("f5")
            await _until(pilot, lambda: env.backend.time > t_paused, 5, "the resumed motion")
            await pilot.press("f6")
            await _until(pilot, lambda: console.join(0), 30, "the stopped episode")
            await pilot.pause(0.2)
            assert "stopped" in str(app.query_one("#status").render())

    try:
        asyncio.run(drive())
        trace = tools.events(console)
    finally:
        console.close()
    paused = [e for e in trace if e["kind"] == "motion.paused"]
    halted = [e for e in trace if e["kind"] == "motion.halted"]
    assert len(paused) == 1 and len(halted) == 1 and halted[0]["cause"] == "stop"
    assert console.result is not None and not console.result.executed_ok


def _wav(seconds: float = 0.5) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * int(16000 * seconds))
    return buf.getvalue()


def test_push_to_talk_hands_the_clip_to_the_speech_hook(
    tmp_path: Path, tools: SimpleNamespace
) -> None:
    """F8 records a clip and hands it to the transcriber hook; its words become a correction."""
    clip = _wav()
    got: list[tuple[bytes, str]] = []

    def transcriber(audio: bytes, mime: str) -> str:
        got.append((audio, mime))
        return "a bit to the left"

    console = ConsoleSession(
        ConsoleSettings(kb=tmp_path / "kb", correction_timeout_s=1.0, learn=False),
        on_audio=transcriber,
    )
    app = ConsoleApp(console, recorder=lambda: (clip, "audio/wav"))

    async def drive() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await _until(pilot, lambda: console.state().skill is not None, 60, "the pick")
            await pilot.press("f8")
            await _until(pilot, lambda: console.state().replies > 0, 30, "the reply")
            await pilot.press("f6")
            await _until(pilot, lambda: console.join(0), 30, "the stopped episode")

    try:
        asyncio.run(drive())
        trace = tools.events(console)
    finally:
        console.close()
    assert got == [(clip, "audio/wav")]
    spoken = [e for e in trace if e["kind"] == "correction" and e.get("source") == "spoken"]
    assert spoken and spoken[0]["text"] == "a bit to the left"


def test_kb_browser_shows_edits_and_deletes_entries(tmp_path: Path, embedder: object) -> None:
    """F2 lists the real knowledge base's entries with provenance; e edits, d deletes.

    (`embedder`: the suite's MiniLM, loaded once; the knowledge base embeds every rule.)
    """
    from corrigible.memory import KnowledgeBase
    from corrigible.memory.schema import KnowledgeEntry, ObjectScope, Provenance

    with KnowledgeBase.open(tmp_path / "kb") as kb:
        entry_id = kb.add(
            KnowledgeEntry(
                kind="skill_params",
                text="grasp the red block a bit further left",
                skill="pick",
                params={"grasp_offset_y": 0.03},
                scope=ObjectScope(),
                provenance=[Provenance(episode="ep-7", correction_texts=["a bit to the left"])],
            )
        )
    console = ConsoleSession(ConsoleSettings(kb=tmp_path / "kb", learn=False))
    app = ConsoleApp(console, start=False)

    async def drive() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.press("f2")
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, KbScreen)
            detail = str(screen.query_one("#detail").render())
            assert "ep-7" in detail and "'a bit to the left'" in detail  # provenance
            await pilot.press("e")
            box = screen.query_one("#edit")
            assert box.value == "grasp the red block a bit further left"
            box.value = "grasp red blocks 3 cm left"
            await pilot.press("enter")
            await pilot.pause(0.2)
            entries = console.kb_entries()
            assert [e.text for e in entries] == ["grasp red blocks 3 cm left"]
            assert entries[0].id != entry_id  # a superseding entry, provenance kept
            assert any("ep-7" in p for p in entries[0].provenance)
            await pilot.press("d")
            await pilot.pause(0.2)
            assert console.kb_entries() == []
            assert "empty" in str(screen.query_one("#detail").render())

    try:
        asyncio.run(drive())
    finally:
        console.close()


@pytest.mark.slow
def test_knowledge_in_use_is_shown_with_why(tmp_path: Path, tools: SimpleNamespace) -> None:
    """A rule learned in an earlier episode is applied, and the console says which and why."""
    from corrigible.session import Session, SessionConfig

    kb = tmp_path / "kb"
    with Session(SessionConfig(kb=kb, seed=3, corrections=["no, the gray bowl"])) as first:
        result = first.run(tools.INSTRUCTION, expect="in(red block, gray bowl)")
        learned = first.learn(task_succeeded=bool(result.expect_holds))
    assert [d.text for d in learned] == ["put red things in the gray bowl"]
    console = ConsoleSession(
        ConsoleSettings(kb=kb, seed=3, expect="in(red block, gray bowl)", learn=False)
    )
    app = ConsoleApp(console)

    async def drive() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await _until(pilot, lambda: console.join(0), 120, "the episode to end")
            await pilot.pause(0.3)
            shown = str(app.query_one("#knowledge").render())
            assert "put red things in the gray bowl" in shown
            assert "why:" in shown

    try:
        asyncio.run(drive())
    finally:
        console.close()
    (used,) = console.state().knowledge
    assert used.text == "put red things in the gray bowl" and used.why and used.entry_id
    assert console.result is not None and console.result.expect_holds
