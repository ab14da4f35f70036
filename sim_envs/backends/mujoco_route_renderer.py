"""MuJoCo renderer of the textured event-camera street (`event_camera.route.RouteScene`).

It builds an MJCF string with procedural builtin textures only (nothing is downloaded) and
renders grayscale frames offscreen at camera poses. Shadows and reflections are off: with
software EGL they cost about 5x in frame rate and add nothing the event emulator needs.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from corrigible.errors import BackendError  # noqa: E402
from corrigible.sim_envs.event_camera.route import RouteScene, Traversal  # noqa: E402

# ITU-R BT.601 luma weights: how a monochrome sensor behind no colour filter roughly weighs RGB.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _fmt(values: tuple[float, ...] | np.ndarray) -> str:
    return " ".join(f"{v:.4g}" for v in values)


def scene_to_mjcf(scene: RouteScene) -> str:
    """Builds the MJCF model: checker floor, textured panels, a mocap camera rig."""
    assets = [
        '<texture name="floor" type="2d" builtin="checker" rgb1="0.75 0.75 0.7" '
        'rgb2="0.25 0.25 0.3" width="64" height="64" mark="edge" markrgb="0.5 0.5 0.5"/>',
        '<material name="floor" texture="floor" texrepeat="250 250"/>',
    ]
    for i, tex in enumerate(scene.textures):
        builtin = tex.kind if tex.kind in ("checker", "gradient") else "flat"
        mark = ""
        if tex.kind == "random":
            mark = f'mark="random" random="{tex.random_fraction:.3f}" markrgb="{_fmt(tex.rgb2)}"'
        elif tex.kind in ("edge", "cross"):
            builtin = "checker"
            mark = f'mark="{tex.kind}" markrgb="{_fmt(tex.rgb1)}"'
        assets.append(
            f'<texture name="t{i}" type="2d" builtin="{builtin}" rgb1="{_fmt(tex.rgb1)}" '
            f'rgb2="{_fmt(tex.rgb2)}" width="{tex.size_px}" height="{tex.size_px}" {mark}/>'
        )
    bodies = []
    for j, panel in enumerate(scene.panels):
        mat = f"m{j}"
        assets.append(
            f'<material name="{mat}" texture="t{panel.texture}" '
            f'texrepeat="{_fmt(panel.texrepeat)}" rgba="{_fmt(panel.rgba)}"/>'
        )
        bodies.append(
            f'<geom type="box" pos="{_fmt(panel.center)}" size="{_fmt(panel.half_size)}" '
            f'euler="0 0 {panel.yaw:.5f}" material="{mat}" contype="0" conaffinity="0"/>'
        )
    fovy = scene.camera_fovy_deg
    return f"""<mujoco model="event_route">
  <visual>
    <quality shadowsize="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
    <global offwidth="1024" offheight="1024"/>
  </visual>
  <asset>
    {chr(10).join(assets)}
  </asset>
  <worldbody>
    <light directional="true" dir="0.3 0.2 -1" diffuse="0.4 0.4 0.4" castshadow="false"/>
    <geom type="plane" size="200 200 0.1" material="floor" contype="0" conaffinity="0"/>
    {chr(10).join(bodies)}
    <body name="rig" mocap="true">
      <camera name="cam" fovy="{fovy:.3f}"/>
    </body>
  </worldbody>
</mujoco>"""


def _camera_quat(yaw: float, pitch: float) -> np.ndarray:
    # MuJoCo cameras look along their local -z with +y up: columns are (right, up, -forward).
    cp, sp = math.cos(pitch), math.sin(pitch)
    forward = np.array([math.cos(yaw) * cp, math.sin(yaw) * cp, sp])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    up = np.cross(right, forward)
    mat = np.stack([right, up, -forward], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.ravel())
    return quat


class MujocoRouteRenderer:
    """Renders a `RouteScene` offscreen; a context manager that frees the GL context on exit."""

    def __init__(self, scene: RouteScene, *, width: int = 346, height: int = 260) -> None:
        try:
            self._model = mujoco.MjModel.from_xml_string(scene_to_mjcf(scene))
            self._data = mujoco.MjData(self._model)
            self._renderer = mujoco.Renderer(self._model, height, width)
        except Exception as exc:  # MuJoCo raises plain ValueError/RuntimeError/FatalError
            raise BackendError(
                f"could not build or open the MuJoCo route renderer ({exc}); check that "
                "MUJOCO_GL=egl works on this machine (software EGL is enough)."
            ) from exc
        self.width, self.height = width, height
        self._closed = False

    def render_gray(self, xyz: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
        """Renders one (height, width) uint8 grayscale frame at a camera pose."""
        self._data.mocap_pos[0] = xyz
        self._data.mocap_quat[0] = _camera_quat(yaw, pitch)
        mujoco.mj_kinematics(self._model, self._data)
        mujoco.mj_camlight(self._model, self._data)
        self._renderer.update_scene(self._data, camera="cam")
        rgb = self._renderer.render()
        gray = rgb.astype(np.float32) @ _LUMA
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)

    def render_traversal(self, trav: Traversal) -> np.ndarray:
        """Renders all frames of a traversal as a (n, height, width) uint8 array."""
        frames = np.empty((len(trav.t_s), self.height, self.width), np.uint8)
        for i in range(len(trav.t_s)):
            frames[i] = self.render_gray(trav.xyz[i], float(trav.yaw[i]), trav.pitch)
        return frames

    def close(self) -> None:
        """Releases the GL context; safe to call twice."""
        if not self._closed:
            self._renderer.close()
            self._closed = True

    def __enter__(self) -> MujocoRouteRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
