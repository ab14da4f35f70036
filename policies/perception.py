"""Camera perception: colour segmentation plus metric depth to object names and 3-D positions.

Every pixel is lifted to the world with the camera's intrinsics, pose and depth; pixels a few
millimetres above the table inside the workspace are foreground. Each foreground pixel takes
the nearest palette colour (brightness-normalised RGB plus value, so shading matters little);
connected regions of one colour become objects. A region wider than 10 cm is a bowl; a compact
one is a block or a cylinder, told apart by how much of its bounding square it fills. Positions
are the centroid of the region's top surface, lowered by half the object's measured height.

The camera tells shapes apart ("bowl", "cube", "cylinder"); `sim_envs.vocabulary` says which
kind has that shape and how its objects are named ("red block"). A newly registered kind is seen
by the camera only if `_describe` gets a geometric rule for its shape (otherwise its regions
read as one of the shapes above); privileged perception (`PrivilegedLocator`) sees every kind.

This is the default for programs and evaluations; privileged state is an explicit option.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.vocabulary import noun_of_shape, object_name, shape_of_kind

_NAMES = list(COLORS)
_BOWL_WALL_RADIUS = 0.071  # m, from sim_envs.objects.BOWL_RADIUS minus the wall half-thickness
# A detection with fewer than this share of the pixels an earlier one had at the same place
# (within `_SAME_PLACE_M`, m) is partly hidden, and the earlier pose is kept.
_PARTLY_HIDDEN = 0.8
_SAME_PLACE_M = 0.02
# Where a remembered object's top was, the camera sees nothing higher than this much (m) below
# that top: it is gone (a block is 4 cm tall; the gripper hides it from above, never lowers it).
_SEEN_LOWER_M = 0.015
_PALETTE = np.array([COLORS[c][:3] for c in _NAMES])


def _features(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    value = rgb.max(axis=-1, keepdims=True)
    return np.concatenate([rgb / np.maximum(value, 1e-3), 0.6 * value], axis=-1)


_PALETTE_FEATURES = _features(_PALETTE)


@dataclass(frozen=True)
class Detection:
    """One perceived object."""

    name: str  # "<colour> <kind>", e.g. "red block"
    color: str
    kind: str  # the kind of the perceived shape: "block" | "cylinder" | "bowl"
    position: np.ndarray  # centre, world frame, m
    bbox: np.ndarray  # (x_min, y_min, z_min, x_max, y_max, z_max), world frame, m
    pixels: int  # region size in the image
    pixel_bbox: tuple[int, int, int, int]  # (u0, v0, u1, v1) for crops
    yaw: float = 0.0  # rad, orientation of a block's top face modulo 90 degrees


@dataclass(frozen=True, kw_only=True)
class PerceptionConfig:
    """Thresholds of the segmentation."""

    region_x: tuple[float, float] = (0.25, 0.80)  # m, world x range considered
    region_y: tuple[float, float] = (-0.34, 0.40)  # m, world y range (the cabinet is outside)
    min_height: float = 0.006  # m above the table to count as an object
    max_height: float = 0.22  # m; higher pixels are the robot
    min_pixels: int = 12  # smaller regions are noise
    max_color_distance: float = 0.35  # in feature space; farther pixels are unlabelled
    bowl_width: float = 0.10  # m; wider regions are bowls
    cylinder_fill: float = 0.90  # top faces filling less of their bounding rectangle are round
    width: int = 640  # px, perception render size (blocks span ~20 px)
    height: int = 480  # px


def backproject(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    cam_pose: np.ndarray,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """World coordinates (H, W, 3) of every pixel from metric depth along the optical axis.

    `origin` is the (u, v) pixel of `depth[0, 0]` when `depth` is a crop of the image.
    """
    h, w = depth.shape
    u, v = np.meshgrid(
        np.arange(w, dtype=np.float64) + 0.5 + origin[0],
        np.arange(h, dtype=np.float64) + 0.5 + origin[1],
    )
    z = depth.astype(np.float64)
    x = (u - intrinsics[0, 2]) / intrinsics[0, 0] * z
    y = (v - intrinsics[1, 2]) / intrinsics[1, 1] * z
    cam = np.stack([x, y, z], axis=-1)
    return cam @ cam_pose[:3, :3].T + cam_pose[:3, 3]


def detect_objects(
    rgb: np.ndarray,
    depth: np.ndarray,
    intrinsics: np.ndarray,
    cam_pose: np.ndarray,
    config: PerceptionConfig | None = None,
) -> list[Detection]:
    """Finds the coloured blocks, cylinders and bowls in one RGB-D frame."""
    cfg = config or PerceptionConfig()
    xyz = backproject(depth, intrinsics, cam_pose)
    fg = (
        (xyz[..., 2] > cfg.min_height)
        & (xyz[..., 2] < cfg.max_height)
        & (xyz[..., 0] > cfg.region_x[0])
        & (xyz[..., 0] < cfg.region_x[1])
        & (xyz[..., 1] > cfg.region_y[0])
        & (xyz[..., 1] < cfg.region_y[1])
    )
    # Classify colours only where there is something above the table (a few % of the image).
    label = np.full(fg.shape, -1, dtype=np.int16)
    feats = _features(rgb[fg].astype(np.float32) / 255.0)
    dist = np.linalg.norm(feats[:, None, :] - _PALETTE_FEATURES[None], axis=-1)
    nearest = dist.argmin(axis=-1)
    label[fg] = np.where(dist.min(axis=-1) < cfg.max_color_distance, nearest, -1)
    label_ok = label >= 0
    found: dict[str, Detection] = {}
    for ci, color in enumerate(_NAMES):
        mask = (label_ok & (label == ci)).astype(np.uint8)
        if mask.sum() < cfg.min_pixels:
            continue
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < cfg.min_pixels:
                continue
            pts = xyz[comp == k]
            det = _describe(color, pts, stats[k], cfg)
            if det is None:
                continue
            if _is_bowl(det):
                inside = _same_colour_inside(det, xyz, comp == k, cfg)
                if inside is not None and inside.name not in found:
                    found[inside.name] = inside
            key = det.name
            if key in found:  # keep the larger region of a duplicated name
                if found[key].pixels >= det.pixels:
                    continue
            found[key] = det
    return sorted(_suppress_side_faces(list(found.values())), key=lambda d: d.name)


# Inside a bowl, pixels this far from its centre are clear of the wall's inner face (m), and
# pixels this high above the table stand on its floor (the floor is 8 mm thick, a block 40 mm).
_BOWL_INNER_RADIUS = 0.062
_RAISED_IN_BOWL = 0.02


def _same_colour_inside(
    bowl: Detection, xyz: np.ndarray, region: np.ndarray, cfg: PerceptionConfig
) -> Detection | None:
    """An object of the bowl's own colour lying in it ("put blocks in matching bowls").

    Colour alone merges it into the bowl's region; depth tells it apart: inside the wall,
    the floor is flat and low, so a compact raised patch there is an object on the floor.
    """
    dxy = np.linalg.norm(xyz[..., :2] - bowl.position[:2], axis=-1)
    mask = region & (dxy < _BOWL_INNER_RADIUS) & (xyz[..., 2] > _RAISED_IN_BOWL)
    if int(mask.sum()) < cfg.min_pixels:
        return None
    vs, us = np.nonzero(mask)
    stat = np.array([us.min(), vs.min(), us.max() - us.min() + 1, vs.max() - vs.min() + 1, len(us)])
    det = _describe(bowl.color, xyz[mask], stat, cfg)
    return None if det is None or _is_bowl(det) else det


def _is_bowl(det: Detection) -> bool:
    """Whether a detection is a bowl-shaped region (a wide ring, not a compact top)."""
    return shape_of_kind(det.kind) == "bowl"


def _suppress_side_faces(dets: list[Detection]) -> list[Detection]:
    """Drops small regions hugging a bigger compact object.

    Shaded side faces of a block read as a darker colour (orange as brown), but they sit within
    a block's width of its top.
    """
    bowls: list[Detection] = []
    for bowl in sorted((d for d in dets if _is_bowl(d)), key=lambda d: -d.pixels):
        # Two bowls cannot overlap: the smaller region is the other's shaded wall.
        if all(np.linalg.norm(b.position[:2] - bowl.position[:2]) > 0.1 for b in bowls):
            bowls.append(bowl)
    compact = sorted((d for d in dets if not _is_bowl(d)), key=lambda d: -d.pixels)
    kept: list[Detection] = list(bowls)
    for det in compact:
        # The shaded inside of a bowl's wall reads as a darker colour (yellow as brown).
        if any(
            abs(np.linalg.norm(b.position[:2] - det.position[:2]) - _BOWL_WALL_RADIUS) < 0.02
            for b in bowls
        ):
            continue
        if any(
            not _is_bowl(k) and np.linalg.norm(k.position[:2] - det.position[:2]) < 0.035
            for k in kept
        ):
            continue
        kept.append(det)
    return kept


def _describe(
    color: str, pts: np.ndarray, stat: np.ndarray, cfg: PerceptionConfig
) -> Detection | None:
    lo, hi = np.percentile(pts, 3, axis=0), np.percentile(pts, 97, axis=0)
    width = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    top = float(np.percentile(pts[:, 2], 95))
    u0, v0 = int(stat[cv2.CC_STAT_LEFT]), int(stat[cv2.CC_STAT_TOP])
    pixel_bbox = (u0, v0, u0 + int(stat[cv2.CC_STAT_WIDTH]), v0 + int(stat[cv2.CC_STAT_HEIGHT]))
    yaw = 0.0
    if width > cfg.bowl_width:
        narrow = float(min(hi[0] - lo[0], hi[1] - lo[1]))
        if narrow < 0.6 * width:
            return None  # a crescent of shaded bowl wall, not a bowl of its own
        shape = "bowl"
        center = (lo[:2] + hi[:2]) / 2
        position = np.array([center[0], center[1], 0.0])
    else:
        top_pts = pts[pts[:, 2] > top - 0.004]
        xy = top_pts[:, :2].mean(axis=0)
        # How much of its minimum-area rectangle the top face's hull fills: a square ~1, a
        # disc pi/4 (measured at 640x480: blocks >= 0.93, cylinders <= 0.86 in both engines).
        scaled = top_pts[:, :2].astype(np.float32) * 1000
        hull = cv2.convexHull(scaled)
        (_, _), (w_rect, h_rect), angle = cv2.minAreaRect(scaled)
        if min(w_rect, h_rect) < 1e-3 or max(w_rect, h_rect) / min(w_rect, h_rect) > 2.5:
            return None  # a sliver (an edge or a seam), not an object
        fill = float(cv2.contourArea(hull) / (w_rect * h_rect))
        shape = "cylinder" if fill < cfg.cylinder_fill else "cube"
        # Centre height from the top down, so stacked objects are right too: a cube is as tall
        # as it is wide; the cylinders here are 1.25 diameters tall (an assumption, documented).
        face = float(np.mean([w_rect, h_rect])) / 1000 + 0.004  # + half a pixel on each side
        half_height = face / 2 if shape == "cube" else 0.625 * face
        yaw = (
            float((np.deg2rad(angle) + np.pi / 4) % (np.pi / 2) - np.pi / 4)
            if shape == "cube"
            else 0.0
        )
        position = np.array([xy[0], xy[1], max(top - half_height, top / 2)])
    bbox = np.array([lo[0], lo[1], 0.0, hi[0], hi[1], top])
    kind = noun_of_shape(shape)
    return Detection(
        name=object_name(color, kind),
        color=color,
        kind=kind,
        position=position,
        bbox=bbox,
        pixels=int(len(pts)),
        pixel_bbox=pixel_bbox,
        yaw=yaw,
    )


class ObjectLocator:
    """Where skills aim: object name -> (position m, yaw rad). Privileged or camera-based."""

    source: str = "abstract"

    def pose(self, name: str) -> tuple[np.ndarray, float]:
        """Position and yaw of `name` now."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """The objects this locator can see now."""
        raise NotImplementedError

    def detections(self) -> dict[str, Detection]:
        """Everything detected now (camera locators only; privileged returns {})."""
        return {}

    def placed(self, name: str, position: np.ndarray) -> None:
        """Told by the place skill where the hand set `name` down (a belief until seen)."""

    def picked(self, name: str) -> None:
        """Told by the pick skill that the hand holds `name` (kept known while it is carried)."""


def _yaw_of_quat(q: np.ndarray) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


class PrivilegedLocator(ObjectLocator):
    """Ground-truth poses from the simulator: an explicit option, never the default."""

    source = "privileged"

    def __init__(self, backend: object) -> None:
        self.backend = backend

    def pose(self, name: str) -> tuple[np.ndarray, float]:
        """Ground-truth position and yaw of `name` from the simulator."""
        poses = self.backend.object_poses()
        if name not in poses:
            from corrigible.errors import UnknownObjectError, did_you_mean

            raise UnknownObjectError(
                f"no object {name!r}; objects: {sorted(poses)}." + did_you_mean(name, poses)
            )
        pos, quat = poses[name]
        return pos.copy(), _yaw_of_quat(quat)

    def names(self) -> list[str]:
        """All objects in the simulator, sorted."""
        return sorted(self.backend.object_poses())


class CameraLocator(ObjectLocator):
    """Poses from the fixed RGB-D camera, re-perceived whenever simulated time has advanced.

    Args:
        backend: renders the camera.
        camera: the camera to render (perception renders it at `config.width` x `config.height`).
        config: segmentation thresholds.
        bias: a constant offset (m) added to every perceived position: a miscalibrated camera.
    """

    source = "camera"

    def __init__(
        self,
        backend: object,
        camera: object,
        config: PerceptionConfig | None = None,
        bias: np.ndarray | None = None,
    ) -> None:
        from dataclasses import replace

        self.backend = backend
        self.config = config or PerceptionConfig()
        self.camera = replace(camera, width=self.config.width, height=self.config.height)
        self.bias = np.zeros(3) if bias is None else np.asarray(bias, dtype=np.float64)
        self._cache_time: float | None = None
        self._cache: dict[str, Detection] = {}
        self._remembered: dict[str, Detection] = {}
        self._last_seen: dict[str, Detection] = {}  # never forgotten: shape and size for `placed`
        self._held: set[str] = set()  # in the hand: its old place is empty, yet it is here
        self._full_view: dict[str, Detection] = {}  # the most complete view at its place
        self.frames = 0

    def detections(self) -> dict[str, Detection]:
        """Objects seen now, plus objects seen before and hidden now.

        Object permanence: the arm hides what lies under it; an object seen again replaces its
        remembered pose.
        """
        self._refresh()
        return {**self._remembered, **self._cache}

    def visible(self) -> dict[str, Detection]:
        """Only the objects the camera sees in the latest frame."""
        self._refresh()
        return self._cache

    def _refresh(self) -> None:
        now = self.backend.time
        if self._cache_time != now:
            rgb, depth = self.backend.render(self.camera)
            dets = detect_objects(
                rgb, depth, self.camera.intrinsics(), self.camera.pose(), self.config
            )
            self._remembered.update(self._cache)
            self._cache = {d.name: self._fuller_view(d) for d in dets}
            self._last_seen.update(self._cache)
            self._cache_time = now
            self.frames += 1
            self._forget_seen_through(depth)

    def _fuller_view(self, det: Detection) -> Detection:
        """`det`, or the fuller view of it seen before when the arm now hides part of it.

        A region the arm partly covers has its centroid pulled towards the visible part (a
        block on a block, with the carrying arm over it, read 1 cm off: the next block was
        set on its edge and fell). An object seen at the same place (within
        `_SAME_PLACE_M`) with clearly more pixels before keeps that earlier pose.
        """
        full = self._full_view.get(det.name)
        if (
            full is not None
            and float(np.linalg.norm(full.position[:2] - det.position[:2])) < _SAME_PLACE_M
            and det.pixels < _PARTLY_HIDDEN * full.pixels
        ):
            return full
        self._full_view[det.name] = det
        return det

    def placed(self, name: str, position: np.ndarray) -> None:
        """Remembers `name` where the hand released it, until the camera sees it again.

        Right after a place the hand hovers over the object and hides it, while the object's
        old place is now in plain view (so `_forget_seen_through` drops the old pose): the
        release point is what the robot knows, as a real arm knows it from its own motion.
        """
        from dataclasses import replace

        self._held.discard(name)
        old = self._cache.get(name) or self._remembered.get(name) or self._last_seen.get(name)
        if old is None:
            return
        shift = np.asarray(position, dtype=np.float64) - old.position
        self._cache.pop(name, None)
        self._remembered[name] = replace(
            old,
            position=np.asarray(position, dtype=np.float64),
            bbox=old.bbox + np.concatenate([shift, shift]),
        )
        # Until the camera sees it whole again, a partial view of it there is not trusted over
        # where the hand set it (`_fuller_view`).
        self._full_view[name] = self._remembered[name]

    def picked(self, name: str) -> None:
        """Keeps `name` known while the hand carries it (its old place is seen empty).

        Until `placed`, the remembered pose is where it was picked from: aiming at a carried
        object is the arm's business, and programs only need to know it is still there.
        """
        self._held.add(name)
        if name not in self._remembered and name in self._last_seen:
            self._remembered[name] = self._last_seen[name]

    def _forget_seen_through(self, depth: np.ndarray) -> None:
        """Forgets remembered objects whose place the camera now sees to be lower.

        Object permanence is for what the arm hides. When the camera, looking at a remembered
        object's top, sees only surfaces well below that top, nothing stands there any more:
        it was moved (into a bowl of its own colour, or picked up and put elsewhere while the
        hand hid it) or it was never an object (the gripper's grey fingers seen for a moment),
        and planning with the old pose would be planning with a ghost.
        """
        hidden = [n for n in self._remembered if n not in self._cache and n not in self._held]
        if not hidden:
            return
        pose, k = self.camera.pose(), self.camera.intrinsics()
        h, w = depth.shape
        for name in hidden:
            det = self._remembered[name]
            top = np.array([det.position[0], det.position[1], det.bbox[5]], dtype=np.float64)
            cam = pose[:3, :3].T @ (top - pose[:3, 3])
            if cam[2] <= 0:
                continue
            u = int(k[0, 0] * cam[0] / cam[2] + k[0, 2])
            v = int(k[1, 1] * cam[1] / cam[2] + k[1, 2])
            if not (2 <= u < w - 2 and 2 <= v < h - 2):
                continue  # out of view: keep what was seen
            window = backproject(
                depth[v - 2 : v + 3, u - 2 : u + 3], k, pose, origin=(u - 2, v - 2)
            )
            if float(window[..., 2].max()) < top[2] - _SEEN_LOWER_M:
                del self._remembered[name]

    def pose(self, name: str) -> tuple[np.ndarray, float]:
        """Perceived position (plus `bias`) and yaw of `name`, seen now or remembered."""
        dets = self.detections()
        if name not in dets:
            from corrigible.errors import UnknownObjectError, did_you_mean

            raise UnknownObjectError(
                f"the camera does not see {name!r} now; it sees {sorted(dets)}."
                + did_you_mean(name, dets)
            )
        det = dets[name]
        return det.position + self.bias, det.yaw

    def names(self) -> list[str]:
        """Objects seen now or remembered, sorted."""
        return sorted(self.detections())
