"""`Transcriber`: audio in, `Transcript` out, behind one interface for every speech backend.

The base class does what every backend shares, so each backend only decodes: it loads the
audio (`audio.load_audio`), runs the voice activity gate (silence never reaches a model, so it
cannot be "heard" as words), builds the decoding prompt from the correction vocabulary
(`bias.initial_prompt`) and times the call. A backend subclass sets `name` and implements
`_decode`; it registers itself in `TRANSCRIBERS` under `name`.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from corrigible.corrections.speech.audio import SAMPLE_RATE, AudioInput, load_audio, trim_to_speech
from corrigible.corrections.speech.normalise import Repair, TranscriptNormaliser
from corrigible.errors import (
    SpeechError,  # noqa: F401 - re-exported here
)
from corrigible.registry import Registry

if TYPE_CHECKING:
    from corrigible.corrections.speech.config_speech import SpeechConfig


@dataclass(frozen=True)
class Segment:
    """One decoded piece of the utterance."""

    start_s: float  # from the start of the audio given, s
    end_s: float  # s
    text: str  # as decoded, stripped
    avg_logprob: float | None = None  # mean token log-probability (faster-whisper), else None
    no_speech_prob: float | None = None  # the model's belief this is not speech, 0-1


@dataclass(frozen=True)
class Transcript:
    """What was said, and what it cost to find out.

    `text` is what goes to `Session.correct(text, source="spoken")`; it is "" when the voice
    activity gate found no speech (then no model ran).
    """

    text: str  # the whole utterance, segments joined, then repaired (`normalise.py`)
    segments: tuple[Segment, ...] = ()
    latency_s: float = 0.0  # wall time of `transcribe`, decoding the audio included, s
    audio_s: float = 0.0  # length of the audio given, s
    speech_s: float = 0.0  # length after trimming to speech, s (0: no speech found)
    backend: str = ""  # the transcriber's registry name
    prompt: str | None = None  # the biasing prompt the decoder was given
    extra: dict[str, Any] = field(default_factory=dict)  # backend details (e.g. timings)
    raw_text: str | None = None  # as decoded, before the repairs; None: same as `text`
    repairs: tuple[Repair, ...] = ()  # words the normaliser changed ("to cm" -> "2 cm")
    # every distinct repaired reading, best decoder score first (one unless the backend keeps
    # several, `SpeechConfig.hypotheses`); `text` is alternatives[chosen]
    alternatives: tuple[str, ...] = ()
    chosen: int = 0  # which reading was taken: 0 is the decoder's best

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (< 1 is faster than real time)."""
        return self.latency_s / self.audio_s if self.audio_s > 0 else 0.0

    @property
    def has_speech(self) -> bool:
        """Whether anything was heard and decoded."""
        return bool(self.text)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (for traces and the console)."""
        return {
            "text": self.text,
            "segments": [s.__dict__ for s in self.segments],
            "latency_s": round(self.latency_s, 4),
            "audio_s": round(self.audio_s, 3),
            "speech_s": round(self.speech_s, 3),
            "backend": self.backend,
            "prompt": self.prompt,
            "raw_text": self.raw_text if self.raw_text is not None else self.text,
            "repairs": [r.__dict__ for r in self.repairs],
            "alternatives": list(self.alternatives),
            "chosen": self.chosen,
        }


# backend name -> class; a backend module registers its class when it is imported.
TRANSCRIBERS: Registry[type[Transcriber]] = Registry("speech backend")
TRANSCRIBERS.register(
    "faster_whisper",
    "corrigible.corrections.speech.whisper_local:FasterWhisperTranscriber",
    extra="speech",
)
TRANSCRIBERS.register(
    "openai", "corrigible.corrections.speech.openai_transcriber:OpenAITranscriber"
)


class Transcriber(abc.ABC):
    """Turns one utterance into text.

    Build one with `Transcriber.from_config(SpeechConfig(...))`; it is a context manager and
    `close()` is idempotent. One instance may serve several threads: backends serialise their
    own model calls.

    Args:
        config: the speech config (backend, model, gate, bias).
    """

    # Every concrete subclass must set:
    name: ClassVar[str]  # registry key, equal to `SpeechConfig.backend`

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "__abstractmethods__", None):
            return
        if not hasattr(cls, "name"):
            raise TypeError(f"{cls.__name__} must set the class attribute 'name'")
        TRANSCRIBERS.register(cls.name, cls)

    def __init__(self, config: SpeechConfig) -> None:
        self.config = config
        self._closed = False

    @classmethod
    def from_config(cls, config: SpeechConfig | None = None) -> Transcriber:
        """The transcriber `config.backend` names (default: offline faster-whisper).

        Raises:
            UnknownNameError: no such backend (with a "did you mean").
            DependencyNotInstalled: its extra is not installed (names the pip extra).
        """
        from corrigible.corrections.speech.config_speech import SpeechConfig

        config = config or SpeechConfig()
        return TRANSCRIBERS.get(config.backend)(config)

    # -- the interface ---------------------------------------------------------------------------
    def transcribe(
        self,
        audio: AudioInput,
        *,
        vocabulary: Sequence[str] = (),
        first_s: float | None = None,
        understands: Callable[[str], bool] | None = None,
    ) -> Transcript:
        """What was said in `audio`.

        Args:
            audio: WAV/webm bytes, a path, or samples at 16 kHz (see `audio.load_audio`).
            vocabulary: words and names to bias decoding towards, e.g. the scene's objects
                ("red block", "blue bowl"), named in the prompt after example corrections
                (`bias.initial_prompt`; the kinds' names when empty) unless `config.bias` is
                off.
            first_s: transcribe only the first `first_s` seconds of speech (the stop-word
                gate), greedily and without a prompt.
            understands: whether the caller can act on a text (the correction router and
                interpreter, `understanding.understood_in`); given, the transcript is the best
                scored reading it understands, or the best scored one if it understands none.
                A person corrects a robot with a small language; picking among the decoder's
                readings the one in that language is how the transcript uses it (measured in
                `corrigible bench speech`).

        Raises:
            ParseError: the audio is empty, undecodable or too long.
            SpeechError: the backend failed.
        """
        from corrigible.corrections.speech.bias import initial_prompt

        self._check_open()
        t0 = time.perf_counter()
        samples = load_audio(audio, max_s=self.config.max_audio_s)
        # The energy gate always finds the onset for the stop-word window (it must be quick);
        # with vad="silero" the backend filters the whole utterance with Silero instead.
        if first_s is not None:
            speech = trim_to_speech(samples)[: int(first_s * SAMPLE_RATE)]
        elif self.config.vad == "energy":
            speech = trim_to_speech(samples)
        else:
            speech = samples
        prompt = None
        if self.config.bias and first_s is None:
            prompt = initial_prompt(vocabulary)
        segments: tuple[Segment, ...] = ()
        extra: dict[str, Any] = {}
        if speech.size:
            segments, extra = self._decode(speech, prompt=prompt, quick=first_s is not None)
        raw = " ".join(s.text for s in segments if s.text).strip()
        # Several readings (`SpeechConfig.hypotheses`), best decoder score first; one otherwise.
        raws = [r[0] for r in extra.get("readings", ()) if r[0]] or ([raw] if raw else [])
        # repaired text -> (raw, repairs); the first (best scored) raw wins when two repair alike
        by_text: dict[str, tuple[str, tuple[Repair, ...]]] = {}
        normaliser = TranscriptNormaliser(vocabulary) if self.config.normalise else None
        for heard in dict.fromkeys(raws):  # the same raw reading is repaired once
            if normaliser is not None and first_s is None:
                repaired = normaliser(heard)
                by_text.setdefault(repaired.text, (heard, repaired.repairs))
            else:
                by_text.setdefault(heard, (heard, ()))
        readings = [(text, heard, repairs) for text, (heard, repairs) in by_text.items()]
        chosen = 0
        if understands is not None and first_s is None:
            chosen = next((i for i, r in enumerate(readings) if understands(r[0])), 0)
        text, raw, repairs = readings[chosen] if readings else ("", raw, ())
        return Transcript(
            text=text,
            raw_text=raw,
            repairs=repairs,
            alternatives=tuple(r[0] for r in readings),
            chosen=chosen,
            segments=segments,
            latency_s=time.perf_counter() - t0,
            audio_s=samples.size / SAMPLE_RATE,
            speech_s=speech.size / SAMPLE_RATE,
            backend=self.name,
            prompt=prompt,
            extra=extra,
        )

    @abc.abstractmethod
    def _decode(
        self, speech: np.ndarray, *, prompt: str | None, quick: bool
    ) -> tuple[tuple[Segment, ...], dict[str, Any]]:
        """Decodes 16 kHz speech; `quick` is the gate's short greedy pass (no prompt).

        Returns:
            The segments (times relative to `speech`) and backend details for `extra`.
        """

    def warm_up(self) -> float:
        """Loads the model now and returns the seconds it took.

        Otherwise the first utterance's latency would include the model load.
        """
        return 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Releases the model or client (idempotent)."""
        self._closed = True

    @property
    def is_closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise SpeechError(f"the {self.name} transcriber is closed; build a new one")

    def __enter__(self) -> Transcriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
