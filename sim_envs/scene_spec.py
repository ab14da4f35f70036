"""The engine-neutral scene description that both physics backends build.

Everything physical about a scene lives here as plain dataclasses: shapes are primitive geoms
(box, cylinder, sphere) with local poses, so that a MuJoCo backend and a PyBullet backend can
build exactly the same bodies without either knowing about blocks, bowls or drawers.

Frames: world z is up, the table top is the plane z = 0 and the robot base sits at the origin.
Quaternions are (w, x, y, z) everywhere in corrigible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from corrigible.errors import ConfigError

GeomType = Literal["box", "cylinder", "sphere"]

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
Rgba = tuple[float, float, float, float]

IDENTITY_QUAT: Quat = (1.0, 0.0, 0.0, 0.0)


def yaw_quat(yaw: float) -> Quat:
    """Returns the (w, x, y, z) quaternion of a rotation by `yaw` radians about world z."""
    return (float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2)))


@dataclass(frozen=True, kw_only=True)
class GeomSpec:
    """One primitive collision-and-visual shape, posed in its body's frame."""

    type: GeomType
    # box: half extents (x, y, z) m; cylinder: (radius, half height, 0) m; sphere: (radius, 0, 0) m
    size: Vec3
    pos: Vec3 = (0.0, 0.0, 0.0)  # offset in the body frame, m
    quat: Quat = IDENTITY_QUAT  # orientation in the body frame, (w, x, y, z)
    rgba: Rgba = (0.5, 0.5, 0.5, 1.0)  # colour, each channel in [0, 1]

    def __post_init__(self) -> None:
        if self.type not in ("box", "cylinder", "sphere"):
            raise ConfigError(f"GeomSpec.type must be box, cylinder or sphere, got {self.type!r}")
        if any(s < 0 for s in self.size) or self.size[0] <= 0:
            raise ConfigError(f"GeomSpec.size must be positive half-extents, got {self.size}")


@dataclass(frozen=True, kw_only=True)
class JointSpec:
    """A single prismatic joint between a fixed base and one moving link (drawers)."""

    axis: Vec3  # unit axis in the base frame along which the link slides
    range: tuple[float, float]  # travel limits, m (0 = closed)
    damping: float = 2.0  # viscous damping, N*s/m
    frictionloss: float = 0.5  # dry friction, N


@dataclass(frozen=True, kw_only=True)
class ObjectSpec:
    """A scene object: a free rigid body, or a fixed base with one sliding link (a drawer).

    For a free body `geoms` is its shape and `mass` its total mass. For an articulated object
    `geoms` is the fixed base (no mass), `link_geoms` the moving link and `mass` the link's mass.
    """

    name: str  # unique, human-readable ("red block"); the key everywhere in corrigible
    # A kind declared in `sim_envs.vocabulary` ("block", "bowl", "drawer", ...; the layout
    # checks requests against it), or "other" for an object no vocabulary word names.
    kind: str
    color: str  # palette colour name ("red"), used by language and perception
    geoms: tuple[GeomSpec, ...]
    pos: Vec3  # body origin in the world, m
    quat: Quat = IDENTITY_QUAT  # body orientation in the world, (w, x, y, z)
    mass: float = 0.05  # kg (the moving link's mass for articulated objects)
    friction: float = 0.8  # sliding friction coefficient of this object's surfaces
    fixed: bool = False  # True: welded to the world (cabinets); False: free body
    joint: JointSpec | None = None  # set for articulated objects
    link_geoms: tuple[GeomSpec, ...] = ()  # the moving link's shapes (articulated only)
    size_class: str = "medium"  # "small" | "medium" | "large": words people use
    shape: str = "cube"  # what perception can see: the kind's declared shape ("cube", "bowl")

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("ObjectSpec.name must be a non-empty string")
        if self.mass <= 0:
            raise ConfigError(f"ObjectSpec.mass of {self.name!r} must be > 0 kg, got {self.mass}")
        if not 0 < self.friction <= 5:
            raise ConfigError(
                f"ObjectSpec.friction of {self.name!r} must be in (0, 5], got {self.friction}"
            )
        if (self.joint is None) != (not self.link_geoms):
            raise ConfigError(f"{self.name!r}: a joint needs link_geoms and vice versa")

    @property
    def is_articulated(self) -> bool:
        """True for objects with a moving link (drawers)."""
        return self.joint is not None

    def top_above_origin(self) -> float:
        """Height of the object's highest point above its body origin, m (its free shapes).

        A geom turned away from upright counts its largest half extent: an upper bound, which
        is what hovering over the object needs.
        """

        def half_up(g: GeomSpec) -> float:
            if tuple(g.quat) != IDENTITY_QUAT:
                return max(g.size)
            return {"box": g.size[2], "cylinder": g.size[1], "sphere": g.size[0]}[g.type]

        return max(g.pos[2] + half_up(g) for g in self.geoms)


