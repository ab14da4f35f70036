"""`SpeechConfig`: which speech-to-text backend turns a spoken correction into text, and how."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError

# Words that act before the full transcription is done ("stop!", "wait", "pardon?").
DEFAULT_STOP_WORDS: tuple[str, ...] = ("stop", "wait", "pardon")


class SpeechConfig(StrictConfig):
    """How speech becomes correction text (`Transcriber.from_config`).

    The default is fully offline: faster-whisper running Whisper base (int8, 2 CPU threads)
    from the `[speech]` extra's packaged model, joined once into the cache directory.
    """

    backend: str = "faster_whisper"  # a key of TRANSCRIBERS: "faster_whisper" or "openai"
    # CTranslate2 Whisper directory; None: the packaged Whisper base, joined into `cache_dir`
    model_dir: Path | None = None
    # where the packaged model is joined; None: $CORRIGIBLE_CACHE/whisper-base, else
    # ~/.cache/corrigible/whisper-base
    cache_dir: Path | None = None
    compute_type: str = "int8"  # CTranslate2 weight type on CPU: int8, int8_float32, float32
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # where CTranslate2 runs
    cpu_threads: int = 2  # CPU threads of one transcription (the target machine has 2 cores)
    beam_size: int = 5  # beam width of the full transcription; 1 is greedy
    # readings kept from each beam search (with and without the biasing prompt), best first;
    # the session takes the best one its router and interpreter understand
    # (`Transcript.alternatives`, measured in `corrigible bench speech`); 1: the top one only
    hypotheses: int = 5
    language: str = "en"  # spoken language (ISO 639-1); fixed, so no detection pass is paid
    # voice activity gate: "silero" (faster-whisper's VAD model), "energy" (frame RMS), "none"
    vad: Literal["silero", "energy", "none"] = "energy"
    bias: bool = True  # prompt the decoder with example corrections and the scene's objects
    # repair near-miss words towards the correction vocabulary and numbers before units
    # (`normalise.TranscriptNormaliser`); the raw transcript is kept beside the repaired one
    normalise: bool = True
    max_audio_s: float = 30.0  # longest utterance accepted, s (a correction is one sentence)
    # -- the stop-word gate ------------------------------------------------------------------
    stop_words: tuple[str, ...] = DEFAULT_STOP_WORDS  # first words that halt before the rest
    stop_window_s: float = 1.0  # speech after the onset the gate transcribes, s
    # -- the OpenAI-compatible backend (`backend="openai"`) -----------------------------------
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1; None: $OPENAI_BASE_URL
    model: str = "whisper-1"  # model name the server knows
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the key (may be unset)
    timeout_s: float = 30.0  # request deadline, s

    @field_validator("cpu_threads", "beam_size", "hypotheses")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ConfigError(
                f"SpeechConfig: threads, beam_size and hypotheses must be >= 1, got {value}"
            )
        return value

    @field_validator("max_audio_s", "stop_window_s", "timeout_s")
    @classmethod
    def _positive_seconds(cls, value: float) -> float:
        if not 0 < value < float("inf"):
            raise ConfigError(f"SpeechConfig: durations must be finite and > 0 s, got {value}")
        return value

    @field_validator("stop_words")
    @classmethod
    def _words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        words = tuple(w.strip().lower() for w in value)
        bad = [w for w in words if not re.fullmatch(r"[a-z']+", w)]
        if bad:
            raise ConfigError(
                f"SpeechConfig.stop_words must be single lower-case words, got {bad}; "
                f"e.g. {list(DEFAULT_STOP_WORDS)}"
            )
        return words

    @model_validator(mode="after")
    def _known_backend(self) -> SpeechConfig:
        from corrigible.corrections.speech.transcriber import TRANSCRIBERS

        TRANSCRIBERS.canonical(self.backend)  # UnknownNameError with "did you mean"
        return self
