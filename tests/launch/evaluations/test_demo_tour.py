"""The default demo's tour, `--full`, `--quick` and `--scenarios DIR`; and the false-application
measure on a real run (MuJoCo, MiniLM, FAISS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from corrigible.corrections.scenarios import load_scenarios
from corrigible.errors import ConfigError
from corrigible.launch.demo import DemoConfig, _plan
from corrigible.launch.evaluations.corrections_demo import TOUR, LearningPlan, tour
from corrigible.launch.evaluations.demo_measures import normalised_actions, summarise

CLI = [sys.executable, "-m", "corrigible.launch.cli"]


@pytest.fixture(scope="module")
def builtin():
    return load_scenarios()


def test_every_round_of_the_tour_has_a_control_and_a_task_to_learn_from(builtin):
    scenarios, selection = tour(builtin)
    assert [s.name for s in scenarios] == list(TOUR)
    for scenario in scenarios:
        plan = LearningPlan(selection=selection)
        rounds = plan.tasks(scenario)
        assert len(rounds) == 3
        for tasks in rounds:
            assert any(t.control for _, t in tasks), scenario.name
            assert any(not t.control for _, t in tasks), scenario.name
        # round 1 has at least three tasks to correct, so memory can pay off within the round
        assert sum(not t.control for _, t in rounds[0]) >= 3


def test_the_tour_has_a_transfer_task(builtin):
    plan = LearningPlan(selection=tour(builtin)[1])
    red = next(s for s in builtin if s.name == "red_in_blue")
    objects = [t.objects for tasks in plan.tasks(red)[1:] for _, t in tasks if t.objects]
    assert any(o.kind == "cylinder" for objs in objects for o in objs)


def test_plan_selects_by_index_and_keeps_file_indices(builtin):
    red = next(s for s in builtin if s.name == "red_in_blue")
    plan = LearningPlan(selection={"red_in_blue": ((1, 0), (4,))})
    rounds = plan.tasks(red)
    assert [[i for i, _ in r] for r in rounds] == [[2, 1], [5]]  # 1-based, as selected
    assert rounds[0][0][1] == red.rounds[0][1]
    assert [len(r) for r in LearningPlan(rounds=2, tasks_per_round=3).tasks(red)] == [3, 3]
    assert [len(r) for r in LearningPlan().tasks(red)] == [len(r) for r in red.rounds]
    cut = LearningPlan(rounds=1, selection={"red_in_blue": ((1, 0), (4,))}).tasks(red)
    assert len(cut) == 1


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"no_such_scenario": ((0,),)}, "no_such_scenario"),
        ({"red_in_blue": ((0, 99),)}, "tasks [0, 99]"),
        ({"red_in_blue": ((0,),) * 4}, "4 rounds"),
        ({"red_in_blue": ((),)}, "tasks []"),
    ],
)
def test_a_bad_tour_is_refused_with_the_reason(builtin, selection, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tour(builtin, selection)


def test_default_is_the_tour_full_is_everything_and_a_folder_runs_all_its_tasks(builtin, tmp_path):
    scenarios, plan, kind = _plan(DemoConfig(out=None), builtin)
    assert kind == "tour" and len(scenarios) == len(TOUR) and plan.selection
    scenarios, plan, kind = _plan(DemoConfig(out=None, quick=True), builtin)
    assert kind == "tour"  # --quick on the built-ins: the tour
    scenarios, plan, kind = _plan(DemoConfig(out=None, full=True), builtin)
    assert kind == "full" and len(scenarios) == len(builtin) and not plan.selection
    assert plan.rounds is None and plan.tasks_per_round is None
    folder = DemoConfig(out=None, scenarios=tmp_path)
    assert _plan(folder, builtin)[2] == "full"  # a user's folder: every task
    quick = _plan(DemoConfig(out=None, scenarios=tmp_path, quick=True), builtin)[1]
    assert (quick.rounds, quick.tasks_per_round) == (2, 2)
    assert _plan(DemoConfig(out=None, rounds=1), builtin)[1].rounds == 1


def test_full_and_quick_together_are_refused():
    with pytest.raises(ConfigError, match="--full and --quick"):
        DemoConfig(out=None, full=True, quick=True)
    out = subprocess.run(
        [*CLI, "demo", "--full", "--quick"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "--full and --quick" in out.stderr


def test_learn_takes_full(tmp_path: Path):
    from corrigible.launch.learn import LearnConfig

    assert LearnConfig(full=True, out=tmp_path / "l.json").to_demo().full


# -- the measure on a real run -----------------------------------------------------------------
@pytest.mark.slow
def test_false_applications_are_judged_against_the_paired_no_memory_run(builtin):
    """Lookalike cylinders: the heavy one is corrected (slowed), then the small control runs.

    Whatever retrieval does, the judgement must be consistent with the executed skill calls:
    a control on which no knowledge was applied does exactly what the no-memory run did (same
    layout, same planner, deterministic physics), so it is never a false application; one on
    which knowledge was applied and changed the calls is one (the no-memory run succeeded
    uncorrected on the small cylinder).
    """
    from corrigible.launch.evaluations.corrections_demo import run_learning

    scenarios, selection = tour(builtin, {"slippery_lookalike": ((0, 3),)})
    records = run_learning(scenarios, LearningPlan(selection=selection))
    rows = summarise(records)
    heavy = next(r for r in records if r.condition == "none" and not r.control)
    assert heavy.corrections >= 1 and heavy.corrected == ["blue cylinder (medium, blue)"]
    assert heavy.exposure == "new"
    none_ctrl = next(r for r in records if r.condition == "none" and r.control)
    assert none_ctrl.success and none_ctrl.corrections == 0  # the small one needs no help
    assert none_ctrl.subjects[0] == "blue cylinder (small, blue)"
    assert none_ctrl.actions and none_ctrl.actions[0]["skill"] == "pick"
    for ctrl in (r for r in records if r.control and r.condition != "none"):
        applied = [u for u in ctrl.knowledge_used if u.get("accepted", True)]
        same = normalised_actions(ctrl.actions) == normalised_actions(none_ctrl.actions)
        if not applied:
            assert same, f"{ctrl.condition}: no knowledge applied, yet the calls differ"
            assert ctrl.false_application is False
        else:
            assert ctrl.false_application is (not same or not ctrl.success), ctrl.condition
    by = {(r["condition"], r["round"]): r for r in rows}
    for condition in ("text", "text+visual"):
        row = by[(condition, 1)]
        expected = sum(
            bool(r.false_application) for r in records if r.condition == condition and r.control
        )
        assert row["control_tasks"] == 1 and row["false_application_tasks"] == expected


def test_the_table_fits_80_columns_without_cutting_a_figure():
    from rich.console import Console

    from corrigible.launch.demo import _table

    row = dict(
        tasks=12, success_rate=0.917, corrections_per_task=0.583, recall_tasks=5,
        recall_corrections_per_task=0.6, transfer_tasks=1, transfer_corrections_per_task=0.0,
        false_application_tasks=1, control_tasks=3, mean_latency_ms=1234.0,
    )  # fmt: skip
    rows = [{**row, "condition": c, "round": 1} for c in ("none", "text", "text+visual")]
    console = Console(width=80, record=True)
    console.print(_table(rows, "corrigible demo (mujoco, tour): corrections, memory and reuse"))
    text = console.export_text()
    assert "…" not in text
    for figure in ("text+visual", "0.92", "0.58", "0.60 (5)", "0.00 (1)", "1/3", "1234"):
        assert figure in text


def test_knowledge_used_takes_skill_knowledge_and_plan_rules_that_rewrote_the_program():
    from corrigible.launch.evaluations.corrections_demo import _knowledge_used

    bookkeeping = {"episode": "e", "wall_s": 1.0}
    events = [
        {"kind": "knowledge.used", **bookkeeping, "skill": "pick", "text": "lift slowly",
         "false_application": False},
        {"kind": "plan.rules", **bookkeeping, "rules": ["never use the green bowl"],
         "changes": ["place target green bowl -> blue bowl"]},
        {"kind": "plan.rules", **bookkeeping, "rules": ["open the drawer first"], "changes": []},
        {"kind": "skill", **bookkeeping, "skill": "pick"},
    ]  # fmt: skip
    used = _knowledge_used(events, "text")
    assert used[0] == {"skill": "pick", "text": "lift slowly"}  # no scope judgement kept
    assert used[1]["entry_kind"] == "plan_rule" and used[1]["text"] == "never use the green bowl"
    assert len(used) == 2  # a rule in force that changed nothing is not an application
    assert len(_knowledge_used(events, "none")) == 1  # without memory no rule is remembered
