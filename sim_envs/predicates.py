"""Task predicates over privileged state: the evaluator every success figure comes from.

Written form (for `--expect` and suite files), combinable with `and`:
    in(red block, blue bowl)        in(red block, drawer)
    on(red block, blue block)       stacked(all blocks)   stacked(red block, blue block, ...)
    on(blue bowl, red bowl)         (a bowl resting on or in another: centres within 3 cm)
    at(red block, top left corner)  line(all blocks, horizontal|vertical)
    open(drawer)                    closed(drawer)
    together(red block, orange block)   (all in the same bowl)
    apart(red block, blue block)        (each in a bowl, different bowls)
    between(red block, blue bowl, green block)   (within 4 cm of halfway between two objects
                                                  or named locations)
    shape(all blocks, circle|triangle|square)
    not_in(red block, red bowl)
    pointing_at(red block)              (the gripper held over it, within 3 cm across)
Object arguments are scene names ("red block", or any noun of its kind: "red cube");
`all <plural>` ("all blocks", "all dishes") expands to every object of that kind. `in(x, y)`
takes any container kind: a loose one (a bowl) holds x within its footprint radius, the
drawer within its sliding link. Kinds and nouns come from `sim_envs.vocabulary`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from corrigible.errors import ParseError, UnknownObjectError, did_you_mean
from corrigible.registry import Registry
from corrigible.sim_envs.locations import canonical_location, location_xy
from corrigible.sim_envs.objects import DRAWER_INTERIOR, DRAWER_TRAVEL
from corrigible.sim_envs.scene_spec import ObjectSpec, SceneSpec
from corrigible.sim_envs.vocabulary import (
    OBJECT_KINDS,
    ObjectKind,
    canonical_color,
    is_plural,
    kind_names,
    kind_of_noun,
    object_kind,
    object_name,
)


@dataclass
class WorldState:
    """A snapshot of privileged state: enough to judge any predicate."""

    scene: SceneSpec
    positions: dict[str, np.ndarray]  # free object name -> position, m
    articulations: dict[str, float]  # drawer name -> opening, m
    ee_pos: np.ndarray | None = None  # the gripper's tip, m (None: not known to this snapshot)

    @classmethod
    def from_info(cls, scene: SceneSpec, info: dict) -> WorldState:
        """Builds a snapshot from a TabletopEnv `info` dict (`ee_pos` when it carries one)."""
        ee = info.get("ee_pos")
        return cls(
            scene=scene,
            positions={n: np.asarray(v["pos"]) for n, v in info["objects"].items()},
            articulations=dict(info.get("articulations", {})),
            ee_pos=None if ee is None else np.asarray(ee, dtype=float),
        )

    def half_height(self, name: str) -> float:
        """Half the height of a free object, m."""
        geom = self.scene.object(name).geoms[0]
        return geom.size[2] if geom.type == "box" else geom.size[1]

    def half_width(self, name: str) -> float:
        """Half the footprint width of a free object, m."""
        return self.scene.object(name).geoms[0].size[0]


def _kind(spec: ObjectSpec) -> ObjectKind | None:
    """The declared kind of a scene object (None for an undeclared one, e.g. "other")."""
    return object_kind(spec.kind) if spec.kind in OBJECT_KINDS else None


def _is_loose_container(spec: ObjectSpec) -> bool:
    """A container standing free on the table (a bowl), not built into furniture."""
    kind = _kind(spec)
    return kind is not None and kind.container and not kind.furniture


def _in(state: WorldState, obj: str, container: str) -> tuple[bool, str]:
    spec = state.scene.object(container)
    pos = state.positions[obj]
    kind = _kind(spec)
    if kind is not None and _is_loose_container(spec):
        limit = kind.footprint_radius_m - 0.01  # inside the rim, not on it
        center = state.positions[container]
        dxy = float(np.linalg.norm(pos[:2] - center[:2]))
        ok = dxy < limit and pos[2] < center[2] + 0.12
        return (
            ok,
            f"{obj} is {dxy * 100:.1f} cm from the {container} centre (limit {limit * 100:.1f})",
        )
    if kind is not None and kind.container and spec.is_articulated:
        opening = state.articulations.get(container, 0.0)
        link_origin = np.asarray(spec.pos) + np.asarray(spec.joint.axis) * opening
        local = pos - link_origin  # the cabinet is axis-aligned (yaw 0)
        inside = all(
            lo - 0.005 <= v <= hi + 0.005
            for v, (lo, hi) in zip(local, DRAWER_INTERIOR, strict=True)
        )
        return inside, f"{obj} at {np.round(local, 3).tolist()} in the {container} frame"
    raise ParseError(
        f"in(x, y) needs a {' or '.join(kind_names(container=True))} as y; "
        f"{container!r} is a {spec.kind}"
    )


# A bowl on a bowl: the upper one's centre within this fraction of the lower one's footprint
# radius across (3 cm for the 7.5 cm bowls: its base disc then rests on the rim all round, its
# weight well inside the ring it stands on), its base above the lower base's floor by more than
# `_NEST_MIN_RISE_M` and at most `_NEST_SLACK_M` above the lower rim (resting, not held above).
_NEST_ACROSS = 0.4
_NEST_MIN_RISE_M = 0.01
_NEST_SLACK_M = 0.015


def _on_container(state: WorldState, top: str, bottom: str) -> tuple[bool, str]:
    """`top` (a loose container: a bowl) rests on or in `bottom` (another one).

    Both bowls' origins are on their bases' undersides, so the rise is base over base: about
    the rim's height when same-size bowls stack rim on base, less when a smaller one nests.
    """
    a, b = state.positions[top], state.positions[bottom]
    lower = state.scene.object(bottom)
    kind = _kind(lower)
    assert kind is not None  # a loose container has a declared kind
    limit = _NEST_ACROSS * kind.footprint_radius_m
    dxy = float(np.linalg.norm(a[:2] - b[:2]))
    dz = float(a[2] - b[2])
    rim = lower.top_above_origin()
    ok = dxy < limit and _NEST_MIN_RISE_M < dz < rim + _NEST_SLACK_M
    return (
        ok,
        f"{top} is {dxy * 100:.1f} cm off the {bottom}'s centre (limit {limit * 100:.1f}), its "
        f"base {dz * 100:.1f} cm above the {bottom}'s (expect {_NEST_MIN_RISE_M * 100:.1f} to "
        f"{(rim + _NEST_SLACK_M) * 100:.1f})",
    )


def _on(state: WorldState, top: str, bottom: str) -> tuple[bool, str]:
    if _is_loose_container(state.scene.object(top)) and _is_loose_container(
        state.scene.object(bottom)
    ):
        return _on_container(state, top, bottom)
    a, b = state.positions[top], state.positions[bottom]
    dxy = float(np.linalg.norm(a[:2] - b[:2]))
    dz = float(a[2] - b[2])
    expect = state.half_height(top) + state.half_height(bottom)
    ok = dxy < max(state.half_width(bottom), 0.015) + 0.005 and abs(dz - expect) < 0.012
    return (
        ok,
        f"{top} is {dxy * 100:.1f} cm off-centre and {dz * 100:.1f} cm above {bottom} "
        f"(expect {expect * 100:.1f})",
    )


def _stacked(state: WorldState, *objs: str) -> tuple[bool, str]:
    if len(objs) < 2:
        return False, "stacked() needs at least two objects"
    order = sorted(objs, key=lambda n: state.positions[n][2])
    details = []
    for bottom, top in zip(order, order[1:], strict=False):
        ok, why = _on(state, top, bottom)
        details.append(why)
        if not ok:
            return False, "; ".join(details)
    return True, "; ".join(details)


def _at(state: WorldState, obj: str, location: str) -> tuple[bool, str]:
    target = location_xy(location)
    d = float(np.linalg.norm(state.positions[obj][:2] - target))
    return (
        d < 0.06,
        f"{obj} is {d * 100:.1f} cm from the {canonical_location(location)} (limit 6.0)",
    )


def _line(state: WorldState, *args: str) -> tuple[bool, str]:
    *objs, orientation = args
    if orientation not in ("horizontal", "vertical"):
        raise ParseError(f"line(...) ends with horizontal or vertical, got {orientation!r}")
    if len(objs) < 2:
        return False, "line() needs at least two objects"
    pts = np.array([state.positions[o][:2] for o in objs])
    # Horizontal = across the table (along y), so the x coordinates must agree; vertical: y.
    spread_axis, along_axis = (0, 1) if orientation == "horizontal" else (1, 0)
    spread = float(np.ptp(pts[:, spread_axis]))
    along = np.sort(pts[:, along_axis])
    gaps_ok = bool(np.all(np.diff(along) > 0.03))
    ok = spread < 0.04 and gaps_ok
    return ok, f"{orientation} line: spread {spread * 100:.1f} cm (limit 4.0), gaps ok: {gaps_ok}"


def _open(state: WorldState, drawer: str) -> tuple[bool, str]:
    d = state.articulations.get(drawer)
    if d is None:
        raise UnknownObjectError(
            f"{drawer!r} is not a drawer; drawers: {sorted(state.articulations)}"
        )
    return d > 0.5 * DRAWER_TRAVEL, f"{drawer} is open {d * 100:.1f} cm"


def _closed(state: WorldState, drawer: str) -> tuple[bool, str]:
    ok, why = _open(state, drawer)
    d = state.articulations[drawer]
    return d < 0.01, why


def _bowl_of(state: WorldState, obj: str) -> str | None:
    for name, spec in ((o.name, o) for o in state.scene.objects):
        if _is_loose_container(spec) and _in(state, obj, name)[0]:
            return name
    return None


def _together(state: WorldState, *objs: str) -> tuple[bool, str]:
    bowls = {o: _bowl_of(state, o) for o in objs}
    first = bowls[objs[0]]
    ok = first is not None and all(b == first for b in bowls.values())
    return ok, "bowls: " + ", ".join(f"{o} in {b}" for o, b in bowls.items())


def _apart(state: WorldState, *objs: str) -> tuple[bool, str]:
    bowls = {o: _bowl_of(state, o) for o in objs}
    found = [b for b in bowls.values() if b is not None]
    ok = len(found) == len(objs) and len(set(found)) == len(found)
    return ok, "bowls: " + ", ".join(f"{o} in {b}" for o, b in bowls.items())


def _not_in(state: WorldState, obj: str, container: str) -> tuple[bool, str]:
    """The negation of `in`: "put the blocks in bowls with non-matching colours"."""
    ok, why = _in(state, obj, container)
    return not ok, why


def _between(state: WorldState, obj: str, first: str, second: str) -> tuple[bool, str]:
    """`obj` near the midpoint of two objects or named locations (within 4 cm)."""

    def xy(name: str) -> np.ndarray:
        if name in state.positions:
            return np.asarray(state.positions[name][:2])
        return np.asarray(location_xy(name))

    mid = (xy(first) + xy(second)) / 2
    d = float(np.linalg.norm(state.positions[obj][:2] - mid))
    return d < 0.04, f"{obj} is {d * 100:.1f} cm from halfway between them (limit 4.0)"


def _shape(state: WorldState, *args: str) -> tuple[bool, str]:
    """The objects' centres form a circle, triangle or square (within 2 cm), 6 cm apart or more.

    circle: three or more points at one distance from their centroid; triangle: exactly three
    points on the outline of their hull being its corners (so, with more objects, the others
    on its sides); square: four points with four equal sides and two equal diagonals.
    """
    *objs, form = args
    if form not in ("circle", "triangle", "square"):
        raise ParseError(f"shape(...) ends with circle, triangle or square, got {form!r}")
    pts = np.array([state.positions[o][:2] for o in objs], dtype=float)
    if len(pts) < 3:
        return False, "a shape needs at least three objects"
    gaps = [float(np.linalg.norm(a - b)) for i, a in enumerate(pts) for b in pts[i + 1 :]]
    if min(gaps) < 0.06:
        return False, f"two objects are {min(gaps) * 100:.1f} cm apart (at least 6.0)"
    if form == "circle":
        radii = np.linalg.norm(pts - pts.mean(axis=0), axis=1)
        spread = float(np.ptp(radii))
        return spread < 0.02, f"distances to the centre differ by {spread * 100:.1f} cm (limit 2.0)"
    if form == "square":
        if len(pts) != 4:
            return False, f"a square takes four objects, got {len(pts)}"
        d = sorted(gaps)
        sides, diagonals = d[:4], d[4:]
        ok = np.ptp(sides) < 0.02 and np.ptp(diagonals) < 0.02
        ok = ok and abs(diagonals[0] - np.sqrt(2) * np.mean(sides)) < 0.02
        return bool(ok), f"sides {[round(x * 100, 1) for x in sides]} cm, diagonals " + (
            f"{[round(x * 100, 1) for x in diagonals]} cm"
        )
    import cv2

    hull = cv2.convexHull(pts.astype(np.float32) * 1000, returnPoints=True).reshape(-1, 2) / 1000
    corners = cv2.approxPolyDP(hull.astype(np.float32), 0.015, closed=True).reshape(-1, 2)
    inside = [
        float(cv2.pointPolygonTest(hull.astype(np.float32), (float(x), float(y)), True))
        for x, y in pts
    ]
    on_outline = all(abs(v) < 0.015 for v in inside)
    ok = len(corners) == 3 and on_outline
    return ok, f"the outline has {len(corners)} corners; every object on it: {on_outline}"


def _pointing_at(state: WorldState, obj: str) -> tuple[bool, str]:
    """The gripper's tip is over `obj`: within 3 cm of its centre across, 3-40 cm above its top."""
    if state.ee_pos is None:
        return False, "the gripper's position is not in this snapshot"
    pos = state.positions[obj]
    across = float(np.linalg.norm(state.ee_pos[:2] - pos[:2]))
    above = float(state.ee_pos[2] - (pos[2] + state.scene.object(obj).top_above_origin()))
    ok = across <= 0.03 and 0.03 <= above <= 0.40
    return ok, f"gripper {across * 100:.1f} cm off its centre, {above * 100:.1f} cm above its top"


