"""PyBullet camera images: the arm drawn with its low-poly meshes, camera matrices computed once.

Why it is fast enough: TinyRenderer (PyBullet's CPU rasteriser) transforms every triangle of
every visual shape on every image. The Panda URDF in pybullet_data draws links 1-6 and the hand
with its detailed "visual" meshes, about 100,000 triangles in all; at 320x240 those cost as much
as shading all the pixels, so an image took ~28 ms. The MuJoCo backend already draws the arm
with the URDF's collision meshes (`discardvisual`), about 3,400 triangles, so `render_urdf`
gives PyBullet the same meshes to draw: the two engines' images of the arm now agree, and a
320x240 image costs half as much. The collision shapes, inertias and joints are untouched, so
physics does not change; only `<visual>` elements are rewritten.

Also tried, and rejected on this CPU-only machine: PyBullet's EGL renderer plugin
(`eglRenderer`, Mesa llvmpipe) spends ~20 ms per image whatever the size (it draws a full
window, then reads it back), no faster than TinyRenderer on the low-poly arm, and its lighting
would change the colours perception thresholds were tuned on. Nothing here reads PyBullet's
segmentation mask, so it is not computed (`ER_NO_SEGMENTATION_MASK`: 3% of a render's CPU time,
RGB and depth bit-identical).
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as pb

from corrigible.errors import BackendError
from corrigible.sim_envs.scene_spec import CameraSpec

# Light direction TinyRenderer shades with (world frame, towards the light); the colours
# perception's thresholds were tuned on come from this light and PyBullet's default coefficients.
LIGHT_DIRECTION = (0.3, 0.2, 1.0)
_VISUAL_BLOCK = re.compile(r"<visual>.*?</visual>", re.S)
_MESH_FILE = re.compile(r'filename="([^"]+)"')

_lock = threading.Lock()
_render_urdfs: dict[Path, Path] = {}  # source URDF -> rewritten copy, one per process
_tmpdir: Path | None = None


def _cleanup() -> None:
    if _tmpdir is not None:
        shutil.rmtree(_tmpdir, ignore_errors=True)


def low_poly_urdf_text(source: Path) -> str:
    """The URDF text of `source` with each visual mesh replaced by its collision counterpart.

    A `<visual>` mesh `.../visual/NAME.obj` becomes `.../collision/NAME.obj` when that file
    exists (otherwise it is kept), and `package://` paths become absolute, so the copy loads
    from any folder.

    Raises:
        BackendError: the URDF cannot be read.
    """
    try:
        text = source.read_text()
    except OSError as exc:
        raise BackendError(
            f"cannot read the robot URDF {source}: {exc}; reinstall pybullet (it ships the Panda)"
        ) from exc
    root = source.parent

    def swap(match: re.Match[str]) -> str:
        def one(mesh: re.Match[str]) -> str:
            name = mesh.group(1)
            low = name.replace("/visual/", "/collision/")
            if low != name and (root / low.removeprefix("package://")).is_file():
                name = low
            return f'filename="{name}"'

        return _MESH_FILE.sub(one, match.group(0))

    text = _VISUAL_BLOCK.sub(swap, text)
    return text.replace("package://", f"{root.as_posix()}/")


def render_urdf(source: Path) -> Path:
    """A copy of the robot URDF whose visuals are the low-poly collision meshes (cached).

    The copy lives in a private temporary folder removed when the process exits; PyBullet
    reads it once per `loadURDF`.
    """
    global _tmpdir
    source = Path(source).resolve()
    with _lock:
        cached = _render_urdfs.get(source)
        if cached is not None and cached.is_file():
            return cached
        if _tmpdir is None or not _tmpdir.is_dir():
            _tmpdir = Path(tempfile.mkdtemp(prefix="corrigible-urdf-"))
            atexit.register(_cleanup)
        target = _tmpdir / f"{len(_render_urdfs)}_{source.name}"
        target.write_text(low_poly_urdf_text(source))
        _render_urdfs[source] = target
        return target


@dataclass(frozen=True)
class _CameraMatrices:
    """What TinyRenderer needs for one camera, computed once (the camera never moves)."""

    view: tuple[float, ...]
    proj: tuple[float, ...]


class TinyCamera:
    """Renders RGB and metric depth through TinyRenderer for any number of fixed cameras.

    View and projection matrices are computed once per `CameraSpec` (a frozen dataclass, hence
    a dictionary key) instead of twice per image through the physics client.
    """

    def __init__(self, client_id: int) -> None:
        self._cid = client_id
        self._matrices: dict[CameraSpec, _CameraMatrices] = {}

    def _for(self, camera: CameraSpec) -> _CameraMatrices:
        mats = self._matrices.get(camera)
        if mats is None:
            pose = camera.pose()
            view = pb.computeViewMatrix(
                camera.pos, camera.target, list(-pose[:3, 1]), physicsClientId=self._cid
            )
            proj = pb.computeProjectionMatrixFOV(
                camera.fovy_deg,
                camera.width / camera.height,
                camera.near,
                camera.far,
                physicsClientId=self._cid,
            )
            mats = self._matrices[camera] = _CameraMatrices(tuple(view), tuple(proj))
        return mats

    def render(self, camera: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8 and depth along the optical axis (H, W) float32, m."""
        mats = self._for(camera)
        w, h = camera.width, camera.height
        _, _, rgba, zbuf, _ = pb.getCameraImage(
            w,
            h,
            mats.view,
            mats.proj,
            renderer=pb.ER_TINY_RENDERER,
            lightDirection=LIGHT_DIRECTION,
            shadow=0,
            flags=pb.ER_NO_SEGMENTATION_MASK,  # never read (perception segments by colour)
            physicsClientId=self._cid,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(h, w)
        near, far = camera.near, camera.far
        # OpenGL depth buffer -> distance along the optical axis (m), computed in float64 as
        # before (float32 loses ~1 mm at 2 m in `far - near` * zbuf) and returned as float32.
        depth = (far * near) / (far - (far - near) * zbuf.astype(np.float64))
        return rgb, depth.astype(np.float32)
