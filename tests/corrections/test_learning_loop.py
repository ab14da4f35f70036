"""The correction loop end to end: real MuJoCo, real MiniLM, real FAISS.

Slippery scenario: the first task needs a correction and succeeds in the same episode, the
knowledge written at its end is recalled for every later cylinder task (text+visual memory), and
the same-colour control block is left alone.
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
    """Every cylinder task after the first gets the slow-down by recall, in round 1 too.

    Not asserted: fewer corrections in round 2. The stored slow-down (x0.25, one correction's
    worth) holds the cylinder in only some layouts, so recalled tasks still need one more; the
    demo reports that figure.
    """
    later = [r for r in slippery_records if not r.control][1:]
    assert later and all(r.knowledge_used for r in later)
    used = [u for r in later for u in r.knowledge_used]
    assert all("cylinder" in str(u) for u in used)


def test_control_block_gets_no_false_application(slippery_records) -> None:
    control = next(r for r in judge(slippery_records) if r.control and r.round == 2)
    assert control.success
    assert control.false_application is False  # no knowledge applied (no "none" run to pair)
    assert control.knowledge_used == []
