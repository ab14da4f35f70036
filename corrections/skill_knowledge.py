"""Skill knowledge that transfers: why a correction was needed, merged values, evidence.

Distillation (`corrections.distill`) asks this module three things about skill parameters:

* **Why** (`explain`): which attribute explains a parameter change, so the entry's scope can
  cover objects never seen that share it. A lateral grasp or place offset on a table object is
  a perception offset: the camera explains it and every object seen through it shares it. A
  change on furniture (a drawer's pull) belongs to that instance. Anything else (slower,
  lower, higher: a slip or a grip problem) is explained by what perception sees of the
  object's build, its shape and size class, never by its colour, and never by the hidden
  friction or mass it cannot see.
* **Merge** (`merge_params`): values are absolute (a correction already acted on what the
  robot did, recalled knowledge included), so a newer value replaces an older one instead of
  stacking on it, and every merged value is held inside the skill's declared bounds and what
  the world allows (`SkillLibrary.world_bounds`, e.g. a drawer slide's travel).
* **Outcome** (`assess`): what became of knowledge applied in the episode: it helped, it
  failed (the task failed), or it was contradicted (the person corrected its parameters the
  opposite way). The evidence lowers or raises the entry's confidence
  (`memory.confidence`) and retires it after repeated failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope
from corrigible.memory.confidence import retirement_reason
from corrigible.memory.schema import Evidence
from corrigible.policies.skills.specs import bound_params, skill_spec, stored_params
from corrigible.sim_envs.vocabulary import OBJECT_KINDS, attributes_of_name, noun_of_shape

# Parameters whose change says where the object really is (a perception offset).
OFFSET_PARAMS: frozenset[str] = frozenset(
    {"grasp_offset_x", "grasp_offset_y", "offset_x", "offset_y"}
)
_UNITS = {"speed": "m/s", "descend_speed": "m/s"}
_EXACT = ["color", "shape", "size_class"]  # an object's whole perceived identity


def is_furniture(obj: str) -> bool:
    """Whether `obj` is furniture (named by its kind alone, one per scene)."""
    return obj in OBJECT_KINDS and OBJECT_KINDS.get(obj).furniture


def explain(obj: str, params: Iterable[str]) -> list[tuple[list[str], list[str]]]:
    """Groups changed parameters by what explains them: [(explaining attributes, params)]."""
    names = sorted(params)
    if is_furniture(obj):
        return [(["object_name"], names)] if names else []
    groups: list[tuple[list[str], list[str]]] = []
    offsets = [n for n in names if n in OFFSET_PARAMS]
    build = [n for n in names if n not in OFFSET_PARAMS]
    if offsets:
        groups.append((["camera"], offsets))
    if build:
        groups.append((["shape", "size_class"], build))
    return groups


def scope_for(obj: str, explains: list[str], size_class: str | None) -> ObjectScope:
    """The scope the explaining attributes give an entry learned on `obj`."""
    if "object_name" in explains:
        return ObjectScope(object_name=obj, explains=explains)
    attrs = {**attributes_of_name(obj), "size_class": size_class}
    return ObjectScope(
        **{k: attrs.get(k) for k in ("color", "shape", "size_class") if k in explains},
        explains=explains,
    )


def scope_key(entry: KnowledgeEntry) -> tuple[Any, ...]:
    """Entries with one key describe the same knowledge (merged, never duplicated)."""
    return (entry.kind, entry.skill, tuple(sorted(entry.scope.model_dump().items(), key=str)))


def describe_params(params: Mapping[str, float]) -> str:
    """Values as an entry's text shows them: 'speed 0.062 m/s, grasp offset y +0.020 m'."""
    return ", ".join(
        f"{name.replace('_', ' ')} "
        + (f"{value:+.3f}" if "offset" in name or name.endswith("height") else f"{value:.3f}")
        + f" {_UNITS.get(name, 'm')}"
        for name, value in sorted(params.items())
    )


