"""Audio loading, the energy gate and the speech config: no model needed (fast)."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from corrigible.corrections.router import normalise
from corrigible.corrections.speech import SAMPLE_RATE, SpeechConfig, load_audio, speech_spans
from corrigible.corrections.speech.audio import to_wav_bytes, trim_to_speech
from corrigible.corrections.speech.bias import STYLE_SENTENCES, initial_prompt, vocabulary_terms
from corrigible.corrections.speech.gate import first_stop_word
from corrigible.corrections.speech.synth import add_noise, pad_silence
from corrigible.errors import ConfigError, ParseError, UnknownNameError


def _wav(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return out.getvalue()


def test_espeak_wav_bytes_path_and_array_load_the_same(say, tmp_path):
    data = say("a bit more to the left")
    path = tmp_path / "u.wav"
    path.write_bytes(data)
    from_bytes, from_path = load_audio(data), load_audio(path)
    assert from_bytes.dtype == np.float32 and np.array_equal(from_bytes, from_path)
    with wave.open(io.BytesIO(data)) as w:  # espeak-ng writes 22.05 kHz: resampled to 16 kHz
        assert w.getframerate() == 22050
        expected = w.getnframes() * SAMPLE_RATE / 22050
    assert abs(from_bytes.size - expected) <= 2
    assert np.array_equal(load_audio(from_bytes), from_bytes)
    round_trip = load_audio(to_wav_bytes(from_bytes))  # 16-bit WAV at 16 kHz: no resampling
    assert round_trip.size == from_bytes.size and np.abs(round_trip - from_bytes).max() < 1e-4


def test_int16_and_stereo_inputs():
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
    as_int = load_audio((tone * 32767).astype(np.int16))
    assert np.allclose(as_int, tone, atol=1e-3)
    stereo = np.stack([tone, tone], axis=1).reshape(-1)
    assert np.allclose(load_audio(_wav(stereo, SAMPLE_RATE, channels=2)), tone, atol=1e-3)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (b"", "empty"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "not a readable WAV"),
        (b"\x00\x01garbage that is no container", "could not be decoded"),
        (np.zeros(0, np.float32), "empty"),
        (np.array([0.0, np.nan], np.float32), "NaN"),
        (np.zeros((2, 2, 2), np.float32), "1-D"),
        ("no/such/file.wav", "no audio file"),
    ],
    ids=["no-bytes", "broken-wav", "garbage", "no-samples", "nan", "3-d", "missing-file"],
)
def test_bad_audio_is_refused_with_the_reason(audio, message):
    with pytest.raises(ParseError, match=message):
        load_audio(audio)


def test_over_long_audio_is_refused():
    with pytest.raises(ParseError, match="one correction at a time"):
        load_audio(np.zeros(31 * SAMPLE_RATE, np.float32), max_s=30.0)


def test_energy_gate_finds_the_words_in_silence_and_noise(say):
    speech = load_audio(say("open the drawer first"))
    padded = pad_silence(speech, before_s=1.0, after_s=1.0)
    spans = speech_spans(padded)
    assert spans, "no speech found"
    loud = np.flatnonzero(np.abs(padded) > 0.02) / SAMPLE_RATE  # espeak-ng pads its own silence
    assert abs(spans[0].start_s - loud[0]) < 0.1
    assert abs(spans[-1].end_s - loud[-1]) < 0.3
    noisy = add_noise(padded, snr_db=10.0, seed=1)
    assert speech_spans(noisy) and abs(speech_spans(noisy)[0].start_s - loud[0]) < 0.2
    assert speech_spans(np.zeros(SAMPLE_RATE, np.float32)) == []
    assert trim_to_speech(np.zeros(SAMPLE_RATE, np.float32)).size == 0
    hiss = add_noise(np.full(SAMPLE_RATE, 1e-3, np.float32), snr_db=0.0, seed=2)
    assert speech_spans(hiss) == []  # steady noise is the floor, not speech


def test_config_checks_each_field():
    with pytest.raises(UnknownNameError, match="faster_whisper"):
        SpeechConfig(backend="faster-whisper")
    with pytest.raises(ConfigError, match="stop_words"):
        SpeechConfig(stop_words=("stop now",))
    with pytest.raises(ConfigError, match="beam_size"):
        SpeechConfig(beam_size=0)
    with pytest.raises(ConfigError, match="durations"):
        SpeechConfig(stop_window_s=float("nan"))
    with pytest.raises(ConfigError, match="vad"):
        SpeechConfig(vad="webrtc")
    assert SpeechConfig(stop_words=("Stop", "halt")).stop_words == ("stop", "halt")


def test_openai_backend_needs_an_endpoint(monkeypatch):
    from corrigible.corrections.speech import Transcriber

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="base_url"):
        Transcriber.from_config(SpeechConfig(backend="openai"))


def test_bias_names_the_scene_first_then_kinds_and_colours():
    terms = vocabulary_terms(["Purple  Cylinder", "drawer"])
    assert terms[:2] == ["purple cylinder", "drawer"]
    assert {"block", "cube", "bowl", "cylinder", "red", "gray"} <= set(terms)
    assert len(terms) == len(set(terms))


def test_prompt_is_example_corrections_then_the_scene_objects():
    prompt = initial_prompt(["Purple  Cylinder", "red bowl", "drawer"])
    assert prompt.startswith(STYLE_SENTENCES[0])
    assert prompt.endswith("On the table are the purple cylinder, red bowl and the drawer.")
    # Without a scene: every kind, so "drawer" and "bowl" are still primed.
    assert "blocks, cylinders, bowls and the drawers" in initial_prompt()
    assert len(initial_prompt([f"word{i}" for i in range(200)])) <= 600


def test_prompt_sentences_are_not_phrasings_the_benchmark_speaks():
    """The prompt must not hand Whisper the evaluation sentences (a word list is fine)."""
    data = Path(__file__).resolve().parents[3] / "corrections" / "data"
    spoken = {
        normalise(json.loads(line)["text"])
        for name in ("labelled_corrections.jsonl", "labelled_corrections_others.jsonl")
        for line in (data / name).read_text().splitlines()
        if line.strip()
    }
    clauses = {
        normalise(c) for sentence in STYLE_SENTENCES for c in sentence.replace(";", ",").split(",")
    }
    assert not clauses & spoken


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Stop!", "stop"),
        ("No, stop.", "stop"),
        ("Weight.", "wait"),
        ("Pardon?", "pardon"),
        ("A bit more to the left", None),
        ("Put it down, then stop", None),
        ("", None),
    ],
)
def test_first_stop_word(text, word):
    assert first_stop_word(text, ("stop", "wait", "pardon")) == word