@dataclass(frozen=True, kw_only=True)
class CameraSpec:
    """A fixed pinhole camera looking at a target point (OpenCV frame: x right, y down, z out)."""

    name: str = "front"
    pos: Vec3 = (0.95, 0.0, 1.25)  # m; above the far edge, looking back at the robot
    target: Vec3 = (0.50, 0.0, 0.0)  # point the optical axis passes through, m
    fovy_deg: float = 45.0  # vertical field of view, degrees
    width: int = 320  # px
    height: int = 240  # px
    near: float = 0.05  # clipping plane, m
    far: float = 3.0  # clipping plane, m

    def intrinsics(self) -> np.ndarray:
        """The 3x3 pinhole matrix K for this camera's image size and vertical field of view."""
        fy = 0.5 * self.height / np.tan(np.deg2rad(self.fovy_deg) / 2)
        return np.array(
            [[fy, 0.0, self.width / 2], [0.0, fy, self.height / 2], [0.0, 0.0, 1.0]],
            dtype=np.float64,
        )

    def pose(self) -> np.ndarray:
        """The 4x4 camera-to-world transform, OpenCV axes (z forward, y down)."""
        eye = np.asarray(self.pos, dtype=np.float64)
        forward = np.asarray(self.target, dtype=np.float64) - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
        return pose


@dataclass(frozen=True, kw_only=True)
class RobotSpec:
    """The arm: a URDF shipped in a wheel, its base pose, home posture and drive limits."""

    urdf: str = "franka_panda/panda.urdf"  # path relative to pybullet_data
    base_pos: Vec3 = (0.0, 0.0, 0.0)  # m
    arm_joints: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
    finger_joints: tuple[str, str] = ("panda_finger_joint1", "panda_finger_joint2")
    ee_link: str = "panda_grasptarget"  # the point between the fingertips we control
    home_q: tuple[float, ...] = (0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785)  # rad
    arm_kp: float = 4000.0  # position gain of the joint servos, N*m/rad
    arm_kv: float = 400.0  # damping of the joint servos, N*m*s/rad
    arm_torque_limits: tuple[float, ...] = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)  # N*m
    grip_force: float = 20.0  # force each finger squeezes with, N
    finger_friction: float = 1.0  # fingers' friction; contacts take the object's value
    finger_max_opening: float = 0.04  # per finger, m


@dataclass(frozen=True, kw_only=True)
class PhysicsSpec:
    """Integration settings shared by both engines (documented in sim_envs/README.md)."""

    timestep: float = 0.002  # s per physics step (500 Hz)
    substeps: int = 25  # physics steps per control step: control runs at 20 Hz
    gravity: Vec3 = (0.0, 0.0, -9.81)  # m/s^2
    torsional_friction: float = 0.005  # spinning friction of every contact, m
    rolling_friction: float = 0.0001  # rolling friction of objects (and fingers in MuJoCo), m

    @property
    def control_dt(self) -> float:
        """Seconds of simulated time per control step (one `env.step`)."""
        return self.timestep * self.substeps


@dataclass(frozen=True, kw_only=True)
class SceneSpec:
    """Everything a backend needs to build a scene; produced by `sim_envs.layout`."""

    objects: tuple[ObjectSpec, ...]
    robot: RobotSpec = field(default_factory=RobotSpec)
    camera: CameraSpec = field(default_factory=CameraSpec)
    physics: PhysicsSpec = field(default_factory=PhysicsSpec)
    table_size: Vec3 = (0.5, 0.7, 0.02)  # half extents of the table top, m
    table_center: Vec3 = (0.5, 0.0, -0.02)  # centre of the table top box, m
    table_friction: float = 1.0
    table_rgba: tuple[float, float, float, float] = (0.82, 0.78, 0.70, 1.0)  # light wood
    seed: int | None = None  # the layout seed this scene came from, for provenance

    def __post_init__(self) -> None:
        names = [o.name for o in self.objects]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ConfigError(f"SceneSpec object names must be unique; repeated: {sorted(dupes)}")

    def object_kind(self, name: str) -> str | None:
        """The kind of the object called `name`, or None when there is none."""
        return next((o.kind for o in self.objects if o.name == name), None)

    def object(self, name: str) -> ObjectSpec:
        """Returns the object called `name` (exact match)."""
        for obj in self.objects:
            if obj.name == name:
                return obj
        from corrigible.errors import UnknownObjectError, did_you_mean

        raise UnknownObjectError(
            f"no object named {name!r} in the scene; objects: {[o.name for o in self.objects]}."
            + did_you_mean(name, [o.name for o in self.objects])
        )
