"""The demo's measures on synthetic task records: false applications by their effect on control
tasks (paired with the no-memory run), transfer apart from recall, the acceptance figures."""

from __future__ import annotations

from typing import Any

import pytest

from corrigible.corrections.scenarios import load_scenarios
from corrigible.corrections.scenarios.schema import Scenario
from corrigible.launch.evaluations.demo_measures import (
    TaskRecord,
    acceptance,
    acceptance_lines,
    identity,
    judge,
    property_keys,
    summarise,
)

RED_BLOCK = identity("red block", "medium", "red")
RED_CYL = identity("red cylinder", "medium", "red")
GREEN_BLOCK = identity("green block", "medium", "green")
PLACE = {"skill": "place", "args": ["green block", "yellow bowl"], "params": {"speed": 0.25}}
SLOW = {"skill": "pick", "args": ["green block"], "params": {"lift_speed": 0.0625}}
FAST = {"skill": "pick", "args": ["green block"], "params": {"lift_speed": 0.25}}
USED = [{"skill": "pick", "entry_id": "e1", "text": "lift the red block slowly", "accepted": True}]


def rec(condition: str, rnd: int, task: int, **kw: Any) -> TaskRecord:
    fields: dict[str, Any] = dict(
        condition=condition,
        scenario="s",
        round=rnd,
        task=task,
        instruction="put it there",
        seed=rnd * 10 + task,
        control=False,
        success=True,
        corrections=0,
    )
    fields.update(kw)
    return TaskRecord(**fields)


def control(condition: str, **kw: Any) -> TaskRecord:
    defaults = dict(control=True, subjects=[GREEN_BLOCK], actions=[FAST, PLACE])
    return rec(condition, 1, 2, **{**defaults, **kw})


# -- false applications ---------------------------------------------------------------------
def test_knowledge_that_changed_an_uncorrected_control_is_a_false_application():
    none = control("none")
    text = control("text", knowledge_used=USED, actions=[SLOW, PLACE])  # slowed it down
    judge([none, text])
    assert text.false_application is True
    assert "changed what the robot did" in text.false_application_why
    assert none.false_application is False


def test_an_entry_inside_its_own_scope_is_still_judged_by_its_effect():
    # The old measure compared the entry's scope with the object: a "blue things" entry applied
    # to a blue control block passed. Here only the effect counts, whatever the entry's scope.
    none = control("none", actions=[FAST, PLACE])
    over = [{**USED[0], "text": "put blue things in the pink bowl", "scope": {"color": "blue"}}]
    wrong = {**PLACE, "args": ["green block", "pink bowl"]}
    tv = control("text+visual", knowledge_used=over, actions=[FAST, wrong], success=False)
    judge([none, tv])
    assert tv.false_application is True
    assert "failed" in tv.false_application_why


def test_knowledge_that_changed_nothing_is_no_false_application():
    none = control("none")
    same = control("text", knowledge_used=USED)  # e.g. a preference naming the same bowl
    judge([none, same])
    assert same.false_application is False


def test_a_failed_control_after_applied_knowledge_counts_even_unchanged():
    none = control("none", success=False)
    failed = control("text", knowledge_used=USED, success=False)
    judge([none, failed])
    assert failed.false_application is True


def test_a_control_without_applied_knowledge_is_never_false():
    none = control("none")
    failed = control("text", success=False, actions=[SLOW])  # failed, but memory did nothing
    judge([none, failed])
    assert failed.false_application is False


def test_a_change_where_the_no_memory_run_needed_correcting_is_not_false():
    none = control("none", corrections=1, actions=[FAST, SLOW, PLACE])
    helped = control("text", knowledge_used=USED, actions=[SLOW, PLACE])
    judge([none, helped])
    assert helped.false_application is False


def test_rejected_hits_are_not_applications():
    none = control("none")
    text = control("text", knowledge_used=[{**USED[0], "accepted": False}], actions=[SLOW])
    judge([none, text])
    assert text.false_application is False


def test_an_unpaired_control_with_applied_knowledge_counts_conservatively():
    text = control("text", knowledge_used=USED)  # "none" was not run
    judge([text])
    assert text.false_application is True
    assert "no no-memory run" in text.false_application_why


