"""Fixtures for spoken corrections: the real packaged Whisper base and real espeak-ng speech.

Speech is synthesised at test time with espeak-ng (`apt-get install -y espeak-ng`) and
transcribed by faster-whisper on CPU; without the `[speech]` extra or espeak-ng these tests are
skipped with the install command.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

pytest.importorskip("faster_whisper", reason="pip install 'corrigible[speech]'")
if shutil.which("espeak-ng") is None:
    pytest.skip("needs espeak-ng: apt-get install -y espeak-ng", allow_module_level=True)

from corrigible.corrections.speech import SpeechConfig, Transcriber  # noqa: E402
from corrigible.corrections.speech.synth import synthesize  # noqa: E402


@pytest.fixture(scope="session")
def stt() -> Iterator[Transcriber]:
    """The default offline transcriber (faster-whisper, Whisper base, 2 threads), loaded once."""
    with Transcriber.from_config(SpeechConfig()) as transcriber:
        transcriber.warm_up()
        yield transcriber


@pytest.fixture(scope="session")
def say() -> object:
    """`say(text, voice=..., rate_wpm=...)` -> WAV bytes spoken by espeak-ng (cached)."""
    cache: dict[tuple[str, str, int], bytes] = {}

    def speak(text: str, *, voice: str = "en-us", rate_wpm: int = 150) -> bytes:
        key = (text, voice, rate_wpm)
        if key not in cache:
            cache[key] = synthesize(text, voice=voice, rate_wpm=rate_wpm)
        return cache[key]

    return speak
