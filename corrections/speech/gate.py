"""`StopWordGate`: "stop", "wait", "pardon" act before the whole utterance is transcribed.

A person who shouts "stop!" must not wait for the beam search over "stop, you're about to knock
the bowl over". The gate finds the speech onset with the energy detector (milliseconds), then
transcribes only the first `window_s` seconds of speech greedily, capped at a few tokens and
without the vocabulary prompt (a prompt naming the stop words makes Whisper hear them in
anything), and fires when one of the first two words is a stop word. It works on a whole clip
(`check`, push-to-talk released) or on a stream (`feed` chunks while the person still talks,
`end` when the button is released); it fires at most once per utterance.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from corrigible.corrections.speech.audio import (
    SAMPLE_RATE,
    AudioInput,
    frame_levels_db,
    load_audio,
    speech_spans,
)
from corrigible.corrections.speech.transcriber import Transcriber

_FIRST_WORDS = 2  # "stop" may follow one interjection: "no, stop", "oh wait"
# What the short window hears for a stop word. Whisper base wrote "wait" as "weight" for two of
# three espeak-ng voices (alone, nothing disambiguates them); a correction never opens with
# "weight". A false hit costs only a provisional pause, lifted after the full transcription.
STOP_WORD_HOMOPHONES: dict[str, str] = {"weight": "wait", "weights": "wait"}
_PAD_S = 0.15  # audio kept before the detected onset, s


@dataclass(frozen=True)
class StopWordHit:
    """The gate fired."""

    word: str  # the stop word heard ("stop")
    text: str  # what the window was transcribed as
    latency_s: float  # compute time of the check (onset search + short decode), s
    heard_at_s: float  # audio seen when the check ran, s from the start of the utterance


def first_stop_word(text: str, words: Sequence[str]) -> str | None:
    """The stop word among the first words of `text`, else None ("Stop!" -> "stop")."""
    tokens = re.findall(r"[a-z']+", text.lower())[:_FIRST_WORDS]
    tokens = [STOP_WORD_HOMOPHONES.get(t, t) for t in tokens]
    return next((t for t in tokens if t in words), None)


class StopWordGate:
    """Fires on a leading stop word, from the first second of speech.

    Args:
        transcriber: the transcriber to run the short window with (shared with the full pass;
            its calls are serialised).
        words: the stop words (default: `config.stop_words` of the transcriber).
        window_s: seconds of speech after the onset to transcribe (default: the config's).
        on_fire: called once with the hit, from the thread that fed the audio.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        *,
        words: Sequence[str] | None = None,
        window_s: float | None = None,
        on_fire: Callable[[StopWordHit], None] | None = None,
    ) -> None:
        cfg = transcriber.config
        self.transcriber = transcriber
        self.words = tuple(w.lower() for w in (words or cfg.stop_words))
        self.window_s = float(window_s or cfg.stop_window_s)
        self.on_fire = on_fire
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._size = 0
        self._checked = False
        self.hit: StopWordHit | None = None

    # -- whole clips -----------------------------------------------------------------------------
    def check(self, audio: AudioInput) -> StopWordHit | None:
        """Checks the first `window_s` of speech of a whole clip; fires `on_fire` on a hit."""
        t0 = time.perf_counter()
        samples = load_audio(audio, max_s=self.transcriber.config.max_audio_s)
        return self._run(samples, t0, heard_at_s=samples.size / SAMPLE_RATE)

    # -- streams ---------------------------------------------------------------------------------
    def feed(self, chunk: np.ndarray | bytes) -> StopWordHit | None:
        """Adds 16 kHz samples (float or int16; bytes are int16 PCM) of a live utterance.

        The check runs once, as soon as `window_s` of speech after the onset has arrived, so a
        leading stop word fires while the person is still speaking.
        """
        if isinstance(chunk, bytes | bytearray):
            chunk = np.frombuffer(bytes(chunk), dtype="<i2")
        samples = load_audio(np.asarray(chunk))
        with self._lock:
            if self._checked:
                return None
            self._chunks.append(samples)
            self._size += samples.size
            audio = np.concatenate(self._chunks)
        spans = speech_spans(audio, noise_floor_db=self._floor(audio))
        if not spans or audio.size / SAMPLE_RATE < spans[0].start_s + self.window_s:
            return None
        return self._check_stream(audio)

    def end(self) -> StopWordHit | None:
        """The utterance ended (button released): checks it if it was shorter than the window."""
        with self._lock:
            if self._checked or not self._chunks:
                return self.hit
            audio = np.concatenate(self._chunks)
        return self._check_stream(audio)

    def reset(self) -> None:
        """Forgets the utterance; the gate may fire again on the next one."""
        with self._lock:
            self._chunks, self._size, self._checked, self.hit = [], 0, False, None

    def _check_stream(self, audio: np.ndarray) -> StopWordHit | None:
        with self._lock:
            if self._checked:
                return None
            self._checked = True
        return self._run(audio, time.perf_counter(), heard_at_s=audio.size / SAMPLE_RATE)

    @staticmethod
    def _floor(audio: np.ndarray) -> float | None:
        """The noise floor from the stream's first 0.2 s (before anyone speaks), if seen."""
        levels = frame_levels_db(audio[: int(0.2 * SAMPLE_RATE)])
        return float(np.median(levels)) if levels.size >= 5 else None

    def _run(self, samples: np.ndarray, t0: float, *, heard_at_s: float) -> StopWordHit | None:
        transcript = self.transcriber.transcribe(samples, first_s=self.window_s + _PAD_S)
        word = first_stop_word(transcript.text, self.words)
        if word is None:
            return None
        hit = StopWordHit(
            word=word,
            text=transcript.text,
            latency_s=time.perf_counter() - t0,
            heard_at_s=heard_at_s,
        )
        self.hit = hit
        if self.on_fire is not None:
            self.on_fire(hit)
        return hit
