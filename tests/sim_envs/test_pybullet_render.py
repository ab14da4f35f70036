"""PyBullet images: the arm drawn with the collision meshes MuJoCo draws, camera matrices cached."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from corrigible.errors import BackendError
from corrigible.robots.assets import urdf_path
from corrigible.sim_envs.backends.pybullet_render import low_poly_urdf_text, render_urdf
from corrigible.sim_envs.scene_spec import RobotSpec
from corrigible.sim_envs.tabletop_env import TabletopEnv

PANDA = urdf_path(RobotSpec().urdf)


def _blocks(text: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>.*?</{tag}>", text, flags=re.S)


def test_visuals_use_the_collision_meshes_and_nothing_else_changes() -> None:
    source = PANDA.read_text()
    low = low_poly_urdf_text(PANDA)
    assert "package://" not in low
    absolute = source.replace("package://", f"{PANDA.parent.as_posix()}/")
    # Collision shapes (physics) are untouched, in order.
    assert _blocks(low, "collision") == _blocks(absolute, "collision")
    mesh = re.compile(r'filename="([^"]+)"')
    visual_meshes = [m for b in _blocks(low, "visual") for m in mesh.findall(b)]
    assert visual_meshes and all("/collision/" in m for m in visual_meshes)
    assert all(Path(m).is_file() for m in visual_meshes)
    # Only mesh file names differ: joints, inertias and materials are the same text.
    strip = re.compile(r'filename="[^"]+"')
    assert strip.sub("", low) == strip.sub("", absolute)


def test_the_rewritten_urdf_is_written_once_per_process() -> None:
    first, second = render_urdf(PANDA), render_urdf(PANDA)
    assert first == second and first.is_file()
    assert first.read_text() == low_poly_urdf_text(PANDA)


def test_an_unreadable_urdf_is_a_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot read the robot URDF"):
        low_poly_urdf_text(tmp_path / "missing.urdf")


def _arm_mask(env: TabletopEnv, depth: np.ndarray) -> np.ndarray:
    """Pixels whose back-projected point is over 25 cm above the table: only the arm is."""
    cam = env.camera
    k, pose = cam.intrinsics(), cam.pose()
    v, u = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]] + 0.5
    pts = np.stack([(u - k[0, 2]) / k[0, 0] * depth, (v - k[1, 2]) / k[1, 1] * depth, depth], -1)
    return (pts @ pose[:3, :3].T + pose[:3, 3])[..., 2] > 0.25


# Joint angles (rad) with the hand lowered towards the table, in full view of the camera.
POSE = np.array([0.017, -0.116, 0.024, -2.15, 0.002, 2.034, 0.825])


def test_the_arm_looks_the_same_in_both_engines() -> None:
    # Both arms servoed to the same joints. With the detailed visual meshes in PyBullet (and
    # the collision meshes MuJoCo draws) the silhouettes overlapped with IoU 0.89; with the
    # same meshes 0.97.
    masks = {}
    for engine in ("mujoco", "pybullet"):
        with TabletopEnv(engine, obs_mode="state") as env:
            env.reset(seed=0)
            env.backend.set_arm_targets(POSE)
            env.backend.step(1000)  # 2 s: the servo settles
            assert np.abs(env.backend.joint_state()[0] - POSE).max() < 1e-3
            masks[engine] = _arm_mask(env, env.backend.render(env.camera)[1])
    a, b = masks["mujoco"], masks["pybullet"]
    assert a.sum() > 2000  # the arm is in view
    assert (a & b).sum() / (a | b).sum() > 0.94


def test_cameras_of_different_sizes_render_from_one_backend() -> None:
    with TabletopEnv("pybullet", obs_mode="state") as env:
        env.reset(seed=0)
        small = replace(env.camera, width=160, height=120)
        for cam in (env.camera, small, env.camera):
            rgb, depth = env.backend.render(cam)
            assert rgb.shape == (cam.height, cam.width, 3) and rgb.dtype == np.uint8
            assert depth.shape == (cam.height, cam.width) and depth.dtype == np.float32
        big_rgb, big_depth = env.backend.render(env.camera)
        small_rgb, small_depth = env.backend.render(small)
        # The same view at half the size: the centre pixel's depth agrees within 1 cm.
        assert abs(float(big_depth[120, 160]) - float(small_depth[60, 80])) < 0.01
