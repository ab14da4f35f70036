"""Looks backends up by name so no caller writes an if/elif over engines."""

from __future__ import annotations

import importlib

from corrigible.errors import UnknownNameError, did_you_mean
from corrigible.sim_envs.backends.base import Backend
from corrigible.sim_envs.scene_spec import SceneSpec

# engine name -> "module:class"; imported lazily so one engine works without the other.
BACKENDS: dict[str, str] = {
    "mujoco": "corrigible.sim_envs.backends.mujoco_backend:MujocoBackend",
    "pybullet": "corrigible.sim_envs.backends.pybullet_backend:PybulletBackend",
}


def make_backend(engine: str, scene: SceneSpec) -> Backend:
    """Builds `scene` in the named engine ("mujoco" or "pybullet")."""
    if engine not in BACKENDS:
        raise UnknownNameError(
            f"unknown simulator {engine!r}; choose one of {sorted(BACKENDS)}."
            + did_you_mean(engine, BACKENDS)
        )
    module_name, cls_name = BACKENDS[engine].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(scene)
