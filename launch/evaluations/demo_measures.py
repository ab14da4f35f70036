"""How the demo's task records are judged: false applications by their effect, transfer vs recall.

Pure functions over `TaskRecord`s (no engine, no model), so they are tested on synthetic lists.

A false application (issue 13) is judged by what the knowledge did on a control task, never by
comparing a knowledge entry's own scope with the object's attributes (an entry scoped too wide
matches its own scope and would never be seen). A control task's run under a memory condition is
paired with the same task (scenario, round, task index) under "none"; it is a false application
when knowledge was applied on it AND either

- it changed what the robot did (the executed skill calls, with their arguments and parameters,
  differ from the paired no-memory run's) where the person did not want a change: the no-memory
  run succeeded without any correction; or
- the control task failed.

Without a paired "none" run (the condition was not run) the change cannot be seen, so applied
knowledge counts as a change: the rate can only be overstated, and `unpaired` says how often.

Each non-control task is also given its exposure, per (condition, scenario) in run order:
"recall" when an object the task is about (any object its `expect` names) has
the identity (name, size, colour) of an object corrected by an earlier task of the same run;
"transfer" when none has, but one shares a property with an object corrected earlier (or the
task is tagged `transfer: true` and something was corrected earlier); "new" otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corrigible.corrections.scenarios.schema import Scenario, TaskInstance

CONDITIONS: tuple[str, ...] = ("none", "text", "text+visual")  # table order (memory modes)
EXPOSURES = ("recall", "transfer", "new")

# The acceptance (issue 13), per memory condition against "none".
ROUND1_RATIO_MAX = 0.40  # round-1 corrections per task, relative to no memory
LATER_ROUNDS_MAX = 0.05  # corrections per task in every round from round 2
FALSE_RATE_MAX = 0.05  # false applications per control task
TRANSFER_RATIO_MAX = 0.5  # corrections on transfer tasks, relative to no memory
_PARAM_DIGITS = 4  # executed parameters are compared at this many decimals


@dataclass(kw_only=True)
class TaskRecord:
    """One task instance under one condition; the judged fields are set by `judge`."""

    condition: str
    scenario: str
    round: int  # 1-based
    instruction: str
    seed: int
    control: bool
    success: bool
    corrections: int
    task: int = 0  # 1-based index of the task in its round of the scenario file
    correction_texts: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    knowledge_used: list[dict[str, Any]] = field(default_factory=list)  # applied entries
    distilled: list[str] = field(default_factory=list)  # entry texts written
    subjects: list[str] = field(default_factory=list)  # identities of the objects it is about
    subject_properties: list[str] = field(default_factory=list)  # their shared properties
    transfer_tag: bool = False  # the file tags the task `transfer: true`
    corrected: list[str] = field(default_factory=list)  # identities of objects corrected here
    corrected_properties: list[str] = field(default_factory=list)  # their shared properties
    actions: list[dict[str, Any]] = field(default_factory=list)  # executed skill calls, in order
    wall_s: float = 0.0
    # set by `judge`
    exposure: str | None = None  # "recall" | "transfer" | "new"; None on control tasks
    false_application: bool | None = None  # control tasks only
    false_application_why: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def identity(name: str, size: str, color: str) -> str:
    """An object's identity for "corrected before": its name, size and colour."""
    return f"{name} ({size}, {color})"


def property_keys(scenario: Scenario, task: TaskInstance) -> dict[str, list[str]]:
    """Scene name -> the hidden properties an object of this task shares with others.

    An explicit `property`; hidden friction or mass ("physics:..."); each preference whose colour
    and shape it matches ("preference:<i>"); a camera bias for every graspable object ("camera");
    a drawer with non-default mechanics ("drawer").
    """
    from corrigible.corrections.scenarios.schema import DrawerModel
    from corrigible.sim_envs.vocabulary import object_kind, object_name

    biased = any(abs(c) > 0 for c in scenario.camera_bias)
    out: dict[str, list[str]] = {}
    for obj in task.objects if task.objects is not None else scenario.objects:
        keys = [obj.property] if obj.property else []
        if obj.friction is not None or obj.mass is not None:
            keys.append(f"physics:friction={obj.friction},mass={obj.mass}")
        kind = object_kind(obj.kind)
        keys += [
            f"preference:{i}"
            for i, pref in enumerate(scenario.preferences)
            if _matches(pref, obj.color, kind.shape, obj.size)
        ]
        if biased and kind.graspable:
            keys.append("camera")
        out[object_name(obj.color, obj.kind)] = keys
    if scenario.drawer is not None and scenario.drawer != DrawerModel():
        out[object_name("", "drawer")] = ["drawer"]  # furniture is named by its kind
    return out


def _matches(pref: Any, color: str, shape: str, size: str) -> bool:
    """Whether a preference covers the object (by size too where preferences have one)."""
    if "size" in type(pref).model_fields:
        return pref.matches(color, shape, size)
    return pref.matches(color, shape)


