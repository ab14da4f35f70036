"""`FasterWhisperTranscriber` (`backend="faster_whisper"`): Whisper base on CPU, offline.

faster-whisper runs the CTranslate2 conversion of Whisper; it needs no torch. The model is the
packaged Whisper base (`model_files.whisper_base_dir`, SHA-256 pinned) unless the config names
another CTranslate2 directory. It is loaded on first use (or `warm_up()`), once per instance.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from corrigible.corrections.speech.audio import SAMPLE_RATE
from corrigible.corrections.speech.config_speech import SpeechConfig
from corrigible.corrections.speech.transcriber import Segment, SpeechError, Transcriber
from corrigible.errors import DependencyNotInstalled

# The stop-word gate only needs the first words: a short greedy pass, capped in tokens, over
# an encoder window of `_QUICK_CONTEXT_S` instead of Whisper's 30 s. The encoder dominates on
# CPU (measured on 2 shared cores: 30 s window 3.4-6 s, 4 s window 0.2-0.7 s), and on the
# stop words a 4 s window read them as well as 30 s; a 2 s window repeated words and garbled
# more. Full transcriptions keep the 30 s window: shorter ones made Whisper loop ("green,
# green, green, ...") and misread whole sentences.
_QUICK_MAX_TOKENS = 6
_QUICK_CONTEXT_S = 4.0
_MAX_LENGTH = 448  # Whisper's decoder context, tokens
_TOKENS_PER_SPEECH_S = 8  # the decoding cap per second of speech (twice a fast talker's rate)


class FasterWhisperTranscriber(Transcriber):
    """Whisper through faster-whisper (CTranslate2), on CPU by default.

    Args:
        config: `SpeechConfig`; `model_dir`, `cache_dir`, `compute_type`, `device`,
            `cpu_threads`, `beam_size`, `language` and `vad` apply here.

    Raises:
        DependencyNotInstalled: faster-whisper (the `[speech]` extra) is missing.
    """

    name = "faster_whisper"

    def __init__(self, config: SpeechConfig) -> None:
        super().__init__(config)
        try:
            import faster_whisper  # noqa: F401  (checked now, loaded lazily)
        except ImportError as exc:
            raise DependencyNotInstalled(
                "spoken corrections with faster-whisper need the speech extra: "
                "pip install 'corrigible[speech]'"
            ) from exc
        self._model: Any = None
        self._lock = threading.Lock()

    def _get_model(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel

            from corrigible.corrections.speech.model_files import whisper_base_dir

            cfg = self.config
            path = cfg.model_dir or whisper_base_dir(cfg.cache_dir)
            if not (path / "model.bin").is_file():
                raise SpeechError(
                    f"SpeechConfig.model_dir {path} holds no model.bin; give a CTranslate2 "
                    "Whisper directory or leave it unset for the packaged Whisper base"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
            try:
                self._model = WhisperModel(
                    str(path),
                    device=cfg.device,
                    compute_type=cfg.compute_type,
                    cpu_threads=cfg.cpu_threads,
                    local_files_only=True,
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise SpeechError(
                    f"faster-whisper could not load {path} on {cfg.device} with "
                    f"compute_type={cfg.compute_type} ({exc}); try compute_type='int8' on cpu"
                ) from exc
        return self._model

    def warm_up(self) -> float:
        """Loads the model (joining it into the cache on the very first run); seconds taken."""
        import time

        t0 = time.perf_counter()
        with self._lock:
            self._check_open()
            self._get_model()
        return time.perf_counter() - t0

    def _decode(
        self, speech: np.ndarray, *, prompt: str | None, quick: bool
    ) -> tuple[tuple[Segment, ...], dict[str, Any]]:
        if quick:
            return self._decode_window(speech)
        if self.config.hypotheses > 1 and self.config.vad != "silero":
            return self._decode_readings(speech, prompt)
        cfg = self.config
        options = {
            "beam_size": cfg.beam_size,
            "initial_prompt": prompt,
            "vad_filter": cfg.vad == "silero",
        }
        with self._lock:
            self._check_open()
            model = self._get_model()
            try:
                pieces, info = model.transcribe(
                    speech,
                    language=cfg.language,
                    condition_on_previous_text=False,
                    # Greedy-deterministic beam search only: the default fallback to sampling
                    # at rising temperatures read the same clip differently run to run, and
                    # a correction must not depend on the dice.
                    temperature=0.0,
                    **options,
                )
                segments = tuple(
                    Segment(
                        start_s=float(p.start),
                        end_s=float(p.end),
                        text=p.text.strip(),
                        avg_logprob=float(p.avg_logprob),
                        no_speech_prob=float(p.no_speech_prob),
                    )
                    for p in pieces  # a generator: decoding happens here
                )
            except (RuntimeError, ValueError) as exc:
                raise SpeechError(
                    f"faster-whisper failed on {speech.size} samples ({exc})"
                ) from exc
        return segments, {"duration_after_vad_s": float(info.duration_after_vad)}

    def _decode_readings(
        self, speech: np.ndarray, prompt: str | None
    ) -> tuple[tuple[Segment, ...], dict[str, Any]]:
        """The n best readings of beam searches with and without the prompt, one encoding.

        Why both: the prompt makes Whisper hear the correction words ("grip it lower"), but
        on a short or unclear clip it also makes it continue the prompt ("Rotate the ...",
        "Pull the drawer handle harder.") where the unprompted search heard the words; and
        the right reading is often in a beam's n best, not on top. The readings come back in
        `extra["readings"]` as (text, score, prompted), best score first (CTranslate2's
        length-normalised log-probability); `Transcriber.transcribe` repairs them and lets the
        caller take the best one it understands.
        """
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        cfg = self.config
        with self._lock:
            self._check_open()
            model = self._get_model()
            frames = model.feature_extractor.nb_max_frames  # Whisper's 30 s window
            features = model.feature_extractor(speech)[:, :frames]
            if features.shape[-1] < frames:
                features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])))
            tokenizer = Tokenizer(
                model.hf_tokenizer,
                model.model.is_multilingual,
                task="transcribe",
                language=cfg.language,
            )
            start = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            prompts = [(False, start)]
            if prompt:  # at most half of the 448-token context, as faster-whisper does
                words = tokenizer.encode(" " + prompt.strip())[-(_MAX_LENGTH // 2 - 1) :]
                prompts.insert(0, (True, [tokenizer.sot_prev, *words, *start]))
            # A correction is a sentence: ~4 tokens per second of speech; the cap ends the
            # loops Whisper falls into on unclear audio ("red bowl, red bowl, ...") early.
            new_tokens = int(_TOKENS_PER_SPEECH_S * speech.size / SAMPLE_RATE) + 16
            readings: list[tuple[str, float, bool]] = []
            try:
                encoded = model.model.encode(
                    ctranslate2.StorageView.from_array(
                        np.ascontiguousarray(features[None], dtype=np.float32)
                    ),
                    to_cpu=False,
                )
                for prompted, tokens in prompts:
                    result = model.model.generate(
                        encoded,
                        [tokens],
                        beam_size=max(cfg.beam_size, cfg.hypotheses),
                        num_hypotheses=cfg.hypotheses,
                        return_scores=True,
                        max_length=min(_MAX_LENGTH, len(tokens) + new_tokens),
                        suppress_blank=True,
                        suppress_tokens=[-1],
                    )[0]
                    for ids, score in zip(result.sequences_ids, result.scores, strict=False):
                        text = tokenizer.decode([t for t in ids if t < tokenizer.eot]).strip()
                        readings.append((text, float(score), prompted))
            except (RuntimeError, ValueError) as exc:
                raise SpeechError(
                    f"faster-whisper failed on {speech.size} samples ({exc})"
                ) from exc
        readings.sort(key=lambda r: -r[1])
        best = readings[0] if readings else ("", 0.0, False)
        end_s = speech.size / SAMPLE_RATE
        segment = Segment(start_s=0.0, end_s=end_s, text=best[0], avg_logprob=best[1])
        return (segment,) if best[0] else (), {"readings": readings}

    def _decode_window(self, speech: np.ndarray) -> tuple[tuple[Segment, ...], dict[str, Any]]:
        """The gate's pass: greedy, a few tokens, a `_QUICK_CONTEXT_S` encoder window."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        window = int(_QUICK_CONTEXT_S * SAMPLE_RATE)
        audio = np.zeros(window, np.float32)
        audio[: min(window, speech.size)] = speech[:window]
        with self._lock:
            self._check_open()
            model = self._get_model()
            features = model.feature_extractor(audio)
            features = features[:, : features.shape[-1] - features.shape[-1] % 2]  # conv stride 2
            tokenizer = Tokenizer(
                model.hf_tokenizer,
                model.model.is_multilingual,
                task="transcribe",
                language=self.config.language,
            )
            prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            try:
                result = model.model.generate(
                    ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                    [prompt],
                    beam_size=1,
                    max_length=len(prompt) + _QUICK_MAX_TOKENS,
                    suppress_blank=True,
                    suppress_tokens=[-1],
                )
            except (RuntimeError, ValueError) as exc:
                raise SpeechError(f"faster-whisper failed on the stop-word window ({exc})") from exc
        ids = result[0].sequences_ids[0] if result and result[0].sequences_ids else []
        text = tokenizer.decode([t for t in ids if t < tokenizer.eot]).strip()
        end_s = min(speech.size, window) / SAMPLE_RATE
        return (Segment(start_s=0.0, end_s=end_s, text=text),), {"window_s": _QUICK_CONTEXT_S}

    def close(self) -> None:
        """Drops the model (idempotent)."""
        with self._lock:
            self._model = None
            super().close()
