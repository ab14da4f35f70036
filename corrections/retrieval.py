"""Memory lookup before a skill runs on an object: distilled knowledge as parameter overrides.

`MemoryLookup` is the memory link of the robot API's around-skill chain
(`policies.middleware`): before each skill call acting on an object it asks the `Retriever`
for the skill's knowledge about the object.

* "text+visual": skill knowledge is matched by **attributes and appearance**, not by words:
  an entry applies when the object's perceived attributes (colour and shape from its name)
  do not contradict the entry's scope and the object's camera crop matches the stored crop on
  every appearance group the entry's *explaining* attributes name (shape and size for a slip;
  none for the camera; the instance for a drawer). An object in the entry's evidence gets it
  by **recall**; any other object by **transfer**, which needs the confidence the scope's
  breadth asks for (`memory.confidence.transfer_threshold`). A look-alike that differs in an
  explaining attribute (same name and colour, another size) is rejected, and the trace says
  on which group.
* "text": MiniLM text retrieval ("<skill> the <object name>"), with the same confidence gate
  and the same check that the name's attributes do not contradict the scope; text cannot see
  size, which is what the appearance adds.

Accepted `skill_params` entries become the call's recalled parameters (that call only; several
entries combine when they set different parameters, recall first); accepted `preference`
entries whose rule covers the object's perceived attributes become its place target. Every use
is traced ("knowledge.used": the entry, recall or transfer, the matching attributes, the
appearance scores, the confidence and its threshold, the values applied) and every entry
rejected on attributes too ("knowledge.rejected"). Whether an applied entry was right is judged
separately with privileged attributes (`is_false_application`), never by the retriever.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from corrigible.errors import ConfigError
from corrigible.memory import KnowledgeBase, KnowledgeEntry
from corrigible.memory.confidence import RECALL_THRESHOLD, objects_of, transfer_threshold
from corrigible.memory.effects import PreferenceMapping
from corrigible.memory.knowledge_base import RetrievalHit
from corrigible.memory.visual_embedder import compare, embed_crop
from corrigible.policies.middleware import Proceed, SkillCall
from corrigible.policies.perception import backproject
from corrigible.policies.robot_api import RobotAPI
from corrigible.policies.skills.specs import stored_params
from corrigible.sim_envs.vocabulary import OBJECT_KINDS, attributes_of_name

MemoryMode = Literal["none", "text", "text+visual"]
MEMORY_MODES: tuple[str, ...] = ("none", "text", "text+visual")
_TOP_FACE_M = 0.005  # m: depth band around an object's top that counts as its top face


def true_attributes(api: RobotAPI, name: str) -> dict[str, str]:
    """Privileged attributes from the scene spec (for judging only)."""
    spec = api.env.scene.object(name)
    return {"color": spec.color, "shape": spec.shape, "size_class": spec.size_class}


def is_false_application(entry: KnowledgeEntry, api: RobotAPI, obj: str) -> bool:
    """True when `entry` was applied to an object outside its scope (privileged judgement)."""
    return not entry.scope.matches(attributes=true_attributes(api, obj))


def crop_embedding(api: RobotAPI, obj: str) -> np.ndarray | None:
    """Appearance descriptor of the object's top face in the camera, or None if unseen.

    The mask is the object's top face found in depth (pixels within a few millimetres of the
    object's top, inside its footprint), not a colour segmentation of the whole crop: side faces
    and shadows change with where the object stands in the image, the top face does not, so the
    same object looks the same at every layout position (shape and size agree to >= 0.9).
    """
    dets = api.locator.detections()
    det = dets.get(obj)
    camera = getattr(api.locator, "camera", None)
    if det is None or camera is None:
        return None
    u0, v0, u1, v1 = det.pixel_bbox
    pad = 6
    rgb, depth = api.env.backend.render(camera)
    h, w = rgb.shape[:2]
    rows = slice(max(0, v0 - pad), min(h, v1 + pad))
    cols = slice(max(0, u0 - pad), min(w, u1 + pad))
    xyz = backproject(depth, camera.intrinsics(), camera.pose())[rows, cols]
    x0, y0, _, x1, y1, top = (float(v) for v in det.bbox)
    margin = 0.01
    mask = (
        (xyz[..., 2] > top - _TOP_FACE_M)
        & (xyz[..., 2] < top + _TOP_FACE_M)
        & (xyz[..., 0] > x0 - margin)
        & (xyz[..., 0] < x1 + margin)
        & (xyz[..., 1] > y0 - margin)
        & (xyz[..., 1] < y1 + margin)
    )
    try:
        return embed_crop(
            rgb[rows, cols], mask, depth=depth[rows, cols], focal_px=camera.intrinsics()[0, 0]
        )
    except ConfigError:
        return None


def _use(skill: str, obj: str, mode: str, hit: RetrievalHit) -> dict[str, Any]:
    """The trace record of one applied hit ("kind" is the trace event's own key)."""
    trace = hit.to_trace()
    trace["entry_kind"] = trace.pop("kind")
    return {"skill": skill, "obj": obj, "mode": mode, **trace}


# Appearance group (visual_embedder.compare) of each perceived explaining attribute.
_GROUP_OF = {"color": "colour", "shape": "shape", "size_class": "size"}
_ALL_GROUPS = ("colour", "shape", "size")
DEFAULT_VISUAL_THRESHOLD = 0.75  # when the knowledge base has no config of its own


@dataclass(kw_only=True)
class Retrieved:
    """What memory contributes to one skill call."""

    overrides: dict[str, dict[str, float]] = field(default_factory=dict)  # skill -> params
    target: str | None = None  # substituted place target
    used: list[dict[str, Any]] = field(default_factory=list)  # trace records
    entries: list[KnowledgeEntry] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # entries that did not apply


@dataclass(kw_only=True)
class Match:
    """One skill entry judged for one object: whether it applies, how, and why."""

    entry: KnowledgeEntry
    accepted: bool
    match: Literal["recall", "transfer"]
    reason: str
    score: float = 0.0  # ranking: appearance agreement x confidence
    text_score: float | None = None
    groups: dict[str, float | None] = field(default_factory=dict)  # appearance cosines used
    attributes: dict[str, str] = field(default_factory=dict)  # the attributes that matched
    threshold: float = 0.0  # the confidence it needed

    def trace(self, skill: str, obj: str, mode: str, params: dict[str, float]) -> dict[str, Any]:
        """The "knowledge.used" / "knowledge.rejected" record."""
        visual = [v for v in self.groups.values() if v is not None]
        hit = RetrievalHit(
            entry=self.entry,
            score=self.score,
            text_score=self.text_score,
            visual_score=min(visual) if visual else None,
            reason=self.reason,
            accepted=self.accepted,
            visual_detail=dict(self.groups) or None,
        )
        return {
            **_use(skill, obj, mode, hit),
            "match": self.match,
            "matched_attributes": self.attributes,
            "appearance": {k: None if v is None else round(v, 4) for k, v in self.groups.items()},
            "confidence_needed": None if self.threshold == float("inf") else self.threshold,
            "explains": self.entry.scope.explains,
            "params": params,
        }


def _attribute_conflict(entry: KnowledgeEntry, obj: str, attrs: dict[str, str]) -> str | None:
    """Why the object's name contradicts the entry's scope, or None."""
    scope = entry.scope
    if scope.object_name and not fnmatch.fnmatch(obj.lower(), scope.object_name.lower()):
        return f"it is about the {scope.object_name}, not the {obj}"
    for key in ("color", "shape"):
        wanted = getattr(scope, key)
        if wanted and attrs.get(key) and wanted.lower() != attrs[key].lower():
            return f"{key} {attrs[key]} is not {wanted}"
    return None


def _gate(entry: KnowledgeEntry, obj: str) -> tuple[Literal["recall", "transfer"], float]:
    """Recall or transfer, and the confidence that needs.

    Recall: the object is in the entry's evidence, or the entry is about it alone.
    """
    explains = entry.scope.explains
    if obj in objects_of(entry) or not explains or "object_name" in explains:
        return "recall", RECALL_THRESHOLD
    return "transfer", transfer_threshold(entry.scope)


def judge_by_attributes(
    entry: KnowledgeEntry,
    obj: str,
    visual: np.ndarray | None,
    *,
    visual_threshold: float = DEFAULT_VISUAL_THRESHOLD,
) -> Match:
    """Whether a skill entry applies to `obj` by its attributes and appearance (text+visual)."""
    attrs = attributes_of_name(obj)
    how, needed = _gate(entry, obj)
    conf = entry.confidence
    conflict = _attribute_conflict(entry, obj, attrs)
    if conflict is not None:
        return Match(entry=entry, accepted=False, match=how, reason=f"rejected: {conflict}")
    explains = entry.scope.explains
    names = [_GROUP_OF[a] for a in explains if a in _GROUP_OF] if explains else list(_ALL_GROUPS)
    groups: dict[str, float | None] = {}
    if names:
        if visual is None or entry.visual_embedding is None:
            return Match(
                entry=entry,
                accepted=False,
                match=how,
                reason="rejected: no appearance to compare "
                f"({'the object is not seen' if visual is None else 'none stored'})",
            )
        detail = compare(visual, entry.visual_embedding)
        groups = {name: detail.get(name) for name in names}
        for name, value in groups.items():
            if value is None or value < visual_threshold:
                shown = "unknown" if value is None else f"{value:.2f}"
                return Match(
                    entry=entry,
                    accepted=False,
                    match=how,
                    groups=groups,
                    reason=f"rejected: {name} {shown} < {visual_threshold:.2f}: the {obj} "
                    f"differs in what explains the knowledge ({'+'.join(explains or names)})",
                )
    matched = {
        a: str(getattr(entry.scope, a) or attrs.get(a, "seen"))
        for a in (explains or ["color", "shape", "size_class"])
        if a != "camera"
    }
    if explains and "camera" in explains:
        matched["camera"] = "every object it sees"
    if conf < needed:
        return Match(
            entry=entry,
            accepted=False,
            match=how,
            groups=groups,
            attributes=matched,
            threshold=needed,
            reason=f"rejected: {how} needs confidence {needed:.2f}, the entry has {conf:.2f}",
        )
    agreement = min((v for v in groups.values() if v is not None), default=1.0)
    shown = ", ".join(f"{k} {v:.2f}" for k, v in groups.items() if v is not None)
    learned = ", ".join(sorted(objects_of(entry))) or "its scope"
    return Match(
        entry=entry,
        accepted=True,
        match=how,
        groups=groups,
        attributes=matched,
        threshold=needed,
        score=agreement * conf,
        reason=f"applies by {how}: "
        + " ".join(f"{k}={v}" for k, v in matched.items())
        + (f"; appearance {shown} >= {visual_threshold:.2f}" if shown else "")
        + f"; confidence {conf:.2f} >= {needed:.2f}; learned on {learned}",
    )


class Retriever:
    """Queries the knowledge base before skills.

    Args:
        kb: the knowledge base (None or mode "none": retrieval is off).
        mode: "none", "text" or "text+visual".
    """

    def __init__(self, kb: KnowledgeBase | None, mode: MemoryMode) -> None:
        if mode not in MEMORY_MODES:
            raise ConfigError(f"memory mode must be one of {MEMORY_MODES}, got {mode!r}")
        self.kb = kb
        self.mode = mode

    @property
    def is_on(self) -> bool:
        """Whether retrieval runs at all."""
        return self.kb is not None and self.mode != "none" and len(self.kb) > 0

    def lookup(self, skills: tuple[str, ...], obj: str, visual: np.ndarray | None) -> Retrieved:
        """Overrides for each skill in `skills` acting on `obj`, and any preferred target."""
        out = Retrieved()
        if not self.is_on:
            return out
        assert self.kb is not None
        mode = self.mode
        for skill in skills:
            if self.mode == "text+visual":
                matches = self._by_attributes(skill, obj, visual)
                if visual is None:  # unseen or furniture: schema-2 entries only have words
                    matches += [
                        m for m in self._by_text(skill, obj) if m.entry.scope.explains is None
                    ]
            else:
                matches = self._by_text(skill, obj)
            self._combine(out, skill, obj, mode, matches)
        if "place" in skills:
            attrs = attributes_of_name(obj)
            hits = self.kb.search(f"where to put the {obj}", mode="text", kind="preference")
            for hit in hits:
                form = hit.entry.plan_form
                if isinstance(form, PreferenceMapping):
                    if form.matches(obj, attrs):
                        out.target = form.target
                        out.entries.append(hit.entry)
                        out.used.append(_use("place", obj, "text", hit))
                        break
        return out

    def _by_attributes(self, skill: str, obj: str, visual: np.ndarray | None) -> list[Match]:
        """Every active skill entry for `skill`, judged by attributes and appearance."""
        assert self.kb is not None
        config = getattr(self.kb, "config", None)
        threshold = getattr(config, "visual_threshold", DEFAULT_VISUAL_THRESHOLD)
        return [
            judge_by_attributes(entry, obj, visual, visual_threshold=threshold)
            for entry in self.kb.list(kind="skill_params")
            if entry.skill == skill and entry.retired is None
        ]

    def _by_text(self, skill: str, obj: str) -> list[Match]:
        """Text-retrieved skill entries, gated by confidence and the name's attributes."""
        assert self.kb is not None
        attrs = attributes_of_name(obj)
        out: list[Match] = []
        for hit in self.kb.search(
            f"{skill} the {obj}", mode="text", skill=skill, kind="skill_params"
        ):
            how, needed = _gate(hit.entry, obj)
            conflict = _attribute_conflict(hit.entry, obj, attrs)
            conf = hit.entry.confidence
            ok = conflict is None and conf >= needed
            why = (
                f"rejected: {conflict}"
                if conflict is not None
                else (
                    f"{hit.reason}; {how}, confidence {conf:.2f} {'>=' if ok else '<'} {needed:.2f}"
                )
            )
            out.append(
                Match(
                    entry=hit.entry,
                    accepted=ok,
                    match=how,
                    reason=why if ok or conflict else why.replace("applies", "rejected", 1),
                    score=hit.score * conf,
                    text_score=hit.text_score,
                    attributes={k: v for k, v in attrs.items() if getattr(hit.entry.scope, k)},
                    threshold=needed,
                )
            )
        return out

    @staticmethod
    def _combine(out: Retrieved, skill: str, obj: str, mode: str, matches: list[Match]) -> None:
        """The accepted entries' values, recall before transfer, best first.

        An entry adds only the parameters no better entry set.
        """
        order = sorted(
            (m for m in matches if m.accepted),
            key=lambda m: (m.match == "recall", m.score),
            reverse=True,
        )
        for m in order:
            usable, notes = stored_params(skill, dict(m.entry.params))
            new = {k: v for k, v in usable.items() if k not in out.overrides.get(skill, {})}
            if not new:
                continue
            out.overrides.setdefault(skill, {}).update(new)
            out.entries.append(m.entry)
            out.used.append({**m.trace(skill, obj, mode, new), **notes})
        for m in matches:
            if not m.accepted:
                out.rejected.append(m.trace(skill, obj, mode, {}))


class MemoryLookup:
    """The memory link of the around-skill chain (outside the live-corrections link).

    Args:
        api: the robot API whose object skills it looks knowledge up for.
        retriever: the knowledge base and memory mode ("none" still records appearances, so
            what a run learns can be scoped by them).
    """

    def __init__(self, api: RobotAPI, retriever: Retriever) -> None:
        self.api = api
        self.retriever = retriever
        self.knowledge_used: list[dict[str, Any]] = []
        self.false_applications: list[dict[str, Any]] = []
        self.visuals: dict[str, np.ndarray | None] = {}  # obj -> crop descriptor, first sight

    def visual(self, obj: str) -> np.ndarray | None:
        """The object's appearance, taken the first time a skill touches it (before motion)."""
        if obj not in self.visuals:
            self.visuals[obj] = crop_embedding(self.api, obj)
        return self.visuals[obj]

    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:
        """Sets the call's recalled parameters and remembered target, then runs it."""
        obj = call.obj
        if obj is None:
            return proceed(call)
        kind = self.api.env.scene.object_kind(obj)
        furniture = kind in OBJECT_KINDS and OBJECT_KINDS.get(kind).furniture
        visual = None if furniture else self.visual(obj)
        memory = self.retriever.lookup(
            call.spec.uses, obj, visual if self.retriever.mode == "text+visual" else None
        )
        self._trace(memory.used, memory.entries, obj)
        for rejected in memory.rejected:
            self.api.env.trace.emit("knowledge.rejected", **rejected)
        call.recalled = memory.overrides
        if call.spec.places and memory.target is not None:
            if memory.target in self.api.get_obj_names():
                call.target = memory.target
        return proceed(call)

    def _trace(self, used: list[dict[str, Any]], entries: list, obj: str) -> None:
        for use, entry in zip(used, entries, strict=True):
            false = is_false_application(entry, self.api, obj)
            use = {**use, "false_application": false}
            self.knowledge_used.append(use)
            if false:
                self.false_applications.append(use)
            self.api.env.trace.emit("knowledge.used", **use)
