"""Engine-neutral description of the textured evaluation street, its route and its traversals.

A `RouteConfig` (from YAML) seeds a `RouteScene`: a gently curving path lined on both sides by
box panels, each with a procedural texture (checker, gradient or random marks) and a colour
tint, over a checker floor. A traversal samples camera poses along the path at a fixed rate,
with its own smooth speed, lateral offset and yaw wobble so that no two traversals see exactly
the same images. A backend (`corrigible.sim_envs.backends.mujoco_route_renderer`) turns the
scene into an engine model and renders frames at the poses.

Frames: world x/y on the floor, z up; yaw in radians counter-clockwise from +x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from corrigible.errors import ConfigError

TEXTURE_KINDS: tuple[str, ...] = ("checker", "gradient", "random", "edge", "cross")


@dataclass(kw_only=True)
class RouteConfig:
    """A route through a seeded textured street, and how a traversal wobbles along it."""

    name: str  # label used in results, e.g. "test"
    seed: int  # seeds the scene layout and textures
    length_m: float = 30.0  # path length, m
    speed_mps: float = 1.0  # mean camera speed, m/s
    heading_amplitude_deg: float = 25.0  # amplitude of the path's heading wiggle, degrees
    heading_wavelength_m: float = 18.0  # wavelength of the heading wiggle, m
    street_half_width_m: float = 1.6  # distance from the path to the nearest panel face, m
    panel_length_m: tuple[float, float] = (0.5, 1.5)  # panel length range, m
    panel_height_m: tuple[float, float] = (0.8, 2.6)  # panel height range, m
    n_textures: int = 16  # distinct procedural textures in the scene
    camera_height_m: float = 0.9  # camera height above the floor, m
    camera_yaw_deg: float = -50.0  # camera yaw relative to the travel direction (+ = left), deg
    camera_pitch_deg: float = -8.0  # camera pitch (+ = up), degrees
    camera_fovy_deg: float = 50.0  # vertical field of view, degrees
    speed_jitter: float = 0.15  # relative amplitude of speed variations between traversals
    lateral_jitter_m: float = 0.15  # amplitude of lateral offsets between traversals, m
    yaw_jitter_deg: float = 2.0  # amplitude of camera yaw wobble, degrees

    def __post_init__(self) -> None:
        positive = ("length_m", "speed_mps", "heading_wavelength_m", "street_half_width_m")
        for name in (*positive, "camera_height_m", "camera_fovy_deg"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"route.{name}={value!r} must be > 0.")
        for name in ("panel_length_m", "panel_height_m"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"route.{name}={(lo, hi)!r} must satisfy 0 < min <= max.")
            setattr(self, name, (float(lo), float(hi)))
        if not 1 <= self.n_textures <= 64:
            raise ConfigError(f"route.n_textures={self.n_textures!r} must be in 1..64.")
        if not 0 <= self.speed_jitter < 0.9:
            raise ConfigError(f"route.speed_jitter={self.speed_jitter!r} must be in [0, 0.9).")


@dataclass(frozen=True, kw_only=True)
class TextureSpec:
    """A procedural texture: a builtin pattern between two colours."""

    kind: str  # one of TEXTURE_KINDS
    rgb1: tuple[float, float, float]  # first colour, 0..1
    rgb2: tuple[float, float, float]  # second colour, 0..1
    random_fraction: float  # density of random marks (only for kind "random")
    size_px: int  # texture width/height in texels


@dataclass(frozen=True, kw_only=True)
class PanelSpec:
    """A textured box standing on the floor beside the path."""

    center: tuple[float, float, float]  # box centre, m
    half_size: tuple[float, float, float]  # half extents along its own x (length), y, z, m
    yaw: float  # rotation about z, rad
    texture: int  # index into RouteScene.textures
    texrepeat: tuple[float, float]  # texture repetitions across the face
    rgba: tuple[float, float, float, float]  # material tint


@dataclass(kw_only=True)
class RouteScene:
    """The street: path samples, panels and textures. Engine-neutral."""

    path_xy: np.ndarray  # (n, 2) path points every `path_step_m`, m
    path_heading: np.ndarray  # (n,) heading at each path point, rad
    path_step_m: float  # spacing of path samples, m
    panels: list[PanelSpec] = field(default_factory=list)
    textures: list[TextureSpec] = field(default_factory=list)
    camera_fovy_deg: float = 50.0  # vertical field of view, degrees

    def pose_at(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Path point and heading at arc lengths `s_m` (linear interpolation)."""
        grid = np.arange(len(self.path_heading)) * self.path_step_m
        x = np.interp(s_m, grid, self.path_xy[:, 0])
        y = np.interp(s_m, grid, self.path_xy[:, 1])
        heading = np.interp(s_m, grid, np.unwrap(self.path_heading))
        return x, y, heading


@dataclass(frozen=True, kw_only=True)
class Traversal:
    """Camera poses of one traversal, sampled at `fps`."""

    t_s: np.ndarray  # (n,) frame times, s
    s_m: np.ndarray  # (n,) arc length along the path, m
    xyz: np.ndarray  # (n, 3) camera position, m
    yaw: np.ndarray  # (n,) camera yaw, rad
    pitch: float  # camera pitch, rad
    fps: float  # frame rate, Hz


