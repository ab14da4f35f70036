"""Locates robot descriptions (URDFs) that ship inside installed wheels (nothing is downloaded).

A robot description belongs to the robot, not to an engine: `SimArm` reads it for its kinematics
and both physics backends load the same file, so it lives here, below `sim_envs`.
"""

from __future__ import annotations

from pathlib import Path

from corrigible.errors import DependencyNotInstalled


def pybullet_data_path() -> Path:
    """The folder of URDFs and meshes that the `pybullet` wheel ships as `pybullet_data`."""
    try:
        import pybullet_data
    except ImportError as exc:  # pragma: no cover - pybullet is a hard dependency
        raise DependencyNotInstalled(
            "pybullet_data (from the `pybullet` package) is needed for the Panda URDF; "
            "run `pip install pybullet`"
        ) from exc
    return Path(pybullet_data.getDataPath())


def urdf_path(relative: str) -> Path:
    """Absolute path of a URDF relative to pybullet_data, e.g. `franka_panda/panda.urdf`."""
    path = pybullet_data_path() / relative
    if not path.is_file():
        raise FileNotFoundError(f"robot description {relative!r} not found at {path}")
    return path
