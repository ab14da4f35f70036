"""Turns an episode's applied corrections into knowledge entries (DROC's knowledge extractor).

* Skill-level: the parameters a correction left for one (skill, object) become one
  `skill_params` entry scoped to the object's attributes (colour, shape, size class) with the
  appearance of its camera crop, so retrieval can tell it from look-alikes.
* Plan-level: a stated preference ("I like the red things in the blue bowl") or a target
  substitution ("no, in the blue bowl please") becomes a `preference` entry mapping the
  object's colour to the target. Generalising a one-off substitution by colour is the DROC
  plan-level constraint; a later contradicting correction supersedes it.

An entry with the same kind, skill and scope as an active one supersedes it (`kb.supersede`);
skill parameters are merged so a later correction refines rather than forgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corrigible.corrections.onthefly import AppliedCorrection
from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance
from corrigible.policies.skills.specs import bound_params, stored_params
from corrigible.sim_envs.vocabulary import attributes_of_name, noun_of_shape

_UNITS = {"speed": "m/s", "descend_speed": "m/s"}


@dataclass(frozen=True)
class Distilled:
    """One entry written (or superseding another)."""

    entry_id: str
    kind: str
    text: str
    superseded: str | None


def _describe(params: dict[str, float]) -> str:
    parts = [
        f"{name.replace('_', ' ')} {value:+.3f} {_UNITS.get(name, 'm')}"
        if "offset" in name or name.endswith("height")
        else f"{name.replace('_', ' ')} {value:.3f} {_UNITS.get(name, 'm')}"
        for name, value in sorted(params.items())
    ]
    return ", ".join(parts)


def _same_scope(a: ObjectScope, b: ObjectScope) -> bool:
    return a.model_dump() == b.model_dump()


def _pattern(entry: KnowledgeEntry) -> str | None:
    return getattr(entry.plan_form, "pattern", None)


def _write(kb: KnowledgeBase, entry: KnowledgeEntry) -> Distilled:
    for old in kb.list(kind=entry.kind):
        same = _same_scope(old.scope, entry.scope) and old.skill == entry.skill
        if entry.kind == "preference":
            same = same and old.plan_form is not None and entry.plan_form is not None
            same = same and _pattern(old) == _pattern(entry)
        if same:
            if entry.kind == "skill_params":
                # An older entry may hold values from before a bound existed: the merge keeps
                # what the skill still declares, inside its bounds.
                merged = {**old.params, **entry.params}
                if entry.skill is not None:
                    merged = stored_params(entry.skill, merged)[0]
                entry = entry.model_copy(update={"params": merged})
            new_id = kb.supersede(old.id, entry)
            return Distilled(new_id, entry.kind, entry.text, old.id)
    return Distilled(kb.add(entry), entry.kind, entry.text, None)


@dataclass(frozen=True, kw_only=True)
class EpisodeFacts:
    """What distillation may use about one episode besides its corrections (both distillers)."""

    episode: str  # provenance episode id
    sizes: dict[str, str]  # object -> size class (observable from the perceived bounding box)
    visuals: dict[str, np.ndarray | None]  # object -> crop descriptor taken before it moved
    task_succeeded: bool  # skill parameters are kept only when the corrected task succeeded


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
    last: dict[tuple[str, str], AppliedCorrection] = {}
    texts: dict[tuple[str, str], list[str]] = {}
    for rec in records:
        if not rec.applied or rec.obj is None:
            continue
        if rec.params_after:
            key = (rec.skill, rec.obj)
            last[key] = rec
            texts.setdefault(key, []).append(rec.correction.text)
        effect = rec.target_effect()
        provenance = Provenance(episode=facts.episode, correction_texts=[rec.correction.text])
        entry = None if effect is None else effect.to_entry(rec.obj, provenance)
        if entry is not None:
            written.append(_write(kb, entry))
    if not facts.task_succeeded:
        return written
    for (skill, obj), rec in last.items():
        entry = skill_params_entry(
            skill,
            obj,
            rec.params_after,
            size_class=facts.sizes.get(obj),
            visual=facts.visuals.get(obj),
            provenance=Provenance(episode=facts.episode, correction_texts=texts[(skill, obj)]),
        )
        written.append(_write(kb, entry))
    return written


def skill_params_entry(
    skill: str,
    obj: str,
    params: dict[str, float],
    *,
    size_class: str | None,
    visual: np.ndarray | None,
    provenance: Provenance,
) -> KnowledgeEntry:
    """The `skill_params` entry for corrected parameters of one object (DROC skill-level).

    Scoped by the object's perceived colour and shape and its size class, with the appearance
    of its camera crop, so retrieval can tell it from look-alikes.
    """
    attrs = attributes_of_name(obj)
    noun = noun_of_shape(attrs.get("shape", "")) if attrs.get("shape") else "object"
    params = bound_params(skill, params)[0]
    return KnowledgeEntry(
        kind="skill_params",
        skill=skill,
        params=params,
        text=f"{skill} the {size_class or ''} {attrs.get('color', '')} {noun} with "
        f"{_describe(params)}".replace("  ", " "),
        scope=ObjectScope(
            color=attrs.get("color"), shape=attrs.get("shape"), size_class=size_class
        ),
        provenance=[provenance],
        visual_embedding=None if visual is None else [float(v) for v in visual],
    )
