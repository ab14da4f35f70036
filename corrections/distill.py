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
from corrigible.corrections.retrieval import perceived_attributes
from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance
from corrigible.memory.schema import PreferenceMapping

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


def _write(kb: KnowledgeBase, entry: KnowledgeEntry) -> Distilled:
    for old in kb.list(kind=entry.kind):
        same = _same_scope(old.scope, entry.scope) and old.skill == entry.skill
        if entry.kind == "preference":
            same = same and old.plan_form is not None and entry.plan_form is not None
            same = same and old.plan_form.pattern == entry.plan_form.pattern  # type: ignore[union-attr]
        if same:
            if entry.kind == "skill_params":
                entry = entry.model_copy(update={"params": {**old.params, **entry.params}})
            new_id = kb.supersede(old.id, entry)
            return Distilled(new_id, entry.kind, entry.text, old.id)
    return Distilled(kb.add(entry), entry.kind, entry.text, None)


def distill(
    records: list[AppliedCorrection],
    kb: KnowledgeBase,
    *,
    episode: str,
    sizes: dict[str, str],
    visuals: dict[str, np.ndarray | None],
    task_succeeded: bool,
) -> list[Distilled]:
    """Writes the knowledge in one episode's corrections.

    Args:
        records: the applied corrections, in order.
        kb: where entries go.
        episode: provenance episode id.
        sizes: object -> size class (observable from the perceived bounding box).
        visuals: object -> crop descriptor taken before the object moved.
        task_succeeded: skill parameters are kept only when the corrected task succeeded.

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
        target = rec.preference.target if rec.preference else rec.target_after
        if isinstance(target, str):
            attrs = perceived_attributes(rec.obj)
            color = rec.preference.attributes.get("color") if rec.preference else attrs["color"]
            if color is None:
                continue
            written.append(
                _write(
                    kb,
                    KnowledgeEntry(
                        kind="preference",
                        text=f"put {color} things in the {target}",
                        plan_form=PreferenceMapping(pattern=f"color={color}", target=target),
                        scope=ObjectScope(color=color),
                        provenance=[
                            Provenance(episode=episode, correction_texts=[rec.correction.text])
                        ],
                    ),
                )
            )
    if not task_succeeded:
        return written
    for (skill, obj), rec in last.items():
        attrs = perceived_attributes(obj)
        noun = {"cube": "block"}.get(attrs.get("shape", ""), attrs.get("shape", "object"))
        visual = visuals.get(obj)
        entry = KnowledgeEntry(
            kind="skill_params",
            skill=skill,
            params=rec.params_after,
            text=f"{skill} the {sizes.get(obj, '')} {attrs.get('color', '')} {noun} with "
            f"{_describe(rec.params_after)}".replace("  ", " "),
            scope=ObjectScope(
                color=attrs.get("color"), shape=attrs.get("shape"), size_class=sizes.get(obj)
            ),
            provenance=[Provenance(episode=episode, correction_texts=texts[(skill, obj)])],
            visual_embedding=None if visual is None else [float(v) for v in visual],
        )
        written.append(_write(kb, entry))
    return written
