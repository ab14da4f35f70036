"""Confidence of skill entries: how far each is trusted, where it transfers, when it retires.

Confidence is a Beta-style estimate over an entry's evidence (`schema.Evidence`):
`(support + 1) / (support + against + 2)`, so an entry with no evidence sits at 0.5.

* support: each *different* object on which the correction was needed counts 1 (the same
  correction needed on several objects that share the explaining attribute is what makes the
  attribute, not the object, the likely cause); the same object again counts only
  `REPEAT_WEIGHT`, since it says nothing new about the attribute; an application that helped
  (the task succeeded without correcting its parameters) counts `HELPED_WEIGHT`.
* against: every application that failed (the task failed) or was contradicted (the person
  corrected its parameters the opposite way) counts 1.

Transfer to an object outside the evidence needs more confidence the broader the scope: an
entry explained by a perceived attribute pair (shape and size) transfers at 0.6 (one object's
evidence is enough), one explained by a single attribute at 0.65, and one explained by the
camera (every object) at 0.7 (a second object, or a recall that helped, first). Recall (an
object in the evidence) needs only `RECALL_THRESHOLD`.

An entry is retired (kept, with the reason, never retrieved again) once at least
`RETIRE_AFTER` applications in a row went wrong (since it was last needed or helped: a value
the person refined starts afresh) and its confidence fell below `RETIRE_BELOW`. The more
objects back an entry, the more failures it takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corrigible.memory.schema import Evidence, KnowledgeEntry, ObjectScope

REPEAT_WEIGHT = 0.25  # the same object needing the correction again
HELPED_WEIGHT = 0.5  # an application that helped
RECALL_THRESHOLD = 0.35  # below this even the objects it was learned on do not get it
RETIRE_AFTER = 2  # applications that went wrong before an entry can be retired
RETIRE_BELOW = 0.55  # ... and the confidence it must have fallen below
_TRANSFER_BY_BREADTH = {2: 0.6, 1: 0.65, 0: 0.7}  # explaining perceived attributes -> threshold


def _object_key(item: Evidence) -> tuple[str | None, str | None]:
    return (item.obj, item.size_class)


def support_and_against(evidence: Sequence[Evidence]) -> tuple[float, float]:
    """(support, against) as the module docstring weighs them."""
    seen: set[tuple[str | None, str | None]] = set()
    support = against = 0.0
    for item in evidence:
        if item.outcome == "needed":
            key = _object_key(item)
            support += REPEAT_WEIGHT if key in seen else 1.0
            seen.add(key)
        elif item.outcome == "helped":
            support += HELPED_WEIGHT
        else:
            against += 1.0
    return support, against


def confidence(evidence: Sequence[Evidence]) -> float:
    """The entry's confidence in [0, 1] (0.5 without evidence)."""
    support, against = support_and_against(evidence)
    return (support + 1.0) / (support + against + 2.0)


def objects_of(entry: KnowledgeEntry) -> set[str]:
    """The objects (perceived names) the entry was learned on or recalled for."""
    return {e.obj for e in entry.evidence if e.obj and e.outcome == "needed"}


def transfer_threshold(scope: ObjectScope) -> float:
    """The confidence an entry needs to reach an object outside its evidence.

    Broader scopes (fewer explaining perceived attributes) need more; an entry with no
    explaining attribute (exact-object recall) or scoped to one furniture instance never
    transfers (infinite threshold).
    """
    explains = scope.explains
    if not explains or "object_name" in explains:
        return float("inf")
    perceived = [name for name in explains if name in ("color", "shape", "size_class")]
    return _TRANSFER_BY_BREADTH[min(len(perceived), 2)]


def retirement_reason(entry: KnowledgeEntry) -> str | None:
    """Why the entry should be retired now, or None while it is still worth applying."""
    wrong: list[Evidence] = []
    for item in reversed(entry.evidence):
        if item.outcome not in ("failed", "contradicted"):
            break
        wrong.insert(0, item)
    conf = confidence(entry.evidence)
    if len(wrong) < RETIRE_AFTER or conf >= RETIRE_BELOW:
        return None
    where = ", ".join(f"{e.outcome} on {e.obj or '?'} in {e.episode}" for e in wrong[-3:])
    return (
        f"applied {len(wrong)} times in a row without helping ({where}); confidence {conf:.2f} < "
        f"{RETIRE_BELOW:.2f}"
    )