def entry_text(
    skill: str, scope: ObjectScope, params: Mapping[str, float], objects: Sequence[str]
) -> str:
    """The rule as it reads (and is embedded): the merged values and where they were needed."""
    explains = scope.explains or []
    seen = f" (needed on {', '.join(objects)})" if objects else ""
    if "object_name" in explains:
        return f"{skill} the {scope.object_name} with {describe_params(params)}{seen}"
    if "camera" in explains:
        return f"{skill} any object seen by the camera with {describe_params(params)}{seen}"
    noun = noun_of_shape(scope.shape) if scope.shape else "object"
    if scope.color is None:
        what = f"{scope.size_class or ''} {noun}s of any colour".strip()
    else:
        what = f"the {scope.size_class or ''} {scope.color} {noun}".replace("  ", " ")
    return f"{skill} {what} with {describe_params(params)}{seen}"


def merge_params(
    skill: str,
    old: Mapping[str, float],
    new: Mapping[str, float],
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, float]:
    """Older values updated by newer ones, inside the declared bounds and the world's limits.

    A newer value *replaces* the older one: it was computed from what the robot did with the
    older one applied (or confirmed without it), so adding or multiplying again would stack
    the same correction twice.
    """
    merged = stored_params(skill, {**old, **new})[0]
    for name, (lo, hi) in (limits or {}).items():
        if name in merged:
            merged[name] = min(max(merged[name], lo), hi)
    return merged


def _default(skill: str, name: str) -> float | None:
    try:
        return skill_spec(skill).param(name).default
    except Exception:  # noqa: BLE001 - a parameter no longer declared has no default
        return None


def direction(skill: str, name: str, applied: float, final: float) -> str:
    """How a correction moved a value memory had adjusted: "same", "opposite" or "none"."""
    default = _default(skill, name)
    if default is None or abs(final - applied) < 1e-9 or abs(applied - default) < 1e-9:
        return "none"
    return "same" if (applied - default) * (final - applied) > 0 else "opposite"


def _latest(kb: KnowledgeBase, entry_id: str) -> KnowledgeEntry | None:
    """The active successor of an entry (it may have been superseded since it was applied)."""
    try:
        chain = kb.lineage(entry_id)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - another backend without lineage, or a deleted entry
        return None
    latest = chain[-1]
    return latest if latest.active else None


def with_evidence(entry: KnowledgeEntry, evidence: Evidence) -> KnowledgeEntry:
    """A new version of `entry` (a fresh id) with one more piece of evidence, retired if due."""
    updated = entry.model_copy(
        update={
            "id": str(uuid.uuid4()),
            "evidence": [*entry.evidence, evidence],
            "supersedes": [],
            "superseded_by": None,
            "active": True,
        },
        deep=True,
    )
    reason = retirement_reason(updated)
    if reason is not None and updated.retired is None:
        updated = updated.model_copy(update={"retired": reason})
    return updated


