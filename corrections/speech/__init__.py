"""Spoken corrections, offline: speech in, the same correction text a person would type.

    from corrigible.corrections.speech import SpeechConfig, Transcriber, speak_to_session

    with Transcriber.from_config(SpeechConfig()) as stt:  # faster-whisper, Whisper base, CPU
        transcript = stt.transcribe(wav_bytes, vocabulary=["red block", "blue bowl"])
        transcript.text, transcript.latency_s  # "A bit more to the left.", 0.9
        speak_to_session(session, wav_bytes, transcriber=stt)  # -> session.correct(text, "spoken")

The public API (stable; the console's push-to-talk calls it):

- `SpeechConfig`: backend ("faster_whisper" offline, or "openai" for an OpenAI-compatible
  `/v1/audio/transcriptions`), model, threads, beam, voice activity gate, bias, stop words.
- `Transcriber.from_config(cfg)`; `transcribe(audio, *, vocabulary) -> Transcript(text,
  segments, latency_s, ...)`; `warm_up()`; `close()` (context manager).
- `StopWordGate(transcriber, on_fire=...)`: `check(audio)` on a clip, or `feed(chunk)` /
  `end()` on a stream; fires on "stop" / "wait" / "pardon" from the first second of speech.
- `speak_to_session(session, audio, *, transcriber) -> SpokenCorrection`.
- `TranscriptNormaliser(scene)(text)`: the repairs `transcribe` applies (`config.normalise`).
- `load_audio`, `speech_spans` (energy voice activity), `synthesize` (espeak-ng, for tests).

The packaged model (`[speech]` extra) is joined once into the cache and SHA-256 pinned
(`model_files`); nothing is ever downloaded. See README.md in this folder.
"""

from __future__ import annotations

from corrigible.corrections.speech.audio import (
    SAMPLE_RATE,
    AudioInput,
    SpeechSpan,
    load_audio,
    speech_spans,
    trim_to_speech,
)
from corrigible.corrections.speech.bias import initial_prompt, vocabulary_terms
from corrigible.corrections.speech.config_speech import DEFAULT_STOP_WORDS, SpeechConfig
from corrigible.corrections.speech.gate import StopWordGate, StopWordHit, first_stop_word
from corrigible.corrections.speech.normalise import Repair, TranscriptNormaliser
from corrigible.corrections.speech.session_link import (
    SpokenCorrection,
    control_command,
    scene_vocabulary,
    speak_to_session,
)
from corrigible.corrections.speech.synth import synthesize
from corrigible.corrections.speech.transcriber import (
    TRANSCRIBERS,
    Segment,
    SpeechError,
    Transcriber,
    Transcript,
)

__all__ = [
    "DEFAULT_STOP_WORDS",
    "SAMPLE_RATE",
    "TRANSCRIBERS",
    "AudioInput",
    "Repair",
    "Segment",
    "SpeechConfig",
    "SpeechError",
    "SpeechSpan",
    "SpokenCorrection",
    "StopWordGate",
    "StopWordHit",
    "Transcriber",
    "Transcript",
    "TranscriptNormaliser",
    "control_command",
    "first_stop_word",
    "initial_prompt",
    "load_audio",
    "scene_vocabulary",
    "speak_to_session",
    "speech_spans",
    "synthesize",
    "trim_to_speech",
    "vocabulary_terms",
]