def build_scene(cfg: RouteConfig) -> RouteScene:
    """Lays out the street for a route deterministically from its seed."""
    rng = np.random.default_rng(cfg.seed)
    step = 0.05
    n = int(math.ceil((cfg.length_m + 4.0) / step)) + 1
    s = np.arange(n) * step - 2.0  # start 2 m before the route so panels surround the start
    phase = rng.uniform(0, 2 * math.pi)
    heading = math.radians(cfg.heading_amplitude_deg) * np.sin(
        2 * math.pi * s / cfg.heading_wavelength_m + phase
    )
    xy = np.zeros((n, 2))
    xy[1:, 0] = np.cumsum(np.cos(heading[:-1]) * step)
    xy[1:, 1] = np.cumsum(np.sin(heading[:-1]) * step)
    xy -= xy[int(round(2.0 / step))]  # route starts at the origin
    textures = [_random_texture(rng, i) for i in range(cfg.n_textures)]
    panels: list[PanelSpec] = []
    for side in (+1.0, -1.0):
        pos = 0.0
        while pos < s[-1] - s[0]:
            length = rng.uniform(*cfg.panel_length_m)
            height = rng.uniform(*cfg.panel_height_m)
            mid = pos + length / 2
            k = min(int(mid / step), n - 1)
            hx, hy = math.cos(heading[k]), math.sin(heading[k])
            normal = np.array([-hy, hx]) * side
            depth = 0.05 + rng.uniform(0.0, 0.25)
            offset = cfg.street_half_width_m + rng.uniform(0.0, 0.5) + depth
            cx, cy = xy[k] + normal * offset
            shade = rng.uniform(0.55, 1.0)
            panels.append(
                PanelSpec(
                    center=(float(cx), float(cy), height / 2),
                    half_size=(length / 2, depth, height / 2),
                    yaw=float(heading[k]),
                    texture=int(rng.integers(len(textures))),
                    texrepeat=(float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.5, 3.0))),
                    rgba=(shade, shade, shade, 1.0),
                )
            )
            pos += length + rng.uniform(0.0, 0.3)
    return RouteScene(
        path_xy=xy[int(round(2.0 / step)) :],
        path_heading=heading[int(round(2.0 / step)) :],
        path_step_m=step,
        panels=panels,
        textures=textures,
        camera_fovy_deg=cfg.camera_fovy_deg,
    )


def _random_texture(rng: np.random.Generator, index: int) -> TextureSpec:
    kind = TEXTURE_KINDS[index % len(TEXTURE_KINDS)]
    dark = tuple(float(v) for v in rng.uniform(0.0, 0.3, 3))
    light = tuple(float(v) for v in rng.uniform(0.6, 1.0, 3))
    return TextureSpec(
        kind=kind,
        rgb1=light,  # type: ignore[arg-type]
        rgb2=dark,  # type: ignore[arg-type]
        random_fraction=float(rng.uniform(0.05, 0.3)),
        size_px=int(rng.choice([32, 64, 128])),
    )


def traversal(cfg: RouteConfig, scene: RouteScene, *, seed: int, fps: float) -> Traversal:
    """Samples one traversal's camera poses at `fps`, with its own seeded wobble.

    Speed, lateral offset and yaw each follow a sum of two slow sinusoids with random phases,
    so the motion is smooth (no frame-to-frame jumps the emulator would turn into bursts).
    """
    rng = np.random.default_rng(seed)
    duration = cfg.length_m / (cfg.speed_mps * (1 - cfg.speed_jitter)) + 1.0
    t = np.arange(int(duration * fps) + 1) / fps

    def wobble(period_s: float) -> np.ndarray:
        p1, p2 = rng.uniform(0, 2 * math.pi, 2)
        return 0.6 * np.sin(2 * math.pi * t / period_s + p1) + 0.4 * np.sin(
            2 * math.pi * t / (0.37 * period_s) + p2
        )

    speed = cfg.speed_mps * (1 + cfg.speed_jitter * wobble(9.0))
    lateral = cfg.lateral_jitter_m * wobble(7.0)
    yaw_wobble = math.radians(cfg.yaw_jitter_deg) * wobble(5.0)
    s = np.concatenate([[0.0], np.cumsum(speed[:-1] / fps)])
    keep = s <= cfg.length_m
    t, s, lateral, yaw_wobble = t[keep], s[keep], lateral[keep], yaw_wobble[keep]
    x, y, heading = scene.pose_at(s)
    xyz = np.stack(
        [
            x - np.sin(heading) * lateral,
            y + np.cos(heading) * lateral,
            np.full_like(x, cfg.camera_height_m),
        ],
        axis=1,
    )
    yaw = heading + math.radians(cfg.camera_yaw_deg) + yaw_wobble
    return Traversal(
        t_s=t, s_m=s, xyz=xyz, yaw=yaw, pitch=math.radians(cfg.camera_pitch_deg), fps=fps
    )


@dataclass(kw_only=True)
class LightingConfig:
    """A lighting condition: a piecewise-linear gain on linear intensity over time."""

    name: str  # e.g. "low"
    points: list[tuple[float, float]]  # [(t_s, gain), ...]; held constant outside the points

    def __post_init__(self) -> None:
        if not self.points:
            raise ConfigError(f"lighting {self.name!r}: points must hold at least one [t, gain].")
        self.points = [(float(t), float(g)) for t, g in self.points]
        times = [t for t, _ in self.points]
        if any(b < a for a, b in zip(times, times[1:], strict=False)):
            raise ConfigError(f"lighting {self.name!r}: times {times} must not decrease.")
        if any(g <= 0 for _, g in self.points):
            raise ConfigError(f"lighting {self.name!r}: gains must be > 0, got {self.points}.")

    def gain(self, t_s: np.ndarray | float) -> np.ndarray:
        """Gain at times `t_s` (multiplies linear intensity)."""
        times = [t for t, _ in self.points]
        gains = [g for _, g in self.points]
        return np.interp(t_s, times, gains)
