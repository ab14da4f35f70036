"""`OpenAITranscriber` (`backend="openai"`): any OpenAI-compatible `/v1/audio/transcriptions`.

For a speech server on the local network (faster-whisper-server, a vLLM or llama.cpp Whisper
endpoint) or the hosted API. The audio is sent as 16 kHz mono WAV after the voice activity gate,
with the same vocabulary prompt as the local backend. Nothing here runs offline by itself: the
default backend stays `faster_whisper`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from corrigible.corrections.speech.audio import SAMPLE_RATE, to_wav_bytes
from corrigible.corrections.speech.config_speech import SpeechConfig
from corrigible.corrections.speech.transcriber import Segment, SpeechError, Transcriber
from corrigible.errors import ConfigError, DependencyNotInstalled


class OpenAITranscriber(Transcriber):
    """Transcription through an OpenAI-compatible HTTP endpoint.

    Args:
        config: `SpeechConfig`; `base_url` (else $OPENAI_BASE_URL), `model`, `api_key_env`,
            `language` and `timeout_s` apply here.

    Raises:
        ConfigError: no base URL is given or set in the environment.
        DependencyNotInstalled: the `openai` client is missing.
    """

    name = "openai"

    def __init__(self, config: SpeechConfig) -> None:
        super().__init__(config)
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError(
                "SpeechConfig(backend='openai') needs base_url (e.g. http://127.0.0.1:8000/v1) "
                "or OPENAI_BASE_URL set; use backend='faster_whisper' to stay offline"
            )
        try:
            import openai
        except ImportError as exc:
            raise DependencyNotInstalled(
                "the openai speech backend needs the openai client: pip install openai"
            ) from exc
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get(config.api_key_env) or "not-needed",
            timeout=config.timeout_s,
            max_retries=0,  # a spoken correction is stale after a retry's back-off
        )
        self._lock = threading.Lock()

    def _decode(
        self, speech: np.ndarray, *, prompt: str | None, quick: bool
    ) -> tuple[tuple[Segment, ...], dict[str, Any]]:
        cfg = self.config
        kwargs: dict[str, Any] = {"model": cfg.model, "language": cfg.language}
        if prompt:
            kwargs["prompt"] = prompt
        try:
            result = self._client.audio.transcriptions.create(
                file=("utterance.wav", to_wav_bytes(speech), "audio/wav"), **kwargs
            )
        except self._openai.APITimeoutError as exc:
            raise SpeechError(
                f"the transcription endpoint did not answer within {cfg.timeout_s:g} s; raise "
                "SpeechConfig.timeout_s or use backend='faster_whisper'"
            ) from exc
        except self._openai.APIConnectionError as exc:
            raise SpeechError(
                f"cannot reach the transcription endpoint at {self._client.base_url} ({exc}); "
                "start the server or use backend='faster_whisper'"
            ) from exc
        except self._openai.APIStatusError as exc:
            raise SpeechError(
                f"the transcription endpoint refused the request: HTTP {exc.status_code} "
                f"({exc.message}); check SpeechConfig.model={cfg.model!r}"
            ) from exc
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise SpeechError(f"the transcription endpoint sent no text: {result!r:.200}")
        segment = Segment(start_s=0.0, end_s=speech.size / SAMPLE_RATE, text=text.strip())
        return (segment,), {"model": cfg.model}

    def close(self) -> None:
        """Closes the HTTP client (idempotent)."""
        with self._lock:
            if not self.is_closed:
                self._client.close()
            super().close()
