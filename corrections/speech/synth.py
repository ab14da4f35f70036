"""Synthesised utterances (espeak-ng), for tests, benchmarks and demos without a microphone.

espeak-ng is a system program (Debian's `espeak-ng`), not a Python package; `synthesize` runs it
with `-w` into a temporary WAV and returns the bytes, so a test speaks a correction exactly as a
browser upload would deliver it. `add_noise` mixes in seeded noise at a given signal-to-noise
ratio, for the benchmark's noisy half.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from corrigible.errors import DependencyNotInstalled, ParseError

# (voice, words per minute) the benchmark cycles through: three accents/voices, two rates.
BENCH_VOICES: tuple[str, ...] = ("en-us", "en-gb+f3", "en-gb-scotland+m3")
BENCH_RATES_WPM: tuple[int, ...] = (140, 175)


def espeak_binary() -> str:
    """The espeak-ng executable.

    Raises:
        DependencyNotInstalled: it is not on PATH (apt-get install -y espeak-ng).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyNotInstalled(
            "synthesising speech needs espeak-ng; install it with apt-get install -y espeak-ng"
        )
    return exe


def synthesize(text: str, *, voice: str = "en-us", rate_wpm: int = 160) -> bytes:
    """`text` spoken by espeak-ng, as WAV bytes (16-bit mono, 22.05 kHz).

    Raises:
        ParseError: empty text, a rate outside 80-450 wpm, or an unknown voice.
        DependencyNotInstalled: espeak-ng is missing.
    """
    if not text.strip():
        raise ParseError("cannot synthesise empty text")
    if not 80 <= rate_wpm <= 450:
        raise ParseError(f"rate_wpm must be in 80-450 words per minute, got {rate_wpm}")
    with tempfile.TemporaryDirectory(prefix="corrigible-tts-") as tmp:
        out = Path(tmp) / "utterance.wav"
        result = subprocess.run(  # noqa: S603  (fixed executable, text passed as one argument)
            [espeak_binary(), "-v", voice, "-s", str(rate_wpm), "-w", str(out), "--", text],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            raise ParseError(
                f"espeak-ng could not speak {text!r} with voice {voice!r} "
                f"(exit {result.returncode}: {result.stderr.strip()[:200]}); "
                "list voices with espeak-ng --voices=en"
            )
        return out.read_bytes()


def add_noise(samples: np.ndarray, *, snr_db: float, seed: int) -> np.ndarray:
    """`samples` plus white noise at `snr_db` below the speech power (seeded), clipped."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(samples.astype(np.float64) ** 2)) or 1e-10
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), samples.size)
    return np.clip(samples + noise, -1.0, 1.0).astype(np.float32)


def pad_silence(samples: np.ndarray, *, before_s: float, after_s: float) -> np.ndarray:
    """`samples` with silence either side (a push-to-talk clip starts before the words)."""
    from corrigible.corrections.speech.audio import SAMPLE_RATE

    return np.concatenate(
        [
            np.zeros(int(before_s * SAMPLE_RATE), np.float32),
            samples.astype(np.float32),
            np.zeros(int(after_s * SAMPLE_RATE), np.float32),
        ]
    )
