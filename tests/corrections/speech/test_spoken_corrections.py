"""Real speech (espeak-ng) -> faster-whisper (Whisper base, CPU) -> router -> interpreter.

A said correction must have the effect the same text has typed: the same route label and the
same typed effects, in the same scene.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from corrigible.corrections.interpret import InterpretContext, interpret
from corrigible.corrections.speech import StopWordGate, load_audio
from corrigible.corrections.speech.synth import pad_silence

SCENE = ("red block", "green block", "blue block", "red bowl", "green bowl", "blue bowl", "drawer")
CTX = InterpretContext(
    visible_objects=SCENE,
    current_skill="place",
    current_object="red block",
    current_target="red bowl",
)


def _effect(router, text: str) -> tuple[str, list[dict]]:
    label = router.route(text).label
    effects = [e.to_dict() for e in interpret(text, label, CTX).effects]
    for effect in effects:
        effect.pop("reason", None)  # quotes the words (punctuation, case), not the effect
    return label, sorted(effects, key=lambda e: json.dumps(e, sort_keys=True))


@pytest.mark.parametrize(
    ("text", "voice"),
    [
        ("a bit more to the left", "en-gb+f3"),
        ("open the drawer first", "en-us"),
        ("put it in the green bowl instead", "en-us"),
    ],
)
def test_said_correction_has_the_typed_effect(stt, say, router, text, voice):
    transcript = stt.transcribe(say(text, voice=voice), vocabulary=SCENE)
    assert transcript.has_speech and transcript.latency_s > 0
    assert transcript.prompt and "blue bowl" in transcript.prompt
    typed = _effect(router, text)
    assert typed[1], f"{text!r} has no typed effect"
    assert _effect(router, transcript.text) == typed, transcript.text


def test_silence_and_noise_are_never_heard_as_words(stt):
    rng = np.random.default_rng(0)
    assert stt.transcribe(np.zeros(16000, np.float32)).text == ""
    hiss = (0.01 * rng.standard_normal(32000)).astype(np.float32)
    transcript = stt.transcribe(hiss)
    assert transcript.text == "" and transcript.speech_s == 0.0 and transcript.segments == ()


def test_stop_word_fires_from_the_first_window_before_the_full_transcription(stt, say):
    fired = []
    gate = StopWordGate(stt, on_fire=fired.append)
    audio = say("stop, you will knock it over", voice="en-gb+f3")
    hit = gate.check(audio)
    assert hit is not None and hit.word == "stop" and fired == [hit]
    full = stt.transcribe(audio)
    assert hit.latency_s < full.latency_s, (hit, full.latency_s)
    gate.reset()
    assert gate.check(say("a bit more to the left", voice="en-gb+f3")) is None


def test_streamed_stop_word_fires_while_the_person_is_still_talking(stt, say):
    samples = pad_silence(
        load_audio(say("wait, the drawer has to be open first", voice="en-gb+f3")),
        before_s=0.3,
        after_s=0.3,
    )
    gate = StopWordGate(stt)
    chunk = 1600  # 0.1 s
    fired_at = None
    for start in range(0, samples.size, chunk):
        hit = gate.feed(samples[start : start + chunk])
        if hit is not None:
            fired_at = start + chunk
            break
    assert hit is not None and hit.word == "wait", gate.hit
    assert fired_at is not None and fired_at < samples.size * 0.7  # long before the end
    assert gate.feed(samples[:chunk]) is None and gate.end() == hit  # fires once per utterance


def test_silero_gate_cuts_the_silence_around_the_words(say):
    from corrigible.corrections.speech import SpeechConfig, Transcriber

    samples = pad_silence(load_audio(say("open the drawer first")), before_s=2.0, after_s=2.0)
    with Transcriber.from_config(SpeechConfig(vad="silero", bias=False)) as stt:
        transcript = stt.transcribe(samples)
    assert transcript.text.lower().strip(".!") == "open the drawer first"
    assert transcript.speech_s == transcript.audio_s  # the energy gate did not run
    assert transcript.extra["duration_after_vad_s"] < transcript.audio_s - 2.0


def test_the_transcript_is_the_best_reading_the_pipeline_understands(stt, say):
    """Several readings come back best first; the caller's test picks among them."""
    audio = say("go a tad lower before closing", voice="en-gb-scotland+m3")
    top = stt.transcribe(audio, vocabulary=SCENE)
    assert len(top.alternatives) >= 2 and top.chosen == 0 and top.text == top.alternatives[0]
    last = top.alternatives[-1]
    picked = stt.transcribe(audio, vocabulary=SCENE, understands=lambda text: text == last)
    assert picked.text == last and picked.chosen == len(top.alternatives) - 1
    assert picked.alternatives == top.alternatives  # the same readings, another choice
    none = stt.transcribe(audio, vocabulary=SCENE, understands=lambda text: False)
    assert none.text == top.text and none.chosen == 0  # nothing understood: the best stays


def test_understanding_means_a_route_and_an_effect(router):
    from corrigible.corrections.speech.understanding import understood_in

    understands = understood_in(router, CTX)
    assert understands("a bit more to the left") and understands("not the red block, the blue one")
    assert understands("undo that")
    assert not understands("") and not understands("purple monkey dishwasher")
    assert not understands("put it in the golden bowl")  # no such object: refused, not guessed
