"""The correction loop end to end: real MuJoCo, real MiniLM, real FAISS.

Slippery scenario: the first task needs a correction and succeeds in the same episode, the
knowledge written at its end is recalled for every later cylinder task (text+visual memory, lift
and carry slowed before any correction), round 2 needs fewer corrections than round 1, and the
same-colour control block is left alone.
"""

from __future__ import annotations

import pytest

from corrigible.corrections.scenarios import load_scenarios
from corrigible.launch.evaluations.corrections_demo import (
    LearningPlan,
    judge,
    run_learning,
    summarise,
)


@pytest.fixture(scope="module")
def slippery_records():
    scenario = next(s for s in load_scenarios() if s.name == "slippery_cylinder")
    plan = LearningPlan(rounds=2, conditions=("text+visual",), tasks_per_round=4)
    return run_learning([scenario], plan)


def test_round_one_is_corrected_within_the_episode(slippery_records) -> None:
    first = [r for r in slippery_records if r.round == 1]
    assert len(first) == 4
    assert first[0].corrections >= 1
    assert first[0].success
    assert all(lat < 5.0 for r in first for lat in r.latencies_s)


def test_later_tasks_recall_what_was_learned(slippery_records) -> None:
    """Every cylinder task after the first gets the slow-down by recall, lift and carry."""
    later = [r for r in slippery_records if not r.control][1:]
    assert later and all(r.knowledge_used for r in later)
    for r in later:
        first_pick = next(a for a in r.actions if a["skill"] == "pick")
        assert first_pick["params"]["speed"] < 0.25  # slowed before any correction


def test_round_two_needs_fewer_corrections(slippery_records) -> None:
    rows = {r["round"]: r for r in summarise(slippery_records)}
    assert rows[2]["corrections_per_task"] < rows[1]["corrections_per_task"]


def test_control_block_gets_no_false_application(slippery_records) -> None:
    control = next(r for r in judge(slippery_records) if r.control and r.round == 2)
    assert control.success
    assert control.false_application is False  # no knowledge applied (no "none" run to pair)
    assert control.knowledge_used == []