# name -> (function, arity or None for variadic)
PREDICATES: Registry[tuple[Callable[..., tuple[bool, str]], int | None]] = Registry(
    "predicate", unknown="unknown {noun} {name!r}; known: {choices}."
)
PREDICATES.register("together", (_together, None))  # all in one and the same bowl
PREDICATES.register("apart", (_apart, None))  # each in a bowl, all bowls different
PREDICATES.register("in", (_in, 2))
PREDICATES.register("on", (_on, 2))
PREDICATES.register("stacked", (_stacked, None))
PREDICATES.register("at", (_at, 2))
PREDICATES.register("line", (_line, None))
PREDICATES.register("between", (_between, 3))
PREDICATES.register("not_in", (_not_in, 2))
PREDICATES.register("shape", (_shape, None))
PREDICATES.register("pointing_at", (_pointing_at, 1))
PREDICATES.register("open", (_open, 1))
PREDICATES.register("closed", (_closed, 1))
_ATOM = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Atom:
    """One predicate applied to its (already resolved) arguments."""

    name: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(self.args)})"


@dataclass(frozen=True)
class Predicate:
    """A conjunction of atoms, parsed from the written form."""

    atoms: tuple[Atom, ...]
    text: str

    def evaluate(self, state: WorldState) -> tuple[bool, list[str]]:
        """Returns (all atoms hold, one explanation per atom)."""
        results = [(atom, *PREDICATES.get(atom.name)[0](state, *atom.args)) for atom in self.atoms]
        return all(ok for _, ok, _ in results), [
            f"{atom}: {'yes' if ok else 'no'} ({why})" for atom, ok, why in results
        ]


