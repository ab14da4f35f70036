"""Audio in, 16 kHz mono float32 out, and the energy-based voice activity gate.

Every transcriber takes what a console or a test has at hand: WAV bytes from a browser upload,
another container (webm/ogg/mp3, decoded through PyAV from the `[speech]` extra), a file path,
or samples already in memory. They all become one array at `SAMPLE_RATE`, so the gate, the
stop words and the backends see the same signal.
"""

from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from corrigible.errors import DependencyNotInstalled, ParseError

SAMPLE_RATE = 16_000  # Hz; what Whisper was trained on
# Raw samples are taken to be at SAMPLE_RATE; anything else is decoded from its container.
AudioInput = Union[bytes, bytearray, str, os.PathLike, np.ndarray]  # noqa: UP007  (runtime alias)

_FRAME_S = 0.02  # energy gate frame, s
_FLOOR_DB = -50.0  # frames quieter than this (dBFS) are never speech
_ABOVE_NOISE_DB = 12.0  # a speech frame is this much louder than the noise floor, dB
_HANGOVER_S = 0.25  # silence inside an utterance that keeps it one span, s
_MIN_SPEECH_S = 0.08  # shorter bursts (clicks, pops) are not speech, s


def load_audio(audio: AudioInput, *, max_s: float | None = None) -> np.ndarray:
    """The audio as float32 mono samples in [-1, 1] at `SAMPLE_RATE`.

    Args:
        audio: WAV (or any container PyAV reads) as bytes or a path, or samples: float in
            [-1, 1] or int16, mono (1-D) or (n, channels), taken to be at `SAMPLE_RATE`.
        max_s: refuse longer audio (a correction is one sentence), s; None: no limit.

    Raises:
        ParseError: empty, undecodable, non-finite or over-long audio (says which).
        DependencyNotInstalled: a non-WAV container without PyAV.
    """
    if isinstance(audio, np.ndarray):
        samples = _from_array(audio)
    elif isinstance(audio, bytes | bytearray):
        samples = _decode(bytes(audio), what="the audio bytes")
    elif isinstance(audio, str | os.PathLike):
        path = Path(audio)
        if not path.is_file():
            raise ParseError(f"no audio file at {path}; give a WAV file (or bytes, or samples)")
        samples = _decode(path.read_bytes(), what=str(path))
    else:
        raise ParseError(
            f"audio must be bytes, a path or a numpy array, got {type(audio).__name__}"
        )
    if samples.size == 0:
        raise ParseError("the audio is empty (0 samples); record at least one word")
    if max_s is not None and samples.size > max_s * SAMPLE_RATE:
        raise ParseError(
            f"the audio is {samples.size / SAMPLE_RATE:.1f} s long, more than the {max_s:g} s "
            "a correction may take; say one correction at a time"
        )
    return samples


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array.mean(axis=1) if array.shape[1] <= 8 else array.mean(axis=0)
    if array.ndim != 1:
        raise ParseError(f"audio samples must be 1-D (mono) or 2-D, got shape {array.shape}")
    if array.dtype == np.int16:
        return (array.astype(np.float32) / 32768.0).astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ParseError(f"audio samples must be float or int16, got dtype {array.dtype}")
    samples = array.astype(np.float32)
    if not np.all(np.isfinite(samples)):
        raise ParseError("the audio samples hold NaN or infinity; check the recorder")
    return np.clip(samples, -1.0, 1.0)


def _decode(data: bytes, *, what: str) -> np.ndarray:
    if not data:
        raise ParseError(f"{what} is empty (0 bytes); record at least one word")
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            return _decode_wav(data)
        except (wave.Error, EOFError, ValueError) as exc:
            if "unknown format" not in str(exc):  # a float WAV: PyAV reads it below
                raise ParseError(f"{what} is not a readable WAV file ({exc})") from exc
    try:
        from faster_whisper.audio import decode_audio
    except ImportError as exc:
        raise DependencyNotInstalled(
            f"{what} is not PCM WAV, and decoding other formats needs PyAV: "
            "pip install 'corrigible[speech]'"
        ) from exc
    try:
        samples = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises its own error types for every broken container
        raise ParseError(
            f"{what} could not be decoded as audio ({type(exc).__name__}: {exc}); send WAV, "
            "webm/opus or ogg"
        ) from exc
    return np.asarray(samples, dtype=np.float32)


