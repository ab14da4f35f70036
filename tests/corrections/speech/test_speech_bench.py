"""`corrigible bench speech --quick`: real espeak-ng speech, real Whisper, real router (slow)."""

from __future__ import annotations

import pytest

from corrigible.launch.benchmarks.speech import (
    QUICK_SIZE,
    effect_of,
    sample_items,
    word_errors,
)


def test_word_errors_count_substitutions_insertions_and_deletions():
    assert word_errors("a bit more to the left", "A bit more to the left.") == (0, 6)
    assert word_errors("grey block", "gray block") == (0, 2)
    assert word_errors("open the drawer first", "Open the door first") == (1, 4)
    assert word_errors("slower", "so slow or") == (3, 1)
    assert word_errors("stop now", "") == (2, 2)


def test_splits_are_disjoint_and_the_held_out_one_has_100_distinct_phrasings(router):
    """The issue asks for >= 100 correction utterances: distinct texts, none tuned on."""
    dev = {i.text for i in sample_items(router, split="dev")}
    held = sample_items(router, split="heldout")
    assert len({i.text for i in held}) == len(held) >= 100
    assert not dev & {i.text for i in held}
    with pytest.raises(KeyError):
        sample_items(router, split="test")


def test_sample_is_fixed_and_every_item_has_a_typed_effect(router):
    first, again = sample_items(router, 20), sample_items(router, 20)
    assert [i.text for i in first] == [i.text for i in again]
    for item in first:
        assert item.label in ("skill", "plan") and item.effects
        assert effect_of(router, item.text, item.scene) == (item.label, item.effects)


@pytest.mark.slow
def test_quick_bench_rows_agree_with_their_summary():
    from corrigible.launch.benchmarks.speech import run_bench

    rows = list(run_bench(quick=True))
    env = rows[0]
    assert env["bench"] == "speech_env" and env["backend"] == "faster_whisper"
    utterances = [r for r in rows if r["bench"] == "speech_utterance"]
    assert len(utterances) == QUICK_SIZE
    (clean,) = [r for r in rows if r["bench"] == "speech_summary" and r["condition"] == "clean"]
    same = sum(r["same_effect"] for r in utterances)
    assert clean["same_effect"] == same and clean["utterances"] == QUICK_SIZE
    errors = sum(r["word_errors"] for r in utterances)
    assert clean["wer"] == round(errors / sum(r["ref_words"] for r in utterances), 4)
    assert all(r["latency_s"] > 0 and r["rtf"] > 0 for r in utterances)
    # The session's choice among readings never loses to the decoder's top one on its own
    # summary (it can pick a wrong reading the interpreter understands, so per row it may).
    assert clean["same_effect_rate"] >= clean["same_effect_rate_top"] - 1 / QUICK_SIZE
    assert clean["took_other_reading"] == sum(r["chosen"] > 0 for r in utterances)
    # Regression floor, not the goal (>= 0.9): measured 0.75 (9/12) on these first 12
    # held-out phrasings with the sentence prompt and the normaliser, 11/12 with the choice of
    # the best understood reading (2026-12-03, `bench speech --quick`).
    assert same / QUICK_SIZE >= 0.5, [r for r in utterances if not r["same_effect"]]
    (gate,) = [r for r in rows if r["bench"] == "speech_stop_gate"]
    assert gate["fired"] >= gate["stop_utterances"] - 1, gate["missed"]
    assert gate["gate_latency_p50_s"] < gate["full_transcription_p50_s"]
