"""Seeded random tabletop layouts: which blocks and bowls, and where.

Layouts are drawn from a `numpy.random.Generator` only, so one seed gives one layout whatever
the engine; the engines then build the same `SceneSpec`. Any requestable kind of
`sim_envs.vocabulary` may be asked for; its declaration says how to build it and how much room
it needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.sim_envs.locations import WORKSPACE_XY
from corrigible.sim_envs.objects import make_drawer
from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.scene_spec import ObjectSpec, SceneSpec
from corrigible.sim_envs.vocabulary import object_kind, object_name, requestable_kind

DRAWER_XY = (0.60, -0.45)  # m, cabinet centre; outside the object workspace, within reach
_MAX_COVER = 0.75  # fraction of the workspace object footprints may cover (random placement)


@dataclass(kw_only=True)
class ObjectRequest:
    """Asks for one specific object in a layout (colour, kind and any hidden properties)."""

    kind: str  # a requestable kind of `sim_envs.vocabulary`: "block" | "cylinder" | "bowl" | ...
    color: str  # a palette colour
    size_class: str = "medium"  # "small" | "medium" | "large" (kinds that are sized)
    mass: float | None = None  # kg; None keeps the default
    friction: float | None = None  # None keeps the default
    name: str | None = None  # defaults to "<color> <kind>"

    def __post_init__(self) -> None:
        requestable_kind(self.kind, field="ObjectRequest.kind")
        if self.color not in COLORS:
            raise UnknownNameError(
                f"ObjectRequest.color {self.color!r} is not a palette colour {sorted(COLORS)}."
                + did_you_mean(self.color, COLORS)
            )


@dataclass(kw_only=True)
class LayoutConfig:
    """How to draw a layout. Explicit `objects` replace the random colour draw."""

    n_blocks: int = 3  # random blocks when `objects` is empty
    n_bowls: int = 3  # random bowls when `objects` is empty
    objects: list[ObjectRequest] = field(default_factory=list)  # explicit objects (no random draw)
    required: list[ObjectRequest] = field(default_factory=list)  # always present; random fill
    include_drawer: bool = True  # add the cabinet with its drawer
    drawer_handle_offset_y: float = 0.0  # m; an off-centre handle
    drawer_frictionloss: float = 0.5  # N; dry friction (MuJoCo: a soft constraint, weak)
    drawer_damping: float = 2.0  # N*s/m; a stiff drawer that lags the pulling hand
    min_gap: float = 0.02  # m, clearance between object footprints

    def __post_init__(self) -> None:
        if not 0 <= self.n_blocks <= 6 or not 0 <= self.n_bowls <= 4:
            raise ConfigError(
                f"LayoutConfig needs 0-6 blocks and 0-4 bowls, got {self.n_blocks}, {self.n_bowls}"
            )
        if self.drawer_damping < 0:
            raise ConfigError(
                f"LayoutConfig.drawer_damping must be >= 0 N*s/m, got {self.drawer_damping}"
            )


def sample_layout(seed: int, cfg: LayoutConfig | None = None) -> SceneSpec:
    """Draws a non-overlapping layout for `seed`.

    Args:
        seed: the layout seed; equal seeds give equal layouts.
        cfg: what to lay out; defaults to three random blocks and three random bowls.

    Returns:
        The scene description, ready for either backend.

    Raises:
        ConfigError: when the objects cannot be placed without overlap.
    """
    cfg = cfg or LayoutConfig()
    rng = np.random.default_rng(seed)
    requests = list(cfg.objects)
    if not requests:
        requests = list(cfg.required)
        for kind, wanted in (("block", cfg.n_blocks), ("bowl", cfg.n_bowls)):
            taken = {r.color for r in requests if r.kind == kind}
            free = [c for c in COLORS if c not in taken]
            n = max(0, wanted - len(taken))
            for c in rng.choice(free, size=min(n, len(free)), replace=False):
                requests.append(ObjectRequest(kind=kind, color=str(c)))
    _check_requests(requests, cfg.min_gap)
    # Place the largest footprints (bowls) first; equal ones keep their order. A dead end
    # restarts the whole placement from the same random stream, so the result still depends
    # only on the seed.
    order = sorted(
        range(len(requests)), key=lambda i: -object_kind(requests[i].kind).footprint_radius_m
    )
    (x0, x1), (y0, y1) = WORKSPACE_XY
    for _layout_try in range(100):
        placed: list[tuple[np.ndarray, float]] = []
        objects: list[ObjectSpec | None] = [None] * len(requests)
        for i in order:
            req = requests[i]
            radius = object_kind(req.kind).footprint_radius_m
            for _attempt in range(100):
                xy = np.array(
                    [rng.uniform(x0 + radius, x1 - radius), rng.uniform(y0 + radius, y1 - radius)]
                )
                if all(np.linalg.norm(xy - p) >= radius + r + cfg.min_gap for p, r in placed):
                    break
            else:
                break  # dead end: start this layout over
            placed.append((xy, radius))
            yaw = float(rng.uniform(-np.pi / 4, np.pi / 4))
            objects[i] = _build(req, (float(xy[0]), float(xy[1])), yaw)
        if all(o is not None for o in objects):
            break
    else:
        raise ConfigError(
            f"could not lay out {len(requests)} objects without overlap in the workspace; "
            "ask for fewer objects or fewer bowls"
        )
    result = [o for o in objects if o is not None]
    if cfg.include_drawer:
        drawer = make_drawer(
            DRAWER_XY,
            handle_offset_y=cfg.drawer_handle_offset_y,
            frictionloss=cfg.drawer_frictionloss,
        )
        if drawer.joint is not None and cfg.drawer_damping != drawer.joint.damping:
            joint = dataclasses.replace(drawer.joint, damping=cfg.drawer_damping)
            drawer = dataclasses.replace(drawer, joint=joint)
        result.append(drawer)
    return SceneSpec(objects=tuple(result), seed=seed)


def _check_requests(requests: list[ObjectRequest], min_gap: float) -> None:
    """Refuses, before any placement, two objects with one name or more than the table holds.

    Raises:
        ConfigError: a name is repeated, or the objects' footprints (with the clearance) cover
            more of the workspace than random placement can fill.
    """
    names = [req.name or object_name(req.color, req.kind) for req in requests]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"the layout asks for two objects named {repeated[0]!r} (repeated: {repeated}); "
            "objects are named '<colour> <kind>', so give each a different colour or kind"
        )
    (x0, x1), (y0, y1) = WORKSPACE_XY
    area = (x1 - x0) * (y1 - y0)
    used = sum(
        np.pi * (object_kind(req.kind).footprint_radius_m + min_gap / 2) ** 2 for req in requests
    )
    # Random sequential placement of discs stalls well before the table is covered: no layout
    # above ~68% cover came out in any of 10 seeds (and 7 in 10 at 64%). Beyond the bound the
    # answer is certain, so give it now; below it the placement below tries and says.
    if used > _MAX_COVER * area:
        raise ConfigError(
            f"{len(requests)} objects cover {used / area:.0%} of the {x1 - x0:.2f} m x "
            f"{y1 - y0:.2f} m workspace with their clearance; at most {_MAX_COVER:.0%} can be "
            "laid out: ask for fewer objects or fewer bowls"
        )


def _build(req: ObjectRequest, xy: tuple[float, float], yaw: float) -> ObjectSpec:
    # The kind passes on only what its factory takes (a bowl has no yaw and no size class).
    return object_kind(req.kind).build(
        req.color,
        xy,
        yaw=yaw,
        size_class=req.size_class,
        name=req.name,
        mass=req.mass,
        friction=req.friction,
    )