def assess(
    kb: KnowledgeBase,
    applied: Sequence[Mapping[str, Any]],
    final_params: Mapping[tuple[str, str], Mapping[str, float]],
    *,
    episode: str,
    sizes: Mapping[str, str],
    task_succeeded: bool,
) -> list[tuple[str, str, KnowledgeEntry]]:
    """Records what became of each skill entry applied in an episode.

    Args:
        kb: the knowledge base the entries live in.
        applied: the episode's "knowledge.used" records (entry_id, skill, obj, match, params).
        final_params: (skill, obj) -> the values the episode's corrections left (if any).
        episode: the episode id, for the evidence.
        sizes: object -> perceived size class.
        task_succeeded: whether the task met its goal.

    Returns:
        (old id, outcome, new version) for each entry whose evidence was written. An entry the
        person corrected further the same way gets no evidence here: distillation records it
        as needed when it merges the new value. Nor does one applied in a failed task whose
        object also needed a correction of something else (that may be why it failed).
    """
    outcomes: dict[tuple[str, str], tuple[str, Mapping[str, Any], dict[str, float]]] = {}
    rank = {"helped": 0, "needed": 1, "failed": 2, "contradicted": 3}
    for use in applied:
        if use.get("entry_kind", "skill_params") != "skill_params" or not use.get("entry_id"):
            continue
        skill, obj = str(use.get("skill")), str(use.get("obj"))
        params = {k: float(v) for k, v in (use.get("params") or {}).items()}
        final = final_params.get((skill, obj), {})
        moves = [direction(skill, n, v, final[n]) for n, v in params.items() if n in final]
        # Corrections of anything else on this object (another parameter, another skill) are
        # another cause a failure can have: it says nothing for or against this entry.
        other_causes = any(
            o == obj and (s != skill or set(p) - set(params)) for (s, o), p in final_params.items()
        )
        if "opposite" in moves:
            outcome = "contradicted"
        elif "same" in moves:
            # "Even slower": the entry pointed the right way and fell short. The person's
            # further step is merged into it by distillation (as needed), even when the task
            # then failed for what the shortfall had already caused (a dropped object on its
            # side): counting that as a failure would retire the knowledge that was nearly right.
            outcome = "needed"
        elif not task_succeeded and other_causes:
            continue
        elif not task_succeeded:
            outcome = "failed"
        else:
            outcome = "helped"
        key = (str(use["entry_id"]), obj)
        if key not in outcomes or rank[outcome] > rank[outcomes[key][0]]:
            outcomes[key] = (outcome, use, params)
    written: list[tuple[str, str, KnowledgeEntry]] = []
    for (entry_id, obj), (outcome, use, params) in outcomes.items():
        if outcome == "needed":
            continue
        entry = _latest(kb, entry_id)
        if entry is None or entry.retired is not None:
            continue
        evidence = Evidence(
            episode=episode,
            obj=obj,
            size_class=sizes.get(obj),
            outcome=outcome,  # type: ignore[arg-type]
            match=use.get("match") or "recall",
            params=params,
            note=f"task {'succeeded' if task_succeeded else 'failed'}",
        )
        new = with_evidence(entry, evidence)
        kb.supersede(entry.id, new)
        written.append((entry.id, outcome, new))
    return written


def refinements(
    applied: Sequence[Mapping[str, Any]],
    final_params: Mapping[tuple[str, str], Mapping[str, float]],
) -> set[tuple[str, str]]:
    """(skill, obj) pairs where the person took applied knowledge further the same way.

    These are kept even from a failed task: the correction says the remembered value was right
    in direction and short in size, whatever else went wrong afterwards.
    """
    out: set[tuple[str, str]] = set()
    for use in applied:
        if use.get("entry_kind", "skill_params") != "skill_params":
            continue
        skill, obj = str(use.get("skill")), str(use.get("obj"))
        final = final_params.get((skill, obj), {})
        moves = {
            direction(skill, n, float(v), final[n])
            for n, v in (use.get("params") or {}).items()
            if n in final
        }
        if "same" in moves and "opposite" not in moves:
            out.add((skill, obj))
    return out


def contradicted_transfer(
    applied: Sequence[Mapping[str, Any]],
    final_params: Mapping[tuple[str, str], Mapping[str, float]],
) -> set[tuple[str, str]]:
    """(skill, obj) pairs where knowledge reached the object by transfer and was contradicted.

    Such an object is a counterexample to the explaining attribute: what it needed is kept for
    that object alone (its whole perceived identity), never merged into the class entry.
    """
    out: set[tuple[str, str]] = set()
    for use in applied:
        if use.get("match") != "transfer":
            continue
        skill, obj = str(use.get("skill")), str(use.get("obj"))
        final = final_params.get((skill, obj), {})
        params = use.get("params") or {}
        if any(
            direction(skill, n, float(v), final[n]) == "opposite"
            for n, v in params.items()
            if n in final
        ):
            out.add((skill, obj))
    return out


def exact_scope(obj: str, size_class: str | None) -> list[str]:
    """The explaining attributes of knowledge kept for one object only."""
    return ["object_name"] if is_furniture(obj) else list(_EXACT if size_class else _EXACT[:2])


def bounded(
    skill: str, params: Mapping[str, float], limits: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    """`params` inside the declared bounds and the world's limits."""
    return merge_params(skill, {}, bound_params(skill, params)[0], limits)