def test_pairs_are_matched_by_scenario_round_and_task():
    none_same = control("none")
    none_other = rec("none", 1, 3, control=True, actions=[SLOW, PLACE])  # another task
    text = control("text", knowledge_used=USED, actions=[SLOW, PLACE])
    judge([none_other, none_same, text])
    assert text.false_application is True  # compared with task 2's run, not task 3's


def test_parameters_are_compared_at_four_decimals():
    none = control("none", actions=[{**FAST, "params": {"lift_speed": 0.25000001}}, PLACE])
    text = control("text", knowledge_used=USED)
    judge([none, text])
    assert text.false_application is False


# -- transfer vs recall -----------------------------------------------------------------------
def _history(condition: str, cylinder_corrections: int) -> list[TaskRecord]:
    pref = ["preference:0"]
    return [
        rec(condition, 1, 1, subjects=[RED_BLOCK], subject_properties=pref, corrections=1,
            corrected=[RED_BLOCK], corrected_properties=pref),
        control(condition),
        rec(condition, 2, 1, subjects=[RED_CYL], subject_properties=pref,
            corrections=cylinder_corrections,
            corrected=[RED_CYL] * bool(cylinder_corrections),
            corrected_properties=pref * bool(cylinder_corrections)),
        rec(condition, 2, 2, subjects=[RED_BLOCK], subject_properties=pref),
        rec(condition, 3, 1, subjects=[RED_CYL], subject_properties=pref),
    ]  # fmt: skip


def test_an_unseen_object_sharing_a_corrected_property_is_transfer():
    records = _history("text+visual", cylinder_corrections=0)
    judge(records)
    assert [r.exposure for r in records] == ["new", None, "transfer", "recall", "transfer"]


def test_once_corrected_the_object_is_recall():
    records = _history("none", cylinder_corrections=1)
    judge(records)
    assert [r.exposure for r in records] == ["new", None, "transfer", "recall", "recall"]


def test_an_unseen_object_without_a_shared_property_is_new():
    records = [
        rec("none", 1, 1, subjects=[RED_BLOCK], corrections=1, corrected=[RED_BLOCK],
            corrected_properties=["physics:friction=0.1,mass=None"]),
        rec("none", 2, 1, subjects=[RED_CYL], subject_properties=["preference:0"]),
        rec("none", 2, 2, subjects=[RED_CYL], transfer_tag=True),
    ]  # fmt: skip
    judge(records)
    assert [r.exposure for r in records] == ["new", "new", "transfer"]  # the tag counts


def test_the_transfer_tag_needs_an_earlier_correction():
    first = rec("none", 1, 1, subjects=[RED_CYL], transfer_tag=True)
    judge([first])
    assert first.exposure == "new"


def test_identity_includes_size_and_colour():
    small = identity("blue cylinder", "small", "blue")
    records = [
        rec("none", 1, 1, subjects=[identity("blue cylinder", "medium", "blue")], corrections=1,
            corrected=[identity("blue cylinder", "medium", "blue")]),
        rec("none", 2, 1, subjects=[small]),
    ]  # fmt: skip
    judge(records)
    assert records[1].exposure == "new"  # same name, another size: not recall


