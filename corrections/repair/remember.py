"""A repair that worked becomes knowledge: skill parameters with provenance "repair".

Only a run whose expectation then held is distilled. Each repair that chose skill parameters
(a slower regrasp, a place offset) becomes a `skill_params` entry through the same writer as a
person's corrections (`corrections.distill`), so the next episode's memory lookup recalls it
before the skill runs and the same failure does not happen again. The entry's provenance text
reads "repair (<failure class>): <what was changed>" and its tags hold "repair" and
"failure:<class>". Re-plans carry no parameters and are kept as trace records only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from corrigible.corrections.distill import Distilled, _write_skill, skill_params_entry
from corrigible.corrections.repair.loop import RepairReport
from corrigible.memory import KnowledgeBase, Provenance


def remember_repairs(
    kb: KnowledgeBase,
    report: RepairReport,
    *,
    episode: str,
    sizes: dict[str, str],
    visuals: Mapping[str, np.ndarray | None] | None = None,
) -> list[Distilled]:
    """Writes the parameter repairs of a successful run into `kb`.

    Args:
        kb: the knowledge base.
        report: the repaired run; nothing is written unless its status is "ok".
        episode: the provenance episode id.
        sizes: object -> perceived size class (scopes the entry like a correction's).
        visuals: object -> camera-crop descriptor (`MemoryLookup.visuals`); retrieval compares
            appearances, so an entry without one is not recalled in "text+visual" mode.

    Returns:
        What was written (or merged into an existing entry).
    """
    if report.status != "ok":
        return []
    final: dict[tuple[str, str], dict[str, float]] = {}
    why: dict[tuple[str, str], list[str]] = {}
    for attempt in report.attempts:
        params: dict[str, Any] = attempt.get("params") or {}
        for obj, skills in params.items():
            for skill, values in skills.items():
                key = (obj, skill)
                final[key] = {**final.get(key, {}), **values}
                why.setdefault(key, []).append(
                    f"repair ({attempt['failure_class']}): {attempt['description']}"
                )
    written = []
    for (obj, skill), values in final.items():
        entry = skill_params_entry(
            skill,
            obj,
            values,
            size_class=sizes.get(obj),
            visual=(visuals or {}).get(obj),
            provenance=Provenance(episode=episode, correction_texts=why[(obj, skill)]),
        )
        classes = sorted({t.split("(")[1].split(")")[0] for t in why[(obj, skill)]})
        entry = entry.model_copy(update={"tags": ["repair", *(f"failure:{c}" for c in classes)]})
        written.append(_write_skill(kb, entry))
    return written


__all__ = ["remember_repairs"]
