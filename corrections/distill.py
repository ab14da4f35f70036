"""Turns an episode's applied corrections into knowledge entries (DROC's knowledge extractor).

* Skill-level: the parameters a correction left for one (skill, object) become
  `skill_params` entries scoped by what explains them (`skill_knowledge.explain`: the camera
  for an offset, the drawer instance for a drawer, shape and size class for a slip or a grip),
  with the appearance of the object's camera crop, so retrieval can reach unseen objects that
  share the explaining attribute and tell look-alikes that do not. Each entry keeps evidence
  (where it was needed, helped, failed or was contradicted) and its confidence follows it
  (`memory.confidence`); what knowledge applied in the episode did is recorded first
  (`skill_knowledge.assess`), which retires entries that kept failing.
* Plan-level: a stated preference ("I like the red things in the blue bowl") or a target
  substitution ("no, in the blue bowl please") becomes a `preference` entry mapping the
  object's colour to the target. Generalising a one-off substitution by colour is the DROC
  plan-level constraint; a later contradicting correction supersedes it.

An entry with the same kind, skill and scope as an active one supersedes it (`kb.supersede`);
skill parameters are merged so a later correction refines rather than forgets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrigible.corrections import skill_knowledge as sk
from corrigible.corrections.onthefly import AppliedCorrection
from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance
from corrigible.memory.schema import Evidence
from corrigible.policies.skills.specs import bound_params
from corrigible.sim_envs.vocabulary import attributes_of_name, noun_of_shape


@dataclass(frozen=True)
class Distilled:
    """One entry written (or superseding another)."""

    entry_id: str
    kind: str
    text: str
    superseded: str | None


def _same_scope(a: ObjectScope, b: ObjectScope) -> bool:
    return a.model_dump() == b.model_dump()


def _pattern(entry: KnowledgeEntry) -> str | None:
    return getattr(entry.plan_form, "pattern", None)


def _write_skill(
    kb: KnowledgeBase,
    entry: KnowledgeEntry,
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> Distilled:
    """Adds a skill entry, or merges it into the active one with the same explained scope.

    The merged entry's values are the newer values over the older ones (never stacked), inside
    the declared bounds and the world's `limits`; its evidence is both entries'; its text is
    rebuilt from the merged values. A schema-2 entry about the very object (no explaining
    attribute) is widened into the new scope the same way.
    """
    assert entry.skill is not None
    olds = [o for o in kb.list(kind="skill_params") if o.retired is None and o.skill == entry.skill]
    key = sk.scope_key(entry)
    old = next((o for o in olds if sk.scope_key(o) == key), None)
    if old is None and entry.scope.explains is not None and entry.evidence:
        last = entry.evidence[-1]
        attrs = {**attributes_of_name(last.obj or ""), "size_class": last.size_class or ""}
        old = next(
            (
                o
                for o in olds
                if o.scope.explains is None
                and not o.scope.is_empty
                and o.scope.matches(object_name=last.obj, attributes=attrs)
            ),
            None,
        )
    if old is None:
        return Distilled(kb.add(entry), entry.kind, entry.text, None)
    params = sk.merge_params(entry.skill, old.params, entry.params, limits)
    evidence = [*old.evidence, *entry.evidence]
    scope = entry.scope if entry.scope.explains is not None else old.scope
    objects = list(dict.fromkeys(e.obj for e in evidence if e.obj and e.outcome == "needed"))
    text = (
        sk.entry_text(entry.skill, scope, params, objects)
        if scope.explains is not None
        else entry.text
    )
    merged = entry.model_copy(
        update={
            "params": params,
            "evidence": evidence,
            "scope": scope,
            "text": text,
            "visual_embedding": old.visual_embedding or entry.visual_embedding,
        }
    )
    new_id = kb.supersede(old.id, merged)
    return Distilled(new_id, merged.kind, merged.text, old.id)


def _write(kb: KnowledgeBase, entry: KnowledgeEntry) -> Distilled:
    if entry.kind == "skill_params":
        return _write_skill(kb, entry)
    for old in kb.list(kind=entry.kind):
        same = _same_scope(old.scope, entry.scope) and old.skill == entry.skill
        if entry.kind == "preference":
            same = same and old.plan_form is not None and entry.plan_form is not None
            same = same and _pattern(old) == _pattern(entry)
        if same:
            new_id = kb.supersede(old.id, entry)
            return Distilled(new_id, entry.kind, entry.text, old.id)
    return Distilled(kb.add(entry), entry.kind, entry.text, None)


@dataclass(frozen=True, kw_only=True)
class EpisodeFacts:
    """What distillation may use about one episode besides its corrections (both distillers)."""

    episode: str  # provenance episode id
    sizes: dict[str, str]  # object -> size class (observable from the perceived bounding box)
    visuals: dict[str, np.ndarray | None]  # object -> crop descriptor taken before it moved
    task_succeeded: bool  # new skill parameters only from a success; refinements either way
    # The episode's "knowledge.used" records: what memory applied (entry_id, skill, obj, match
    # "recall"/"transfer", params), so its evidence can be written.
    applied: tuple[Mapping[str, Any], ...] = ()
    # (skill, obj) -> parameter -> (low, high) the world allows (`SkillLibrary.world_bounds`).
    limits: Mapping[tuple[str, str], Mapping[str, tuple[float, float]]] = field(
        default_factory=dict
    )


def distill(
    records: list[AppliedCorrection], kb: KnowledgeBase, facts: EpisodeFacts
) -> list[Distilled]:
    """Writes the knowledge in one episode's corrections.

    Each applied correction's deciding effect says what it teaches (`Effect.to_entry`): the
    stated rule if there was one, else the target it substituted. Skill parameters are kept
    per (skill, object), the last correction's values, and only when the task succeeded.

    Args:
        records: the applied corrections, in order.
        kb: where entries go.
        facts: the episode's id, object sizes and appearances, and whether it succeeded.

    Returns:
        What was written.
    """
    written: list[Distilled] = []
    final: dict[tuple[str, str], dict[str, float]] = {}  # (skill, obj) -> last params after
    texts: dict[tuple[str, str], list[str]] = {}
    for rec in records:
        if not rec.applied or rec.obj is None:
            continue
        changed = rec.params_by_skill or ({rec.skill: rec.params_after} if rec.params_after else {})
        for skill, after in changed.items():
            if after:
                final[(skill, rec.obj)] = after
                texts.setdefault((skill, rec.obj), []).append(rec.correction.text)
        effect = rec.target_effect()
        provenance = Provenance(episode=facts.episode, correction_texts=[rec.correction.text])
        entry = None if effect is None else effect.to_entry(rec.obj, provenance)
        if entry is not None:
            written.append(_write(kb, entry))
    for old_id, _outcome, new in sk.assess(
        kb,
        facts.applied,
        final,
        episode=facts.episode,
        sizes=facts.sizes,
        task_succeeded=facts.task_succeeded,
    ):
        if new.retired is not None:
            written.append(Distilled(new.id, new.kind, f"retired: {new.text}", old_id))
    if not facts.task_succeeded:
        # From a failed task only refinements of applied knowledge are learned (see
        # `skill_knowledge.refinements`); a first correction that did not lead to success is not.
        refined = sk.refinements(facts.applied, final)
        final = {key: after for key, after in final.items() if key in refined}
        if not final:
            return written
    exceptions = sk.contradicted_transfer(facts.applied, final)
    matches = {(str(u.get("skill")), str(u.get("obj"))): u.get("match") for u in facts.applied}
    for (skill, obj), after in final.items():
        size = facts.sizes.get(obj)
        limits = facts.limits.get((skill, obj), {})
        params = sk.bounded(skill, after, limits)
        groups = (
            [(sk.exact_scope(obj, size), sorted(params))]
            if (skill, obj) in exceptions
            else sk.explain(obj, params)
        )
        for explains, names in groups:
            entry = skill_params_entry(
                skill,
                obj,
                {n: params[n] for n in names},
                size_class=size,
                visual=facts.visuals.get(obj),
                provenance=Provenance(episode=facts.episode, correction_texts=texts[(skill, obj)]),
                explains=explains,
                match=matches.get((skill, obj)) or "learned",
            )
            written.append(_write_skill(kb, entry, limits))
    return written


def skill_params_entry(
    skill: str,
    obj: str,
    params: dict[str, float],
    *,
    size_class: str | None,
    visual: np.ndarray | None,
    provenance: Provenance,
    explains: list[str] | None = None,
    match: str = "learned",
) -> KnowledgeEntry:
    """The `skill_params` entry for corrected parameters of one object (DROC skill-level).

    With `explains` (`skill_knowledge.explain`), scoped by the attributes that explain the
    correction and carrying one piece of "needed" evidence on the object; without, scoped by
    the object's perceived colour and shape and its size class (recall of that object). Either
    way it keeps the appearance of the object's camera crop, so retrieval can tell look-alikes.
    """
    params = bound_params(skill, params)[0]
    if explains is not None:
        scope = sk.scope_for(obj, explains, size_class)
        evidence = Evidence(
            episode=provenance.episode,
            obj=obj,
            size_class=size_class,
            outcome="needed",
            match=match if match in ("recall", "transfer") else "learned",  # type: ignore[arg-type]
            params=params,
            note="; ".join(provenance.correction_texts)[:200],
        )
        return KnowledgeEntry(
            kind="skill_params",
            skill=skill,
            params=params,
            text=sk.entry_text(skill, scope, params, [obj]),
            scope=scope,
            provenance=[provenance],
            visual_embedding=None if visual is None else [float(v) for v in visual],
            evidence=[evidence],
        )
    attrs = attributes_of_name(obj)
    noun = noun_of_shape(attrs.get("shape", "")) if attrs.get("shape") else "object"
    return KnowledgeEntry(
        kind="skill_params",
        skill=skill,
        params=params,
        text=f"{skill} the {size_class or ''} {attrs.get('color', '')} {noun} with "
        f"{sk.describe_params(params)}".replace("  ", " "),
        scope=ObjectScope(
            color=attrs.get("color"), shape=attrs.get("shape"), size_class=size_class
        ),
        provenance=[provenance],
        visual_embedding=None if visual is None else [float(v) for v in visual],
    )
