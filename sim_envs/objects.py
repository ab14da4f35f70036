"""Factories for the tabletop's objects as primitive geoms: blocks, cylinders, bowls, a drawer.

A bowl is a disc with a ring of wall segments and a drawer is a fixed cabinet with one sliding
link, because neither engine collides concave meshes faithfully; primitives collide the same way
in both engines.

Each factory is declared as an `ObjectKind` in `sim_envs.vocabulary`, which also gives every
object its name ("<colour> <kind>") and shape; a new kind of object is a factory here plus its
declaration there.
"""

from __future__ import annotations

import numpy as np

from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.scene_spec import (
    GeomSpec,
    JointSpec,
    ObjectSpec,
    Quat,
    Vec3,
    yaw_quat,
)

BLOCK_EDGES: dict[str, float] = {"small": 0.03, "medium": 0.04, "large": 0.05}  # m
BLOCK_CLEARANCE = 0.04  # m, radius a layout keeps clear around a block or cylinder
BOWL_RADIUS = 0.075  # m, outer radius of a bowl
BOWL_HEIGHT = 0.045  # m, rim height
_BOWL_WALL_SEGMENTS = 14
_DRAWER_WOOD = (0.62, 0.50, 0.36, 1.0)
_DRAWER_HANDLE = (0.15, 0.15, 0.15, 1.0)


def _identity(kind: str, color: str | None, name: str | None) -> dict[str, str]:
    """The name, kind, colour and shape of an object, as the vocabulary declares its kind."""
    # Imported here: the vocabulary imports this module to declare the built-in kinds.
    from corrigible.sim_envs.vocabulary import object_kind, object_name

    declared = object_kind(kind)
    color = color or declared.default_color or ""
    return {
        "name": name or object_name(color, kind),
        "kind": kind,
        "color": color,
        "shape": declared.shape,
    }


def make_block(
    color: str,
    pos_xy: tuple[float, float],
    *,
    yaw: float = 0.0,
    size_class: str = "medium",
    mass: float = 0.06,
    friction: float = 0.8,
    name: str | None = None,
) -> ObjectSpec:
    """A cube of the given palette colour resting on the table."""
    half = BLOCK_EDGES[size_class] / 2
    return ObjectSpec(
        **_identity("block", color, name),
        geoms=(GeomSpec(type="box", size=(half, half, half), rgba=COLORS[color]),),
        pos=(pos_xy[0], pos_xy[1], half),
        quat=yaw_quat(yaw),
        mass=mass,
        friction=friction,
        size_class=size_class,
    )


def make_cylinder(
    color: str,
    pos_xy: tuple[float, float],
    *,
    size_class: str = "medium",
    mass: float = 0.06,
    friction: float = 0.8,
    name: str | None = None,
) -> ObjectSpec:
    """An upright cylinder: same colour as a block can be, told apart only by its shape."""
    radius = BLOCK_EDGES[size_class] / 2
    half_h = radius * 1.25
    return ObjectSpec(
        **_identity("cylinder", color, name),
        geoms=(GeomSpec(type="cylinder", size=(radius, half_h, 0.0), rgba=COLORS[color]),),
        pos=(pos_xy[0], pos_xy[1], half_h),
        mass=mass,
        friction=friction,
        size_class=size_class,
    )


def make_bowl(
    color: str,
    pos_xy: tuple[float, float],
    *,
    mass: float = 0.4,
    friction: float = 0.8,
    name: str | None = None,
) -> ObjectSpec:
    """A shallow bowl: a base disc and a ring of wall segments, heavy enough not to tip."""
    rgba = COLORS[color]
    geoms = [
        GeomSpec(type="cylinder", size=(BOWL_RADIUS, 0.004, 0.0), pos=(0, 0, 0.004), rgba=rgba)
    ]
    wall_r = BOWL_RADIUS - 0.004
    half_len = np.pi * wall_r / _BOWL_WALL_SEGMENTS + 0.002
    for i in range(_BOWL_WALL_SEGMENTS):
        ang = 2 * np.pi * i / _BOWL_WALL_SEGMENTS
        geoms.append(
            GeomSpec(
                type="box",
                size=(0.004, half_len, BOWL_HEIGHT / 2),
                pos=(wall_r * np.cos(ang), wall_r * np.sin(ang), BOWL_HEIGHT / 2),
                quat=yaw_quat(ang),
                rgba=rgba,
            )
        )
    return ObjectSpec(
        **_identity("bowl", color, name),
        geoms=tuple(geoms),
        pos=(pos_xy[0], pos_xy[1], 0.0),
        mass=mass,
        friction=friction,
        size_class="large",
    )


# Drawer geometry, in the cabinet frame (origin on the table at the cabinet's centre; the
# drawer slides out along -x, towards the robot).
DRAWER_TRAVEL = 0.16  # m, fully open
DRAWER_INTERIOR = ((-0.085, 0.075), (-0.075, 0.075), (0.02, 0.09))  # link-frame box, m


def _box(center: Vec3, half: Vec3, rgba: tuple[float, float, float, float]) -> GeomSpec:
    return GeomSpec(type="box", size=half, pos=center, rgba=rgba)


def make_drawer(
    pos_xy: tuple[float, float],
    *,
    name: str = "drawer",
    handle_offset_y: float = 0.0,
    frictionloss: float = 0.5,
    quat: Quat = (1.0, 0.0, 0.0, 0.0),
) -> ObjectSpec:
    """A cabinet with one drawer that slides out along -x; `handle_offset_y` moves the handle."""
    wood, handle = _DRAWER_WOOD, _DRAWER_HANDLE
    cabinet = (
        _box((0.0, 0.0, 0.005), (0.10, 0.10, 0.005), wood),  # floor
        _box((0.0, 0.095, 0.05), (0.10, 0.005, 0.05), wood),  # left wall
        _box((0.0, -0.095, 0.05), (0.10, 0.005, 0.05), wood),  # right wall
        _box((0.095, 0.0, 0.05), (0.005, 0.09, 0.05), wood),  # back wall
        _box((0.0, 0.0, 0.0975), (0.10, 0.10, 0.0025), wood),  # top plate
    )
    hy = handle_offset_y
    link = (
        _box((-0.005, 0.0, 0.016), (0.085, 0.08, 0.004), wood),  # drawer bottom
        _box((-0.005, 0.077, 0.05), (0.085, 0.003, 0.03), wood),  # drawer side
        _box((-0.005, -0.077, 0.05), (0.085, 0.003, 0.03), wood),  # drawer side
        _box((0.077, 0.0, 0.05), (0.003, 0.074, 0.03), wood),  # drawer back
        _box((-0.095, 0.0, 0.05), (0.005, 0.089, 0.038), wood),  # front panel
        _box((-0.1275, hy + 0.035, 0.07), (0.0275, 0.005, 0.005), handle),  # post
        _box((-0.1275, hy - 0.035, 0.07), (0.0275, 0.005, 0.005), handle),  # post
        _box((-0.16, hy, 0.07), (0.006, 0.045, 0.006), handle),  # handle bar
    )
    return ObjectSpec(
        **_identity("drawer", None, name),
        geoms=cabinet,
        pos=(pos_xy[0], pos_xy[1], 0.0),
        quat=quat,
        mass=0.5,
        friction=0.8,
        fixed=True,
        joint=JointSpec(
            axis=(-1.0, 0.0, 0.0), range=(0.0, DRAWER_TRAVEL), frictionloss=frictionloss
        ),
        link_geoms=link,
        size_class="large",
    )
