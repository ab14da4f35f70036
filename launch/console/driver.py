"""`ConsoleSession`: one session run in a worker thread, seen and corrected from a console.

Both consoles (the terminal UI in `tui.py` and the web page in `web.py`) are views of this
object: it runs a `Session` in sim in a worker thread (reset, camera and motion all happen in
that one thread, which owns the physics and its GL context), keeps a `ConsoleState` snapshot
that the views poll, and forwards the person's keys and words to the session:

* a correction goes to the session's typed channel and preempts a moving arm through the run
  gate (`policies.middleware.RunGate.preempt`): the arm halts within one control tick, the skill
  is redone from where the arm is with the correction applied;
* pause / resume / stop / e-stop act within one control tick (the gate's tick hook);
* push-to-talk audio goes to `hear()`, which transcribes it with the speech package when it is
  installed (`corrigible.corrections.speech`) and otherwise hands it to the `on_audio` hook.

Every request is time-stamped here (wall, `time.perf_counter`); the gate traces the halts and
the changed commands with their latencies ("motion.halted", "motion.command_changed").
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from corrigible.errors import ConfigError, CorrigibleError

if TYPE_CHECKING:
    from corrigible.memory import KnowledgeBase
    from corrigible.session import EpisodeResult, Session, SessionEvent

Status = Literal["idle", "starting", "running", "paused", "stopped", "done", "failed"]
AudioHook = Callable[[bytes, str], "str | None"]  # (audio, MIME type) -> transcript or None

TRACE_TAIL = 200  # trace lines kept for the views
MAX_AUDIO_BYTES = 10 * 1024 * 1024  # a push-to-talk clip larger than this is refused (10 MiB)
MAX_TEXT_CHARS = 500  # a correction longer than this is refused before it reaches the session


class ConsoleSettings(BaseModel):
    """How the console runs its session (the verb's options, less the view)."""

    instruction: str = "put the red block in the red bowl"  # what the robot is asked to do
    expect: str | None = None  # success predicate judged at the end, e.g. "in(red block, ...)"
    sim: str = "mujoco"  # physics engine
    seed: int = Field(default=0, ge=0)  # layout seed
    kb: Path | None = None  # knowledge base directory (recall, learn, browse); None: none
    trace: Path | None = None  # JSONL trace file; None keeps the trace in memory
    correction_timeout_s: float = Field(default=60.0, gt=0, allow_inf_nan=False)  # s
    camera_period_s: float = Field(default=0.2, gt=0, allow_inf_nan=False)  # s between frames
    camera: bool = False  # render camera frames (the web page shows them)
    learn: bool = True  # distil the episode's corrections into the kb at the end


class TraceLine(BaseModel):
    """One event as the views show it."""

    wall_s: float  # s since the episode started
    kind: str  # the trace event kind
    text: str  # a one-line summary


class KnowledgeInUse(BaseModel):
    """A knowledge-base entry the run applied, and why."""

    entry_id: str
    text: str  # the rule
    why: str  # the retriever's reason (matching attributes, scores)


class ConsoleState(BaseModel):
    """What the views show; a snapshot taken under the console's lock."""

    status: Status = "idle"
    instruction: str = ""
    program: list[str] = Field(default_factory=list)  # the program's source lines
    line: int | None = None  # the executing line (1-based), None outside the program
    skill: str | None = None  # the skill running, e.g. "put_first_on_second('red block', ...)"
    trace: list[TraceLine] = Field(default_factory=list)  # the tail, oldest first
    knowledge: list[KnowledgeInUse] = Field(default_factory=list)
    reply: str = ""  # the last correction's reply
    replies: int = 0  # replies so far (views notice a new one)
    result: str = ""  # the outcome line once the run ended
    latencies: list[dict[str, Any]] = Field(default_factory=list)  # the gate's halt records
    events: int = 0  # events seen so far (views notice a change)
    frames: int = 0  # camera frames rendered so far (the page reloads the image on a change)


class KbEntryView(BaseModel):
    """A knowledge-base entry for the browser, with its provenance."""

    id: str
    kind: str
    text: str
    skill: str | None = None
    params: dict[str, float] = Field(default_factory=dict)
    scope: str = ""
    provenance: list[str] = Field(default_factory=list)  # "episode: 'correction', ..." per source
    confidence: float = 0.0
    active: bool = True


def _summary(event: SessionEvent) -> str:
    d = event.data
    kind = event.kind
    if kind == "correction.reply":
        return f"{d.get('text', '')!r} -> {d.get('reply', '')}"
    if kind in ("skill.start", "skill.redo"):
        return f"{d.get('skill')}({', '.join(repr(a) for a in d.get('args', []))})"
    if kind == "skill.end":
        return f"{d.get('skill')} {'ok' if d.get('success') else 'failed'} {d.get('error') or ''}"
    if kind.startswith("motion."):
        return f"{d.get('cause', '')} {d.get('reason', '')} {d.get('latency_ms', 0):.1f} ms".strip()
    if kind.startswith("arm.") and "final_pos" in d:
        return f"to {[round(x, 3) for x in d['final_pos']]} reached={d.get('reached')}"
    if kind == "knowledge.used":
        return str(d.get("text") or d.get("entry", ""))[:120]
    text = ", ".join(f"{k}={v}" for k, v in d.items() if k not in ("program", "result"))
    return text[:160]


class ConsoleSession:
    """A session in a worker thread, with a state snapshot and the person's controls.

    Args:
        settings: what to run.
        kb: an open knowledge base (the caller closes it); None: opened from `settings.kb`.
        on_audio: where push-to-talk audio goes when no transcriber is installed (None: the
            audio is kept in `heard` and the reply says that speech is not installed).
    """

    def __init__(
        self,
        settings: ConsoleSettings,
        *,
        kb: KnowledgeBase | None = None,
        on_audio: AudioHook | None = None,
    ) -> None:
        self.settings = settings
        self._kb = kb
        self._owns_kb = False
        self._kb_lock = threading.Lock()
        self._stt: Any = None  # the speech transcriber, loaded on the first clip
        self._stt_lock = threading.Lock()
        self.on_audio = on_audio
        self.heard: list[tuple[bytes, str]] = []  # push-to-talk clips received (audio, MIME)
        self.requests: list[dict[str, Any]] = []  # every control / correction, time-stamped
        self._lock = threading.Lock()
        self._state = ConsoleState(instruction=settings.instruction)
        self._trace: deque[TraceLine] = deque(maxlen=TRACE_TAIL)
        self._frame: bytes | None = None  # the last camera frame, PNG
        self._frame_at = 0.0
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.session: Session | None = None
        self.result: EpisodeResult | None = None
        self.error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Starts the episode in a worker thread (returns at once)."""
        if self._thread is not None:
            raise ConfigError("this console already ran its episode; start a new console")
        self._set(status="starting")
        self._thread = threading.Thread(target=self._work, name="console-session", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Blocks until the scene is built (corrections and controls then reach the run)."""
        return self._ready.wait(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the episode to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stops a running episode and releases the session (twice: ok)."""
        if self.session is not None and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(CorrigibleError):
                self.session.stop("the console closed")
            self._thread.join(10.0)
        if self.session is not None:
            self.session.close()
        with self._stt_lock:
            if self._stt is not None:
                self._stt.close()
                self._stt = None
        with self._kb_lock:
            if self._owns_kb and self._kb is not None:
                self._kb.close()
                self._kb, self._owns_kb = None, False

    def _work(self) -> None:
        from corrigible.corrections.typed import TypedCorrector
        from corrigible.session import Session, SessionConfig

        s = self.settings
        try:
            channel = TypedCorrector(
                [],
                interactive=True,
                timeout_s=s.correction_timeout_s,
                reply=lambda _line: None,  # replies arrive as "correction.reply" events
                prompt=lambda _line: None,  # a terminal UI owns the screen
            )
            kb = self._open_kb()
            config = SessionConfig(
                engine=s.sim,
                seed=s.seed,
                kb=None,  # given open (the browser shares it)
                trace=s.trace,
                interactive=True,
                correction_timeout_s=s.correction_timeout_s,
            )
            session = Session(config, kb=kb, corrector=channel)
            self.session = session
            session.subscribe(self._on_event)
            session.reset(mention=[s.instruction, s.expect])
            assert session.gate is not None and session.env is not None
            session.gate.watch(session.env.arm, session.env.trace)
            if s.camera:
                self._render()  # the first frame also sets up the renderer, in this thread
                session.env.arm.add_tick_hook(self._camera_tick)
            self._ready.set()
            self._set(status="running")
            result = session.run(s.instruction, expect=s.expect)
            self.result = result
            ok = result.expect_holds if result.expect is not None else result.executed_ok
            if s.learn and session.kb is not None:
                session.learn(task_succeeded=bool(ok))
            stopped = session.gate.stopped
            outcome = stopped or ("done" if result.executed_ok else "failed")
            line = f"{outcome}; expect {result.expect}: {result.expect_holds}"
            self._set(status="stopped" if stopped else "done", result=line)
        except Exception as exc:  # the views must see any end, a bug's included
            self.error = f"{type(exc).__name__}: {exc}"
            self._set(status="failed", result=self.error)
            if not isinstance(exc, CorrigibleError):
                raise
        finally:
            self._ready.set()
            if self.settings.camera and self.session is not None:
                with contextlib.suppress(Exception):
                    self._render()

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> ConsoleState:
        """A snapshot for the views."""
        with self._lock:
            state = self._state.model_copy(deep=True)
            state.trace = list(self._trace)
        gate = self.session.gate if self.session is not None else None
        if gate is not None:
            state.latencies = list(gate.latencies)
        return state

    def _set(self, **fields: Any) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self._state, name, value)

    def _on_event(self, event: SessionEvent) -> None:
        """The session's subscriber (motion thread): updates the snapshot, never blocks."""
        d = event.data
        line = TraceLine(wall_s=round(event.wall_s, 3), kind=event.kind, text=_summary(event))
        with self._lock:
            st = self._state
            self._trace.append(line)
            st.events += 1
            if event.kind == "plan" and d.get("program"):
                st.program = str(d["program"]).splitlines()
            elif event.kind == "program.lines" and d.get("lines"):
                st.line = int(d["lines"][-1])
            elif event.kind == "program.api_call_start" and d.get("line"):
                st.line = int(d["line"])
            elif event.kind in ("skill.start", "skill.redo"):
                st.skill = line.text
            elif event.kind == "skill.end":
                st.skill = None
            elif event.kind == "program.result":
                st.line = None
            elif event.kind == "correction.reply":
                st.reply = f"{d.get('text', '')!r}: {d.get('reply', '')}"
                st.replies += 1
                gate = self.session.gate if self.session is not None else None
                if gate is not None:  # taken already (e.g. by a failed skill waiting for it)
                    gate.withdraw(f"correction: {d.get('text', '')}")
            elif event.kind == "knowledge.used":  # `corrections.retrieval` records
                entry_id = str(d.get("entry_id", ""))
                why = f"{d.get('skill')} {d.get('obj')} by {d.get('mode')}: {d.get('reason', '')}"
                used = KnowledgeInUse(entry_id=entry_id, text=str(d.get("text", "")), why=why)
                st.knowledge = [k for k in st.knowledge if k.entry_id != entry_id] + [used]

    # -- camera --------------------------------------------------------------------------------
    def _render(self) -> None:
        from PIL import Image

        assert self.session is not None and self.session.env is not None
        env = self.session.env
        if env.backend is None:
            return
        rgb = env.backend.render(env.camera)[0]
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        with self._lock:
            self._frame, self._frame_at = buf.getvalue(), time.perf_counter()
            self._state.frames += 1

    def _camera_tick(self, _arm: object) -> None:
        if time.perf_counter() - self._frame_at >= self.settings.camera_period_s:
            self._render()

    def frame(self) -> bytes | None:
        """The last camera frame as PNG bytes (None before the first)."""
        with self._lock:
            return self._frame

    # -- the person's controls -----------------------------------------------------------------
    def _built(self) -> Session:
        if self.session is None or not self._ready.is_set() or self.session.gate is None:
            raise ConfigError("the scene is not built yet; wait a moment and try again")
        return self.session

    def _log(self, what: str, t: float | None = None, **fields: Any) -> dict[str, Any]:
        """Records a request: wall time `t` (default now) and the simulated time it came at."""
        record = {"what": what, "t": time.perf_counter() if t is None else t, **fields}
        env = self.session.env if self.session is not None else None
        if env is not None and env.backend is not None:
            record["sim_time_s"] = env.backend.time  # a float read; the motion thread writes it
        self.requests.append(record)
        if env is not None:
            env.trace.emit("console.request", what=what, **fields)
        return record

    def correct(
        self,
        text: str,
        source: Literal["typed", "spoken"] = "typed",
        *,
        since: float | None = None,
    ) -> dict[str, Any]:
        """Gives a correction; a moving arm halts at its next tick and the skill is redone.

        Args:
            text: the person's words.
            source: typed, or spoken (transcribed push-to-talk).
            since: when the person acted (`time.perf_counter()`), default now.

        Returns:
            The time-stamped request (with `preempted`: whether a motion was interrupted).

        Raises:
            ConfigError: empty or over-long text, or the scene is not built yet.
        """
        text = text.strip()
        if not text:
            raise ConfigError("the correction is empty; type what the robot should do instead")
        if len(text) > MAX_TEXT_CHARS:
            raise ConfigError(
                f"the correction has {len(text)} characters (at most {MAX_TEXT_CHARS}); "
                "say one short thing at a time"
            )
        session = self._built()
        t = time.perf_counter() if since is None else since
        session.correct(text, source=source)
        assert session.gate is not None
        preempted = session.gate.preempt(f"correction: {text}", since=t)
        return self._log("correct", t, text=text, source=source, preempted=preempted)

    def pause(self) -> None:
        """Holds the arm at its next tick."""
        self._log("pause")
        self._built().pause()
        self._set(status="paused")

    def resume(self) -> None:
        """Lets a paused run go on."""
        self._log("resume")
        self._built().resume()
        self._set(status="running")

    def toggle_pause(self) -> None:
        """Pause when running, resume when paused."""
        if self.state().status == "paused":
            self.resume()
        else:
            self.pause()

    def stop(self, *, estop: bool = False) -> None:
        """Ends the run; the arm halts at its next tick (`estop`: also engages the e-stop)."""
        session = self._built()
        self._log("estop" if estop else "stop")
        assert session.gate is not None
        session.gate.stop("e-stop pressed in the console" if estop else "stop pressed", estop=estop)
        session.stop("e-stop pressed in the console" if estop else "stop pressed")

    def undo(self) -> str:
        """Takes back the last applied correction; returns the reply shown."""
        self._log("undo")
        record = self._built().undo()
        reply = "nothing to undo" if record is None else f"undid {record['text']!r}"
        self._reply(reply)
        return reply

    def hear(self, audio: bytes, mime: str = "audio/wav") -> str | None:
        """Push-to-talk: transcribes `audio` and gives it as a spoken correction.

        With an `on_audio` hook the hook transcribes; otherwise the speech package does
        (`corrigible.corrections.speech`, `pip install 'corrigible[speech]'`): a leading stop
        word ("stop", "wait") pauses the arm before the full transcription, and the text then
        goes to the session as a typed line would, halting a moving arm. Latencies run from the
        clip's arrival, i.e. the end of the utterance.

        Returns:
            The transcript given as a correction, or None when nothing was sent.

        Raises:
            ConfigError: an empty or over-large clip, or the scene is not built yet.
        """
        if not audio:
            raise ConfigError("the push-to-talk clip is empty; hold the key while speaking")
        if len(audio) > MAX_AUDIO_BYTES:
            raise ConfigError(
                f"the push-to-talk clip has {len(audio)} bytes (at most {MAX_AUDIO_BYTES}); "
                "say one short correction at a time"
            )
        t = time.perf_counter()
        self.heard.append((audio, mime))
        self._log("audio", t, bytes=len(audio), mime=mime)
        if self.on_audio is not None:
            text = self.on_audio(audio, mime)
            if text and text.strip():
                self.correct(text, source="spoken", since=t)
                return text.strip()
            self._reply("heard nothing I could write down; say it again")
            return None
        session = self._built()
        try:
            from corrigible.corrections.speech import speak_to_session

            spoken = speak_to_session(session, audio, transcriber=self._transcriber())
        except ImportError as exc:
            self._reply(
                f"heard {len(audio)} bytes of audio, but speech is not installed "
                f"(pip install 'corrigible[speech]'; {exc}); type the correction meanwhile"
            )
            return None
        except CorrigibleError as exc:
            self._reply(f"could not use the recording: {exc}")
            return None
        text = spoken.transcript.text.strip()
        self._log("heard", text=text, action=spoken.action, early=spoken.early_action)
        if spoken.action == "sent":
            assert session.gate is not None
            session.gate.preempt(f"correction: {spoken.transcript.text}", since=t)
            return text
        if spoken.action == "stopped":
            self._set(status="stopped")
        elif spoken.action == "paused":
            self._set(status="paused")
        self._reply(f"heard {text!r}: {spoken.action.replace('_', ' ')}")
        return None

    def _reply(self, text: str) -> None:
        with self._lock:
            self._state.reply = text
            self._state.replies += 1

    def _transcriber(self) -> Any:
        """The speech backend, loaded on the first clip (its model loads in ~2 s) and kept."""
        with self._stt_lock:
            if self._stt is None:
                from corrigible.corrections.speech import SpeechConfig, Transcriber

                self._stt = Transcriber.from_config(SpeechConfig())
            return self._stt

    # -- the knowledge-base browser ------------------------------------------------------------
    def _open_kb(self) -> KnowledgeBase | None:
        """The knowledge base (opened once, from any thread; the console closes what it opened)."""
        with self._kb_lock:
            if self._kb is None and self.settings.kb is not None:
                from corrigible.memory import KnowledgeBase

                path = self.settings.kb
                if path.exists() and not path.is_dir():
                    raise ConfigError(
                        f"the knowledge base {path} is a file; give a directory (it is created "
                        "if missing)"
                    )
                self._kb, self._owns_kb = KnowledgeBase.open(path), True
            return self._kb

    def _require_kb(self) -> KnowledgeBase:
        kb = self._open_kb()
        if kb is None:
            raise ConfigError("this console runs without a knowledge base; start it with --kb DIR")
        return kb

    def kb_entries(self) -> list[KbEntryView]:
        """The active entries, newest last, with provenance."""
        out = []
        for e in self._require_kb().list():
            out.append(
                KbEntryView(
                    id=e.id,
                    kind=str(e.kind),
                    text=e.text,
                    skill=e.skill,
                    params=dict(e.params),
                    scope=e.scope.model_dump_json(exclude_defaults=True),
                    provenance=[
                        f"{p.episode} ({p.created_at:%Y-%m-%d %H:%M}): "
                        + "; ".join(repr(t) for t in p.correction_texts)
                        for p in e.provenance
                    ],
                    confidence=round(float(e.confidence), 3),
                    active=e.active,
                )
            )
        return out

    def kb_edit(self, entry_id: str, text: str) -> str:
        """Replaces an entry's text (a superseding entry keeps both provenances); its new id."""
        text = text.strip()
        if not text:
            raise ConfigError("the edited rule is empty; write the rule, or delete the entry")
        kb = self._require_kb()
        old = kb.get(entry_id)
        new = old.model_copy(
            update={"text": text, "id": _fresh_id(), "supersedes": [], "superseded_by": None}
        )
        new_id = kb.supersede(entry_id, new)
        self._log("kb.edit", entry=entry_id, new=new_id)
        return new_id

    def kb_delete(self, entry_id: str) -> None:
        """Deletes an entry."""
        self._require_kb().delete(entry_id)
        self._log("kb.delete", entry=entry_id)


def _fresh_id() -> str:
    import uuid

    return str(uuid.uuid4())
