"""Memory lookup before a skill runs on an object: distilled knowledge as parameter overrides.

`MemoryLookup` is the memory link of the robot API's around-skill chain
(`policies.middleware`): before each skill call acting on an object it asks the `Retriever`
with "<skill> the <object name>" plus, in "text+visual" mode, the appearance of the object's
camera crop. Accepted `skill_params` entries become the call's recalled parameters (that call
only); accepted `preference` entries whose rule covers the object's perceived attributes
become its place target. Every use is traced ("knowledge.used") with the hit's reason. Whether
an applied entry was right is judged separately with privileged attributes
(`is_false_application`), never by the retriever itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from corrigible.errors import ConfigError
from corrigible.memory import KnowledgeBase, KnowledgeEntry
from corrigible.memory.effects import PreferenceMapping
from corrigible.memory.knowledge_base import RetrievalHit
from corrigible.memory.visual_embedder import embed_crop
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


@dataclass(kw_only=True)
class Retrieved:
    """What memory contributes to one skill call."""

    overrides: dict[str, dict[str, float]] = field(default_factory=dict)  # skill -> params
    target: str | None = None  # substituted place target
    used: list[dict[str, Any]] = field(default_factory=list)  # trace records
    entries: list[KnowledgeEntry] = field(default_factory=list)


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
        mode = self.mode if (self.mode == "text" or visual is not None) else "text"
        for skill in skills:
            hits = self.kb.search(
                f"{skill} the {obj}", visual=visual, mode=mode, skill=skill, kind="skill_params"
            )
            for hit in hits[:1]:  # the best entry for this skill
                out.overrides[skill], notes = stored_params(skill, dict(hit.entry.params))
                out.entries.append(hit.entry)
                out.used.append({**_use(skill, obj, mode, hit), **notes})
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