# -- summary and acceptance --------------------------------------------------------------------
def test_summary_and_acceptance_report_transfer_apart_from_recall_and_false_rate():
    records = _history("none", cylinder_corrections=1) + _history("text+visual", 0)
    tv_control = next(r for r in records if r.condition == "text+visual" and r.control)
    tv_control.knowledge_used, tv_control.actions = USED, [SLOW, PLACE]
    records[4].corrections = 1  # none, round 3: the cylinder again
    rows = {(r["condition"], r["round"]): r for r in summarise(records)}
    assert rows[("none", 2)]["transfer_tasks"] == 1
    assert rows[("none", 2)]["transfer_corrections_per_task"] == 1.0
    assert rows[("none", 3)]["recall_tasks"] == 1 and rows[("none", 3)]["transfer_tasks"] == 0
    assert rows[("text+visual", 3)]["transfer_tasks"] == 1
    assert rows[("text+visual", 1)]["false_application_tasks"] == 1
    checks = acceptance(list(rows.values()))["text+visual"]
    assert checks["round1_corrections_ratio_to_none"] == 1.0 and not checks["round1_ratio_ok"]
    assert checks["later_rounds_corrections_per_task"] == {"2": 0.0, "3": 0.0}
    assert checks["later_rounds_ok"] is True
    assert checks["false_application_rate"] == 1.0 and checks["false_application_ok"] is False
    assert checks["transfer_tasks"] == 2
    assert checks["transfer_corrections_per_task"] == 0.0
    assert checks["transfer_corrections_per_task_none"] == 1.0
    assert checks["transfer_ok"] is True
    assert checks["all_ok"] is False
    line = acceptance_lines({"text+visual": checks})[0]
    assert "NOT MET" in line and "transfer 2 tasks 0.00/task vs none 1.00" in line


def test_acceptance_thresholds_follow_the_issue():
    rows = [
        _row("none", 1, corrections=1.0, success=0.5),
        _row("none", 2, corrections=1.0, success=0.5),
        _row("text", 1, corrections=0.41, success=0.5),
        _row("text", 2, corrections=0.06, success=0.5),
        _row("text+visual", 1, corrections=0.40, success=0.5, controls=20, false=1),
        _row("text+visual", 2, corrections=0.05, success=0.4),
    ]
    checks = acceptance(rows)
    assert checks["text"]["round1_ratio_ok"] is False and checks["text"]["later_rounds_ok"] is False
    tv = checks["text+visual"]
    assert tv["round1_ratio_ok"] is True and tv["later_rounds_ok"] is True
    assert tv["false_application_rate"] == 0.05 and tv["false_application_ok"] is True
    assert tv["success_at_least_none_every_round"] is False  # round 2: 0.4 < 0.5
    assert tv["transfer_ok"] is None  # no transfer tasks: not judged
    assert "n/a" in acceptance_lines(checks)[1]


def _row(condition: str, rnd: int, *, corrections: float, success: float, controls: int = 0,
         false: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "condition": condition,
        "round": rnd,
        "tasks": 10,
        "success_rate": success,
        "corrections_per_task": corrections,
        "control_tasks": controls,
        "false_application_tasks": false,
        **{f"{e}_tasks": 0 for e in ("recall", "transfer", "new")},
        **{f"{e}_corrections_per_task": None for e in ("recall", "transfer", "new")},
    }


# -- hidden properties read from scenario files -------------------------------------------------
@pytest.fixture(scope="module")
def builtin() -> dict[str, Scenario]:
    return {s.name: s for s in load_scenarios()}


def test_property_keys_from_preferences_physics_camera_and_drawer(builtin):
    red = builtin["red_in_blue"]
    cylinder_task = red.rounds[1][2]
    keys = property_keys(red, cylinder_task)
    assert (
        keys["red cylinder"]
        == ["preference:0"]
        == property_keys(red, red.rounds[0][0])["red block"]
    )
    assert keys["green block"] == []
    slippery = builtin["slippery_lookalike"]
    heavy = property_keys(slippery, slippery.rounds[0][0])["blue cylinder"]
    small = property_keys(slippery, slippery.rounds[0][3])["blue cylinder"]
    assert heavy and heavy[0].startswith("physics:") and small == []
    assert property_keys(builtin["camera_bias"], builtin["camera_bias"].rounds[0][0])[
        "yellow block"
    ] == ["camera"]
    assert property_keys(builtin["stiff_drawer"], builtin["stiff_drawer"].rounds[0][0])[
        "drawer"
    ] == ["drawer"]


def test_an_explicit_property_is_a_key(builtin):
    data = builtin["slippery_lookalike"].model_dump()
    data["rounds"][0][3]["objects"][0]["property"] = "slippery"
    scenario = Scenario.model_validate(data)
    keys = property_keys(scenario, scenario.rounds[0][3])
    assert keys["blue cylinder"] == ["slippery"]
