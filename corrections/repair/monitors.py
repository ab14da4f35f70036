"""Checkpoint monitors behind one interface: `perception` (default), `oracle`, `vlm:<model>`.

Each judges a checkpoint's expectation (`checkpoint(name, expect=...)`) on the evidence the
controller captured (`policies.controller.CheckpointEvidence`) and returns a
`CheckpointVerdict` with one entry per predicate atom.

- `perception` sees only the camera: it segments the RGB image and lifts it with the depth
  image (`policies.perception.detect_objects`), then evaluates the predicate on the perceived
  positions and the declared object sizes. It never opens the privileged snapshot. An object
  it can neither see nor infer (under a raised object, inside a same-coloured bowl, on a
  bowl's rim) is not on the table where expected: the atom fails. Atoms about the drawer
  (whose opening the camera does not measure) are "cannot tell" (holds None).
- `oracle` evaluates the predicate on the privileged snapshot: for evaluation only.
- `vlm:<model>` asks an OpenAI-compatible vision chat model (`/chat/completions`), showing the
  RGB image and a depth rendering as data URLs, for JSON `{"verdict": "holds"|"fails"|
  "unsure", "reason": "..."}`. A malformed answer, a hang past the timeout, an unreachable
  server or an error status raises `MonitorError` with the class ("malformed", "timeout",
  "unreachable", "http"); the controller then stops the run safely.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.policies.controller import CheckpointEvidence, CheckpointVerdict, MonitorError
from corrigible.policies.perception import Detection, PerceptionConfig, detect_objects
from corrigible.sim_envs.predicates import PREDICATES, Atom, WorldState, parse_predicate
from corrigible.sim_envs.vocabulary import OBJECT_KINDS, object_kind


class Monitor:
    """Base of the monitors: a name and `judge(evidence)`."""

    name: ClassVar[str] = "monitor"  # the `--monitor` spec's prefix

    def judge(self, evidence: CheckpointEvidence) -> CheckpointVerdict:  # pragma: no cover
        """The verdict on `evidence.expect`; raises `MonitorError` when it cannot judge."""
        raise NotImplementedError


def _combine(atoms: list[dict[str, Any]], monitor: str) -> CheckpointVerdict:
    """All atoms hold -> True; any fails -> False; otherwise None (cannot tell)."""
    values = [a["holds"] for a in atoms]
    holds = False if False in values else (True if all(v is True for v in values) else None)
    failing = [a for a in atoms if a["holds"] is False] or [a for a in atoms if a["holds"] is None]
    reason = "; ".join(f"{a['atom']}: {a['why']}" for a in (failing or atoms))[:500]
    return CheckpointVerdict(holds=holds, reason=reason, monitor=monitor, atoms=atoms)


def _is_furniture(scene: Any, name: str) -> bool:
    kind = scene.object_kind(name)
    return kind in OBJECT_KINDS and object_kind(kind).furniture


class PerceptionMonitor(Monitor):
    """Judges from the camera images alone (segmentation + depth), never privileged state."""

    name = "perception"

    def perceive(self, evidence: CheckpointEvidence) -> dict[str, Detection]:
        """The objects seen in the checkpoint's images, by name."""
        dets = detect_objects(evidence.rgb, evidence.depth, evidence.intrinsics, evidence.cam_pose)
        return {d.name: d for d in dets}

    def judge(self, evidence: CheckpointEvidence) -> CheckpointVerdict:  # noqa: D102
        if evidence.expect is None:
            raise MonitorError("invalid", "the checkpoint states no expectation to judge")
        predicate = parse_predicate(evidence.expect, evidence.scene)
        named = {a for atom in predicate.atoms for a in atom.args}
        positions, inferred = self.locate(evidence, named)
        state = WorldState(scene=evidence.scene, positions=positions, articulations={})
        atoms = [self._atom(atom, state, evidence.scene) for atom in predicate.atoms]
        for atom in atoms:
            used = sorted(set(inferred) & set(atom.get("positions", {})))
            if used:
                atom["why"] += f" (inferred from occlusion: {used})"
        return _combine(atoms, self.name)

    def locate(
        self, evidence: CheckpointEvidence, named: set[str] | list[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(positions of everything seen or inferred, the inferred ones) from the images."""
        seen = self.perceive(evidence)
        positions = {n: d.position for n, d in seen.items()}
        hidden = sorted(
            n
            for n in named
            if n not in positions
            and n in {o.name for o in evidence.scene.objects}
            and not _is_furniture(evidence.scene, n)
        )
        inferred = self._infer_hidden(hidden, seen, evidence) if hidden else {}
        positions.update(inferred)
        return positions, inferred

    @staticmethod
    def _infer_hidden(
        hidden: list[str], seen: dict[str, Detection], evidence: CheckpointEvidence
    ) -> dict[str, np.ndarray]:
        """Where objects the camera cannot see must be, when the images say so.

        Two occlusions are read from the images: objects under a visible object that stands
        raised off the table (a stack: the depth image shows the column's height), and an
        object inside a bowl of its own colour (segmentation merges them; the depth image shows
        something standing in the bowl). Anything else stays unseen.
        """
        from corrigible.policies.perception import backproject

        scene = evidence.scene
        half = {
            o.name: WorldState(scene, {}, {}).half_height(o.name)
            for o in scene.objects
            if o.geoms and not _is_furniture(scene, o.name) and o.kind != "bowl"
        }
        out: dict[str, np.ndarray] = {}
        left = [h for h in hidden if h in half]
        # Stacks: below the highest raised visible object, in order of the column.
        raised = sorted(
            (d for d in seen.values() if d.name in half and d.position[2] - half[d.name] > 0.015),
            key=lambda d: -d.position[2],
        )
        for top in raised:
            base = top.position[2] - half[top.name]  # the column's height under `top`
            below = []
            for name in list(left):
                if base <= half[name]:
                    break
                z = base - half[name]
                below.append(name)
                out[name] = np.array([top.position[0], top.position[1], z])
                base -= 2 * half[name]
                left.remove(name)
            if below and base > 0.01:  # more in the column than these: the order is unknown
                for name in below:
                    out[name] = np.array([np.nan, np.nan, np.nan])
        if not left:
            return out
        xyz = backproject(evidence.depth, evidence.intrinsics, evidence.cam_pose)
        valid = evidence.depth > 0
        for name in list(left):
            color = name.split()[0]
            bowl = next((d for d in seen.values() if d.kind == "bowl" and d.color == color), None)
            if bowl is None:
                continue
            near = valid & (np.linalg.norm(xyz[..., :2] - bowl.position[:2], axis=-1) < 0.025)
            if near.sum() < 5:
                continue
            height = float(np.median(xyz[..., 2][near]))
            if height > 1.5 * half[name]:  # taller than the bowl floor: something stands in it
                out[name] = np.array([bowl.position[0], bowl.position[1], height - half[name]])
                left.remove(name)
        for name in left:  # a region of its colour the segmentation set aside (a bowl's rim)
            found = _colour_region(name.split()[0], xyz, evidence.rgb, valid, seen)
            if found is not None:
                out[name] = found - np.array([0.0, 0.0, half[name]])
        return out

    @staticmethod
    def _atom(atom: Atom, state: WorldState, scene: Any) -> dict[str, Any]:
        record: dict[str, Any] = {"atom": str(atom), "kind": atom.name}
        names = [a for a in atom.args if a in {o.name for o in scene.objects}]
        if atom.name in ("open", "closed") or any(_is_furniture(scene, n) for n in names):
            return {**record, "holds": None, "why": "the camera does not measure the drawer"}
        ambiguous = [n for n in names if n in state.positions and np.isnan(state.positions[n][0])]
        if ambiguous:
            why = f"hidden in a column with other objects, order unknown: {ambiguous}"
            return {**record, "holds": None, "why": why}
        unseen = [n for n in names if n not in state.positions]
        if unseen:
            # The camera looks at the whole table: an object it cannot find there, nor infer
            # under or inside something, is not where the expectation wants it.
            return {**record, "holds": False, "why": f"not seen by the camera: {unseen}"}
        fn, _ = PREDICATES.get(atom.name)
        ok, why = fn(state, *atom.args)
        positions = {n: [round(float(v), 4) for v in state.positions[n]] for n in names}
        return {**record, "holds": bool(ok), "why": why, "positions": positions}


def _colour_region(
    color: str,
    xyz: np.ndarray,
    rgb: np.ndarray,
    valid: np.ndarray,
    seen: dict[str, Detection],
) -> np.ndarray | None:
    """The top centre (m) of the largest region of `color` standing off the table, or None.

    Perception drops compact regions about a bowl's wall radius from its centre (they are
    usually the bowl's shaded wall); an object resting on the rim is such a region. Regions
    of a detected bowl of the same colour are skipped.
    """
    import cv2

    from corrigible.policies.perception import _NAMES, _PALETTE_FEATURES, _features

    if color not in _NAMES:
        return None
    cfg = PerceptionConfig()
    fg = (
        valid
        & (xyz[..., 2] > 0.02)
        & (xyz[..., 2] < cfg.max_height)
        & (xyz[..., 0] > cfg.region_x[0])
        & (xyz[..., 0] < cfg.region_x[1])
        & (xyz[..., 1] > cfg.region_y[0])
        & (xyz[..., 1] < cfg.region_y[1])
    )
    feats = _features(rgb[fg].astype(np.float32) / 255.0)
    dist = np.linalg.norm(feats[:, None, :] - _PALETTE_FEATURES[None], axis=-1)
    mask = np.zeros(fg.shape, dtype=np.uint8)
    hit = (dist.argmin(axis=-1) == _NAMES.index(color)) & (
        dist.min(axis=-1) < cfg.max_color_distance
    )
    mask[fg] = hit.astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    bowls = [d for d in seen.values() if d.kind == "bowl" and d.color == color]
    best = None
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < 4 * cfg.min_pixels:
            continue
        pts = xyz[comp == k]
        top = float(np.percentile(pts[:, 2], 95))
        xy = pts[pts[:, 2] > top - 0.004][:, :2].mean(axis=0)
        if any(np.linalg.norm(xy - b.position[:2]) < 0.09 for b in bowls):
            continue
        if best is None or stats[k, cv2.CC_STAT_AREA] > best[0]:
            best = (stats[k, cv2.CC_STAT_AREA], np.array([xy[0], xy[1], top]))
    return None if best is None else best[1]


def oracle_state(evidence_scene: Any, state_path: Any) -> WorldState:
    """The privileged snapshot a checkpoint saved, as a `WorldState`."""
    data = json.loads(open(state_path, encoding="utf-8").read())  # noqa: PTH123, SIM115
    return WorldState(
        scene=evidence_scene,
        positions={n: np.asarray(p, dtype=np.float64) for n, p in data["objects"].items()},
        articulations={k: float(v) for k, v in data.get("articulations", {}).items()},
    )


def oracle_atoms(scene: Any, expect: str, state_path: Any) -> list[dict[str, Any]]:
    """Per-atom ground truth of `expect` on a saved snapshot (evaluation of the monitors)."""
    state = oracle_state(scene, state_path)
    out = []
    for atom in parse_predicate(expect, scene).atoms:
        fn, _ = PREDICATES.get(atom.name)
        ok, why = fn(state, *atom.args)
        out.append({"atom": str(atom), "kind": atom.name, "holds": bool(ok), "why": why})
    return out


class OracleMonitor(Monitor):
    """Judges on the privileged snapshot: exact, and for evaluation only."""

    name = "oracle"

    def judge(self, evidence: CheckpointEvidence) -> CheckpointVerdict:  # noqa: D102
        if evidence.expect is None:
            raise MonitorError("invalid", "the checkpoint states no expectation to judge")
        return _combine(
            oracle_atoms(evidence.scene, evidence.expect, evidence.state_path), "oracle"
        )


# -- the vision-language monitor -------------------------------------------------------------------
_SYSTEM = (
    "You check a robot's work from a camera image of a table. You get an RGB image, a depth "
    "image (brighter is nearer) and an expectation written as predicates: in(x, y) means x lies "
    "inside container y, on(x, y) means x rests on y, at(x, place) means x is at that named "
    "place of the table, stacked(...) means the objects form a tower. Answer with one JSON "
    'object and nothing else: {"verdict": "holds" | "fails" | "unsure", "reason": "<one '
    'sentence>"}.'
)
_MAX_ANSWER_CHARS = 20_000  # a longer answer is junk, not a verdict
_VERDICTS = {"holds": True, "true": True, "yes": True, "fails": False, "false": False, "no": False}


class VLMMonitorConfig(BaseModel):
    """Where the vision model is and how long to wait (`vlm:<model>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)  # the server's model name
    base_url: str = Field(pattern=r"^https?://")  # server root with "/v1": http://host:port/v1
    api_key: str = "none"  # bearer token; local servers ignore it
    timeout_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)  # s for one answer
    max_tokens: int = Field(default=200, ge=16)  # answer budget

    @classmethod
    def from_env(cls, model: str, environ: Mapping[str, str] | None = None) -> VLMMonitorConfig:
        """Reads CORRIGIBLE_VLM_BASE_URL (or CORRIGIBLE_LLM_BASE_URL), key and timeout.

        Raises:
            ConfigError: no server address is set, or the timeout is not a number.
        """
        env = os.environ if environ is None else environ
        url = env.get("CORRIGIBLE_VLM_BASE_URL") or env.get("CORRIGIBLE_LLM_BASE_URL")
        if not url:
            raise ConfigError(
                f"--monitor vlm:{model} needs an OpenAI-compatible server: set "
                "CORRIGIBLE_VLM_BASE_URL, e.g. http://127.0.0.1:8000/v1"
            )
        raw = env.get("CORRIGIBLE_VLM_TIMEOUT_S", "30")
        try:
            timeout = float(raw)
        except ValueError as exc:
            raise ConfigError(f"CORRIGIBLE_VLM_TIMEOUT_S must be seconds, got {raw!r}") from exc
        try:
            return cls(
                model=model,
                base_url=url.rstrip("/"),
                api_key=env.get("CORRIGIBLE_VLM_API_KEY") or env.get("OPENAI_API_KEY") or "none",
                timeout_s=timeout,
            )
        except ValidationError as exc:
            raise ConfigError(f"bad vlm monitor settings: {exc.errors()[0]['msg']}") from exc


def _png_data_url(image: np.ndarray) -> str:
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise MonitorError("invalid", "could not encode the checkpoint image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _depth_picture(depth: np.ndarray) -> np.ndarray:
    """Depth as an 8-bit picture, nearer brighter (what a VLM can read)."""
    valid = depth > 0
    if not valid.any():
        return np.zeros(depth.shape, dtype=np.uint8)
    lo, hi = float(depth[valid].min()), float(depth[valid].max())
    scaled = np.where(valid, 255.0 * (hi - depth) / max(hi - lo, 1e-6), 0.0)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def parse_vlm_answer(content: Any) -> tuple[bool | None, str]:
    """(holds, reason) from a chat answer's text.

    Accepts one JSON object, optionally inside a ```json fence; `verdict` is holds/fails/unsure
    (or true/false, yes/no).

    Raises:
        MonitorError: kind "malformed" for anything else, naming what was wrong.
    """
    if not isinstance(content, str) or not content.strip():
        raise MonitorError("malformed", "the vision model gave an empty answer")
    if len(content) > _MAX_ANSWER_CHARS:
        raise MonitorError("malformed", f"the vision model's answer is {len(content)} chars long")
    text = content.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL)
    if fence:
        text = fence.group(1).strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MonitorError(
            "malformed", f"the vision model's answer is not JSON: {content[:120]!r}"
        ) from exc
    if not isinstance(data, dict) or "verdict" not in data:
        raise MonitorError(
            "malformed", f"the vision model's answer has no verdict field: {content[:120]!r}"
        )
    raw = data["verdict"]
    key = str(raw).strip().lower() if isinstance(raw, str | bool) else None
    if key == "unsure":
        holds = None
    elif key in _VERDICTS:
        holds = _VERDICTS[key]
    else:
        raise MonitorError("malformed", f"unknown verdict {raw!r}; expected holds|fails|unsure")
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise MonitorError("malformed", f"the reason must be text, got {type(reason).__name__}")
    return holds, reason[:500]


class VLMMonitor(Monitor):
    """Asks an OpenAI-compatible vision chat model; every failure is a classified MonitorError."""

    name = "vlm"

    def __init__(self, config: VLMMonitorConfig) -> None:
        self.config = config
        self.name = f"vlm:{config.model}"  # type: ignore[misc]

    def request(self, evidence: CheckpointEvidence) -> dict[str, Any]:
        """The chat-completion request body for one checkpoint (images as data URLs)."""
        return {
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": _SYSTEM},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": f"Checkpoint {evidence.name!r}. Expectation: "
                            f"{evidence.expect}. Does it hold in these images?",
                        },
                        {"type": "image_url", "image_url": {"url": _png_data_url(evidence.rgb)}},
                        {
                            "type": "image_url",
                            "image_url": {"url": _png_data_url(_depth_picture(evidence.depth))},
                        },
                    ],
                },
            ],
        }

    def judge(self, evidence: CheckpointEvidence) -> CheckpointVerdict:  # noqa: D102
        import socket
        import urllib.error
        import urllib.request

        if evidence.expect is None:
            raise MonitorError("invalid", "the checkpoint states no expectation to judge")
        cfg = self.config
        url = f"{cfg.base_url}/chat/completions"
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in the config
            url,
            data=json.dumps(self.request(evidence)).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {cfg.api_key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:  # noqa: S310
                text = response.read(_MAX_ANSWER_CHARS * 4).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            raise MonitorError(
                "http", f"{self.name} answered HTTP {exc.code}: {exc.read(200)!r}"
            ) from exc
        except TimeoutError as exc:
            raise MonitorError(
                "timeout", f"{self.name} gave no answer within {cfg.timeout_s:g} s at {url}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError | socket.timeout):
                raise MonitorError(
                    "timeout", f"{self.name} gave no answer within {cfg.timeout_s:g} s at {url}"
                ) from exc
            raise MonitorError(
                "unreachable",
                f"{self.name} is unreachable at {url} ({reason}); start the server or choose "
                "--monitor perception",
            ) from exc
        try:
            body = json.loads(text)
            content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise MonitorError(
                "malformed", f"{self.name} sent no chat completion: {text[:120]!r}"
            ) from exc
        holds, reason = parse_vlm_answer(content)
        atoms = [
            {"atom": str(a), "kind": a.name, "holds": holds, "why": reason}
            for a in parse_predicate(evidence.expect, evidence.scene).atoms
        ]
        return CheckpointVerdict(holds=holds, reason=reason, monitor=self.name, atoms=atoms)


_SPECS = ("perception", "oracle", "vlm:<model>")


def make_monitor(spec: str, environ: Mapping[str, str] | None = None) -> Monitor:
    """The monitor for a `--monitor` spec.

    Raises:
        UnknownNameError: an unknown spec (with a suggestion).
        ConfigError: `vlm:` without a model or a server address.
    """
    spec = spec.strip()
    if spec == "perception":
        return PerceptionMonitor()
    if spec == "oracle":
        return OracleMonitor()
    prefix, sep, model = spec.partition(":")
    if prefix == "vlm" and sep:
        if not model.strip():
            raise ConfigError("--monitor vlm:<model> needs a model name, e.g. vlm:qwen2-vl")
        return VLMMonitor(VLMMonitorConfig.from_env(model.strip(), environ))
    raise UnknownNameError(
        f"unknown monitor {spec!r}; choose one of {list(_SPECS)}."
        + did_you_mean(spec, ["perception", "oracle", "vlm"])
    )


__all__ = [
    "Monitor",
    "OracleMonitor",
    "PerceptionMonitor",
    "VLMMonitor",
    "VLMMonitorConfig",
    "make_monitor",
    "oracle_atoms",
    "parse_vlm_answer",
]