def normalised_actions(actions: Iterable[dict[str, Any]]) -> list[tuple]:
    """Executed skill calls in a comparable form (parameters rounded)."""

    def norm(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, _PARAM_DIGITS)
        if isinstance(value, dict):
            return tuple(sorted((k, norm(v)) for k, v in value.items()))
        if isinstance(value, list | tuple):
            return tuple(norm(v) for v in value)
        return value

    return [(a.get("skill"), norm(a.get("args", [])), norm(a.get("params", {}))) for a in actions]


def _applied(rec: TaskRecord) -> list[dict[str, Any]]:
    return [u for u in rec.knowledge_used if u.get("accepted", True)]


def judge_false_application(rec: TaskRecord, none: TaskRecord | None) -> tuple[bool, str]:
    """(false application, why) for one control task, given its paired no-memory run."""
    applied = _applied(rec)
    if not applied:
        return False, "no knowledge applied"
    what = ", ".join(sorted({str(u.get("text") or u.get("entry_id")) for u in applied}))[:300]
    if not rec.success:
        return True, f"the control task failed after knowledge was applied ({what})"
    if none is None:
        return True, f"knowledge applied ({what}); no no-memory run to compare with"
    changed = normalised_actions(rec.actions) != normalised_actions(none.actions)
    if not changed:
        return False, "knowledge applied but the robot did the same as without memory"
    if none.success and none.corrections == 0:
        return True, (
            f"knowledge ({what}) changed what the robot did; without memory it succeeded "
            "uncorrected"
        )
    return False, "knowledge changed the run where the no-memory run needed correcting"


def _key(rec: TaskRecord) -> tuple[str, int, int]:
    return (rec.scenario, rec.round, rec.task)


def judge(records: list[TaskRecord]) -> list[TaskRecord]:
    """Sets `false_application` on control tasks and `exposure` on the others (in place).

    Idempotent; returns `records` for chaining.
    """
    none_runs = {_key(r): r for r in records if r.condition == "none"}
    for rec in records:
        if rec.control:
            pair = None if rec.condition == "none" else none_runs.get(_key(rec))
            if rec.condition == "none":
                rec.false_application, rec.false_application_why = False, "no memory"
            else:
                rec.false_application, rec.false_application_why = judge_false_application(
                    rec, pair
                )
            rec.exposure = None
    runs: dict[tuple[str, str], list[TaskRecord]] = {}
    for rec in records:
        runs.setdefault((rec.condition, rec.scenario), []).append(rec)
    for run in runs.values():
        seen: set[str] = set()
        seen_properties: set[str] = set()
        for rec in sorted(run, key=lambda r: (r.round, r.task)):
            if not rec.control:
                rec.exposure = _exposure(rec, seen, seen_properties)
            seen |= set(rec.corrected)
            seen_properties |= set(rec.corrected_properties)
    return records


def _exposure(rec: TaskRecord, seen: set[str], seen_properties: set[str]) -> str:
    if seen & set(rec.subjects):
        return "recall"
    if seen_properties & set(rec.subject_properties) or (rec.transfer_tag and seen):
        return "transfer"
    return "new"


def _rate(values: list[float]) -> float | None:
    return None if not values else sum(values) / len(values)


def summarise(records: list[TaskRecord]) -> list[dict[str, Any]]:
    """Per condition and round: success, corrections per task, false applications.

    Corrections per task are also given for recall and transfer tasks apart; false applications
    are control tasks judged by `judge` (which this calls).
    """
    judge(records)
    rows = []
    order = {c: i for i, c in enumerate(CONDITIONS)}
    keys = sorted({(r.condition, r.round) for r in records}, key=lambda k: (order[k[0]], k[1]))
    for condition, rnd in keys:
        group = [r for r in records if r.condition == condition and r.round == rnd]
        lat = [x for r in group for x in r.latencies_s]
        controls = [r for r in group if r.control]
        false = [r for r in controls if r.false_application]
        row: dict[str, Any] = {
            "condition": condition,
            "round": rnd,
            "tasks": len(group),
            "success_rate": sum(r.success for r in group) / len(group),
            "corrections_per_task": sum(r.corrections for r in group) / len(group),
            "control_tasks": len(controls),
            "false_application_tasks": len(false),
            "false_application_rate": None if not controls else len(false) / len(controls),
            "knowledge_on_controls": sum(bool(_applied(r)) for r in controls),
        }
        for exposure in EXPOSURES:
            mine = [r for r in group if r.exposure == exposure]
            row[f"{exposure}_tasks"] = len(mine)
            row[f"{exposure}_corrections_per_task"] = _rate([r.corrections for r in mine])
        row["mean_latency_ms"] = None if not lat else 1000 * sum(lat) / len(lat)
        rows.append(row)
    return rows