def _decode_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes:
        raise ValueError(f"{8 * width}-bit PCM is not supported; use 16-bit PCM")
    ints = np.frombuffer(raw[: len(raw) - len(raw) % (width * channels)], dtype=dtypes[width])
    if width == 1:
        samples = (ints.astype(np.float32) - 128.0) / 128.0
    else:
        samples = ints.astype(np.float32) / float(2 ** (8 * width - 1))
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return resample(samples, rate)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """`samples` at `rate` Hz, brought to `SAMPLE_RATE` (polyphase, anti-aliased)."""
    if rate == SAMPLE_RATE:
        return samples.astype(np.float32)
    if rate <= 0:
        raise ParseError(f"the audio's sample rate must be > 0 Hz, got {rate}")
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, SAMPLE_RATE)
    return resample_poly(samples, SAMPLE_RATE // g, rate // g).astype(np.float32)


def to_wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM mono WAV at `SAMPLE_RATE` (what the OpenAI-style endpoint is sent)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


# -- the energy gate -------------------------------------------------------------------------
@dataclass(frozen=True)
class SpeechSpan:
    """One stretch of speech, s from the start of the audio."""

    start_s: float
    end_s: float


def frame_levels_db(samples: np.ndarray) -> np.ndarray:
    """RMS level of each `_FRAME_S` frame, dBFS."""
    n = int(_FRAME_S * SAMPLE_RATE)
    frames = samples[: samples.size - samples.size % n].reshape(-1, n)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) if frames.size else np.zeros(0)
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def speech_spans(samples: np.ndarray, *, noise_floor_db: float | None = None) -> list[SpeechSpan]:
    """Where someone speaks: frames well above the noise floor, joined across short pauses.

    The floor is the 10th percentile of the frame levels (a push-to-talk clip holds some
    silence or room noise before and after the words), or `noise_floor_db` when a stream
    already knows it. Cheap (a few ms per second of audio), so it runs before any model.
    """
    levels = frame_levels_db(samples)
    if levels.size == 0:
        return []
    floor = float(np.percentile(levels, 10)) if noise_floor_db is None else noise_floor_db
    voiced = levels > max(_FLOOR_DB, floor + _ABOVE_NOISE_DB)
    spans: list[SpeechSpan] = []
    hang = int(_HANGOVER_S / _FRAME_S)
    start: int | None = None
    last = -1
    for i, is_voiced in enumerate(voiced):
        if is_voiced:
            if start is None:
                start = i
            last = i
        elif start is not None and i - last > hang:
            spans.append(SpeechSpan(start * _FRAME_S, (last + 1) * _FRAME_S))
            start = None
    if start is not None:
        spans.append(SpeechSpan(start * _FRAME_S, (last + 1) * _FRAME_S))
    return [s for s in spans if s.end_s - s.start_s >= _MIN_SPEECH_S]


def trim_to_speech(samples: np.ndarray, *, pad_s: float = 0.2) -> np.ndarray:
    """The samples from the first to the last speech span, with `pad_s` either side.

    Empty if there is no speech at all: the model is then never asked, so silence cannot be
    "heard" as words (Whisper hallucinates on silence and noise).
    """
    spans = speech_spans(samples)
    if not spans:
        return samples[:0]
    start = max(0, int((spans[0].start_s - pad_s) * SAMPLE_RATE))
    end = min(samples.size, int((spans[-1].end_s + pad_s) * SAMPLE_RATE))
    return samples[start:end]