def _split_args(text: str) -> list[str]:
    return [a.strip().lower() for a in text.split(",") if a.strip()]


def _resolve(arg: str, scene: SceneSpec, expand_groups: bool) -> list[str]:
    names = [o.name for o in scene.objects]
    arg = " ".join(arg.removeprefix("the ").split())
    group = arg.removeprefix("all ")
    if expand_groups and group != arg and is_plural(group):
        kind = kind_of_noun(group)
        members = [o.name for o in scene.objects if o.kind == kind]
        if not members:
            raise UnknownObjectError(f"{arg!r} matches nothing: the scene has no {kind}s")
        return members
    if arg in names:
        return [arg]
    words = arg.split()  # another noun for the kind: "red cube" is the "red block"
    if len(words) == 2 and not is_plural(words[1]):
        color, kind = canonical_color(words[0]), kind_of_noun(words[1])
        if color and kind and object_name(color, kind) in names:
            return [object_name(color, kind)]
    raise UnknownObjectError(
        f"unknown object {arg!r} in the predicate; objects: {names}." + did_you_mean(arg, names)
    )


def parse_predicate(text: str, scene: SceneSpec) -> Predicate:
    """Parses the written form against a scene, resolving object names.

    Raises:
        ParseError: malformed text.
        UnknownNameError: an unknown predicate name; the message suggests the closest one.
        UnknownObjectError: an argument names no object in the scene.
    """
    if not text or not text.strip():
        raise ParseError("empty predicate; write e.g. 'in(red block, blue bowl)'")
    atoms: list[Atom] = []
    parts = re.split(r"\)\s*(?:and|&|,)\s*(?=[a-z_]+\s*\()", text.strip(), flags=re.IGNORECASE)
    for i, part in enumerate(parts):
        part = part.strip()
        if i < len(parts) - 1:
            part += ")"  # the split consumed this atom's closing parenthesis
        m = _ATOM.match(part.lower())
        if not m:
            raise ParseError(
                f"cannot read predicate {part!r}; "
                "expected name(arg, ...) e.g. 'in(red block, blue bowl)'"
            )
        name, raw = m.group(1), _split_args(m.group(2))
        fn, arity = PREDICATES.get(name)  # UnknownNameError with a "did you mean"
        args: list[str] = []
        for i, arg in enumerate(raw):
            if name == "at" and i == 1:
                args.append(canonical_location(arg))
            elif name in ("line", "shape") and i == len(raw) - 1:
                args.append(arg)
            elif name == "between" and i > 0:
                try:  # an object, else a named location ("between the red block and the middle")
                    args.extend(_resolve(arg, scene, expand_groups=False))
                except UnknownObjectError:
                    args.append(canonical_location(arg))
            else:
                args.extend(_resolve(arg, scene, expand_groups=arity is None))
        if arity is not None and len(args) != arity:
            raise ParseError(f"{name}() takes {arity} argument(s), got {len(args)} in {part!r}")
        atoms.append(Atom(name, tuple(args)))
    return Predicate(tuple(atoms), text.strip())
