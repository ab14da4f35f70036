"""Task predicates over privileged state: the evaluator every success figure comes from.

Written form (for `--expect` and suite files), combinable with `and`:
    in(red block, blue bowl)        in(red block, drawer)
    on(red block, blue block)       stacked(all blocks)   stacked(red block, blue block, ...)
    at(red block, top left corner)  line(all blocks, horizontal|vertical)
    open(drawer)                    closed(drawer)
    together(red block, orange block)   (all in the same bowl)
    apart(red block, blue block)        (each in a bowl, different bowls)
Object arguments are scene names ("red block"); `all blocks` / `all bowls` expand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from corrigible.errors import ParseError, UnknownNameError, UnknownObjectError, did_you_mean
from corrigible.sim_envs.locations import canonical_location, location_xy
from corrigible.sim_envs.objects import BOWL_RADIUS, DRAWER_INTERIOR, DRAWER_TRAVEL
from corrigible.sim_envs.scene_spec import SceneSpec


@dataclass
class WorldState:
    """A snapshot of privileged state: enough to judge any predicate."""

    scene: SceneSpec
    positions: dict[str, np.ndarray]  # free object name -> position, m
    articulations: dict[str, float]  # drawer name -> opening, m

    @classmethod
    def from_info(cls, scene: SceneSpec, info: dict) -> WorldState:
        """Builds a snapshot from a TabletopEnv `info` dict."""
        return cls(
            scene=scene,
            positions={n: np.asarray(v["pos"]) for n, v in info["objects"].items()},
            articulations=dict(info.get("articulations", {})),
        )

    def half_height(self, name: str) -> float:
        """Half the height of a free object, m."""
        geom = self.scene.object(name).geoms[0]
        return geom.size[2] if geom.type == "box" else geom.size[1]

    def half_width(self, name: str) -> float:
        """Half the footprint width of a free object, m."""
        return self.scene.object(name).geoms[0].size[0]


def _in(state: WorldState, obj: str, container: str) -> tuple[bool, str]:
    spec = state.scene.object(container)
    pos = state.positions[obj]
    if spec.kind == "bowl":
        center = state.positions[container]
        dxy = float(np.linalg.norm(pos[:2] - center[:2]))
        ok = dxy < BOWL_RADIUS - 0.01 and pos[2] < center[2] + 0.12
        return (
            ok,
            f"{obj} is {dxy * 100:.1f} cm from the {container} centre "
            f"(limit {(BOWL_RADIUS - 0.01) * 100:.1f})",
        )
    if spec.kind == "drawer":
        opening = state.articulations.get(container, 0.0)
        link_origin = np.asarray(spec.pos) + np.asarray(spec.joint.axis) * opening
        local = pos - link_origin  # the cabinet is axis-aligned (yaw 0)
        inside = all(
            lo - 0.005 <= v <= hi + 0.005
            for v, (lo, hi) in zip(local, DRAWER_INTERIOR, strict=True)
        )
        return inside, f"{obj} at {np.round(local, 3).tolist()} in the {container} frame"
    raise ParseError(f"in(x, y) needs a bowl or drawer as y; {container!r} is a {spec.kind}")


def _on(state: WorldState, top: str, bottom: str) -> tuple[bool, str]:
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
        if spec.kind == "bowl" and _in(state, obj, name)[0]:
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


PREDICATES: dict[str, tuple[Callable[..., tuple[bool, str]], int | None]] = {
    "together": (_together, None),  # all in one and the same bowl
    "apart": (_apart, None),  # each in a bowl, all bowls different
    # name: (function, arity or None for variadic)
    "in": (_in, 2),
    "on": (_on, 2),
    "stacked": (_stacked, None),
    "at": (_at, 2),
    "line": (_line, None),
    "open": (_open, 1),
    "closed": (_closed, 1),
}
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
        results = [(atom, *PREDICATES[atom.name][0](state, *atom.args)) for atom in self.atoms]
        return all(ok for _, ok, _ in results), [
            f"{atom}: {'yes' if ok else 'no'} ({why})" for atom, ok, why in results
        ]


def _split_args(text: str) -> list[str]:
    return [a.strip().lower() for a in text.split(",") if a.strip()]


def _resolve(arg: str, scene: SceneSpec, expand_groups: bool) -> list[str]:
    names = [o.name for o in scene.objects]
    arg = " ".join(arg.removeprefix("the ").split())
    groups = {"all blocks": "block", "all bowls": "bowl", "all cylinders": "cylinder"}
    if expand_groups and arg in groups:
        members = [o.name for o in scene.objects if o.kind == groups[arg]]
        if not members:
            raise UnknownObjectError(f"{arg!r} matches nothing: the scene has no {groups[arg]}s")
        return members
    if arg in names:
        return [arg]
    for alias, kind in (("cube", "block"),):
        if arg.endswith(alias) and arg.replace(alias, kind) in names:
            return [arg.replace(alias, kind)]
    raise UnknownObjectError(
        f"unknown object {arg!r} in the predicate; objects: {names}." + did_you_mean(arg, names)
    )


def parse_predicate(text: str, scene: SceneSpec) -> Predicate:
    """Parses the written form against a scene, resolving object names.

    Raises:
        ParseError: malformed text or an unknown predicate name.
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
        if name not in PREDICATES:
            raise UnknownNameError(
                f"unknown predicate {name!r}; known: {sorted(PREDICATES)}."
                + did_you_mean(name, PREDICATES)
            )
        fn, arity = PREDICATES[name]
        args: list[str] = []
        for i, arg in enumerate(raw):
            if name == "at" and i == 1:
                args.append(canonical_location(arg))
            elif name == "line" and i == len(raw) - 1:
                args.append(arg)
            else:
                args.extend(_resolve(arg, scene, expand_groups=arity is None))
        if arity is not None and len(args) != arity:
            raise ParseError(f"{name}() takes {arity} argument(s), got {len(args)} in {part!r}")
        atoms.append(Atom(name, tuple(args)))
    return Predicate(tuple(atoms), text.strip())
