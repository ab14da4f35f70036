"""`speak_to_session`: one spoken utterance into a running `Session`, as typed text would go.

The transcript is sent through `Session.correct(text, source="spoken")`, the same channel and
the same router and interpreter as a typed line, so a said correction has the effect the typed
one has. Only the stop words act earlier: when the utterance opens with one, the gate pauses
the session (the arm holds at its next control tick) before the full transcription runs. Then:

- the whole utterance only stops or pauses ("stop", "wait a second"): "stop" stops the run,
  a pause stays paused (the person says "continue" to go on), as the typed line would;
- it carries more ("wait, the blue bowl"): the provisional pause is lifted and the text goes
  to the session like a typed line ("wait" there is an interjection, as in typed text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from corrigible.corrections.speech.audio import AudioInput, load_audio
from corrigible.corrections.speech.gate import StopWordGate, StopWordHit
from corrigible.corrections.speech.transcriber import Transcriber, Transcript


class Session(Protocol):
    """What `speak_to_session` uses of `corrigible.session.Session`.

    A protocol, because `corrections` sits below `session` in the package layers and must not
    import it (tests/test_layering.py).
    """

    env: Any  # the scene, None before reset()
    loop: Any  # the correction loop (its `router`), None before reset()

    def correct(self, text: str, source: str = "typed") -> None: ...  # noqa: D102
    def pause(self) -> None: ...  # noqa: D102
    def resume(self) -> None: ...  # noqa: D102
    def stop(self, reason: str = ...) -> None: ...  # noqa: D102


SpokenAction = Literal["sent", "stopped", "paused", "nothing_heard"]


@dataclass(frozen=True)
class SpokenCorrection:
    """What happened to one utterance."""

    transcript: Transcript  # the full transcription
    action: SpokenAction  # sent as a correction, stopped/paused the run, or nothing heard
    stop_hit: StopWordHit | None = None  # the gate's early hit, if it fired
    early_action: Literal["pause", "none"] = "none"  # what the gate did before the transcript
    resumed: bool = False  # the gate's provisional pause was lifted (the text carried more)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the console shows it; the trace keeps it)."""
        return {
            "text": self.transcript.text,
            "action": self.action,
            "early_action": self.early_action,
            "stop_word": None if self.stop_hit is None else self.stop_hit.word,
            "stop_latency_s": None if self.stop_hit is None else round(self.stop_hit.latency_s, 4),
            "transcript": self.transcript.to_dict(),
            "resumed": self.resumed,
        }


def scene_vocabulary(session: Session) -> list[str]:
    """The names of the objects in the session's scene (empty before `reset`)."""
    env = getattr(session, "env", None)
    if env is None:
        return []
    scene = getattr(env, "scene", None)
    return [] if scene is None else [obj.name for obj in scene.objects]


def control_command(text: str) -> str | None:
    """The command ("stop", "pause", "resume") when the whole text only controls the run.

    None when it carries anything else.

    Uses the router's grammar (no model), so it decides in microseconds.
    """
    from corrigible.corrections.interpret import interpret
    from corrigible.corrections.router import apply_rules, routing_text
    from corrigible.memory.effects import ControlCommand

    clean = routing_text(text)
    hit = apply_rules(clean) if clean else None
    if hit is None or hit.label != "control":
        return None
    effects = interpret(text, "control").effects
    return next((e.command for e in effects if isinstance(e, ControlCommand)), None)


def _understanding(session: Session) -> Callable[[str], bool] | None:
    """The session's router and scene as a test of which reading to take; None before reset."""
    from corrigible.corrections.interpret import InterpretContext
    from corrigible.corrections.speech.understanding import understood_in

    router = getattr(getattr(session, "loop", None), "router", None)
    if router is None:
        return None
    return understood_in(router, InterpretContext(visible_objects=tuple(scene_vocabulary(session))))


def speak_to_session(
    session: Session,
    audio: AudioInput,
    *,
    transcriber: Transcriber,
    vocabulary: Sequence[str] | None = None,
    gate: bool = True,
) -> SpokenCorrection:
    """Transcribes `audio` and gives it to `session` as a spoken correction.

    Args:
        session: a session whose typed channel is open (`SessionConfig(interactive=True)`, or
            before `run()`).
        audio: the utterance (WAV/webm bytes, a path or 16 kHz samples).
        transcriber: the speech backend (`Transcriber.from_config`).
        vocabulary: words to bias decoding to; None: the session's scene objects.
        gate: let a leading stop word pause the session before the full transcription.

    Returns:
        What was heard and done.

    Raises:
        ParseError: the audio is empty, undecodable or too long (nothing is sent).
        SpeechError: the backend failed (nothing is sent; a gate pause stays, which is safe).
        ConfigError: the session takes no typed corrections (from `Session.correct`).
    """
    samples = load_audio(audio, max_s=transcriber.config.max_audio_s)
    running = getattr(session, "env", None) is not None
    hit: StopWordHit | None = None
    paused = False
    if gate:
        hit = StopWordGate(transcriber).check(samples)
        if hit is not None and running:
            session.pause()
            paused = True
    words = scene_vocabulary(session) if vocabulary is None else list(vocabulary)
    transcript = transcriber.transcribe(
        samples, vocabulary=words, understands=_understanding(session)
    )
    early: Literal["pause", "none"] = "pause" if paused else "none"
    if not transcript.has_speech:
        if paused:  # the window heard a stop word, the full pass nothing: stay safe, paused
            return SpokenCorrection(transcript, "paused", hit, early)
        return SpokenCorrection(transcript, "nothing_heard", hit, early)
    command = control_command(transcript.text) if paused else None
    if command == "stop":
        session.stop(f"stopped by voice: {transcript.text!r}")
        return SpokenCorrection(transcript, "stopped", hit, early)
    if command == "pause":
        return SpokenCorrection(transcript, "paused", hit, early)
    if paused:
        session.resume()  # the pause was provisional; the text acts as typed text does
    session.correct(transcript.text, source="spoken")
    return SpokenCorrection(transcript, "sent", hit, early, resumed=paused)