def _exposure_rate(rows: list[dict[str, Any]], condition: str, exposure: str) -> float | None:
    """Corrections per task over all rounds' tasks of one exposure (None: no such task)."""
    mine = [r for r in rows if r["condition"] == condition and r[f"{exposure}_tasks"]]
    n = sum(r[f"{exposure}_tasks"] for r in mine)
    if n == 0:
        return None
    return sum(r[f"{exposure}_corrections_per_task"] * r[f"{exposure}_tasks"] for r in mine) / n


def acceptance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's acceptance figures per memory condition, from `summarise` rows (not asserted).

    Round-1 corrections per task <= 0.40 of "none"; <= 0.05 per task in every round from round
    2; success at least that of "none" in every round; false applications <= 5% of control
    tasks; on transfer tasks, corrections per task at most half of "none"'s. A figure that cannot
    be computed (no control or transfer tasks, "none" not run, one round) is None and its check
    None: not met, not failed.
    """
    by = {(r["condition"], r["round"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows})
    out: dict[str, Any] = {}
    for condition in dict.fromkeys(r["condition"] for r in rows):
        if condition == "none":
            continue
        has_none = ("none", rounds[0]) in by
        first = by.get((condition, rounds[0]))
        base = by.get(("none", rounds[0]))
        ratio = (
            None
            if first is None or base is None or base["corrections_per_task"] == 0
            else first["corrections_per_task"] / base["corrections_per_task"]
        )
        later = {
            n: by[(condition, n)]["corrections_per_task"]
            for n in rounds[1:]
            if (condition, n) in by
        }
        success_ok = (
            None
            if not has_none
            else all(
                by[(condition, n)]["success_rate"] >= by[("none", n)]["success_rate"]
                for n in rounds
                if ("none", n) in by and (condition, n) in by
            )
        )
        mine = [r for r in rows if r["condition"] == condition]
        controls = sum(r["control_tasks"] for r in mine)
        false_rate = (
            None if not controls else sum(r["false_application_tasks"] for r in mine) / controls
        )
        transfer = _exposure_rate(rows, condition, "transfer")
        transfer_none = _exposure_rate(rows, "none", "transfer")
        transfer_ratio = None if transfer is None or not transfer_none else transfer / transfer_none
        checks = {
            "round1_ratio_ok": None if ratio is None else ratio <= ROUND1_RATIO_MAX,
            "later_rounds_ok": None if not later else max(later.values()) <= LATER_ROUNDS_MAX,
            "success_at_least_none_every_round": success_ok,
            "false_application_ok": None if false_rate is None else false_rate <= FALSE_RATE_MAX,
            "transfer_ok": None if transfer_ratio is None else transfer_ratio <= TRANSFER_RATIO_MAX,
        }
        out[condition] = {
            "round1_corrections_ratio_to_none": ratio,
            "later_rounds_corrections_per_task": {str(n): v for n, v in later.items()},
            "success_at_least_none_every_round": success_ok,
            "control_tasks": controls,
            "false_application_rate": false_rate,
            "recall_corrections_per_task": _exposure_rate(rows, condition, "recall"),
            "transfer_tasks": sum(r["transfer_tasks"] for r in mine),
            "transfer_corrections_per_task": transfer,
            "transfer_corrections_per_task_none": transfer_none,
            "transfer_corrections_ratio_to_none": transfer_ratio,
            **checks,
            "all_ok": all(v is True for v in checks.values()),
        }
    return out


def acceptance_lines(checks: dict[str, Any]) -> list[str]:
    """One plain-text line per memory condition: each figure, its threshold and the verdict."""

    def num(value: float | None, fmt: str = ".2f") -> str:
        return "-" if value is None else format(value, fmt)

    def verdict(value: bool | None) -> str:
        return "n/a" if value is None else ("ok" if value else "NOT MET")

    lines = []
    for condition, c in checks.items():
        later = c["later_rounds_corrections_per_task"]
        later_text = "/".join(f"{v:.2f}" for v in later.values()) or "-"
        lines.append(
            f"{condition}: round-1 corrections {num(c['round1_corrections_ratio_to_none'])} of "
            f"none (<= {ROUND1_RATIO_MAX:.2f}: {verdict(c['round1_ratio_ok'])}); rounds 2+ "
            f"{later_text}/task (<= {LATER_ROUNDS_MAX:.2f}: {verdict(c['later_rounds_ok'])}); "
            f"success >= none every round: {verdict(c['success_at_least_none_every_round'])}; "
            f"false applications {num(c['false_application_rate'], '.1%')} of "
            f"{c['control_tasks']} control tasks (<= {FALSE_RATE_MAX:.0%}: "
            f"{verdict(c['false_application_ok'])}); transfer {c['transfer_tasks']} tasks "
            f"{num(c['transfer_corrections_per_task'])}/task vs none "
            f"{num(c['transfer_corrections_per_task_none'])} (<= half: "
            f"{verdict(c['transfer_ok'])}); recall {num(c['recall_corrections_per_task'])}/task"
        )
    return lines
