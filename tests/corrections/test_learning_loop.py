"""The correction loop end to end: real MuJoCo, real MiniLM, real FAISS.

Slippery scenario: round 1 needs corrections and still succeeds in the same episode; round 2
with text+visual memory needs fewer; the same-colour control block is left alone.
"""

from __future__ import annotations

import pytest

from corrigible.corrections.scenarios import load_scenarios
from corrigible.launch.evaluations.corrections_demo import LearningPlan, run_learning, summarise


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
    assert first[0].distilled  # knowledge written at episode end
    assert all(lat < 5.0 for lat in first[0].latencies_s)


def test_round_two_needs_fewer_corrections(slippery_records) -> None:
    rows = {r["round"]: r for r in summarise(slippery_records)}
    assert rows[2]["corrections_per_task"] < rows[1]["corrections_per_task"]
    target = next(r for r in slippery_records if r.round == 2 and not r.control)
    assert target.success and target.knowledge_used


def test_control_block_gets_no_false_application(slippery_records) -> None:
    control = next(r for r in slippery_records if r.control and r.round == 2)
    assert control.success
    assert control.false_applications == 0
    assert control.knowledge_used == []
