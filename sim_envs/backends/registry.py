"""Looks backends up by name so no caller writes an if/elif over engines.

`BACKENDS.names()` is the one list of engines: the CLI verbs, the env and the benchmarks all
derive theirs from it. Importing this module is cheap (no engine, no NumPy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corrigible.registry import Registry

if TYPE_CHECKING:
    from corrigible.sim_envs.backends.base import Backend
    from corrigible.sim_envs.scene_spec import SceneSpec

# engine name -> backend class; imported lazily so one engine works without the other.
BACKENDS: Registry[type[Backend]] = Registry("simulator")
BACKENDS.register("mujoco", "corrigible.sim_envs.backends.mujoco_backend:MujocoBackend")
BACKENDS.register("pybullet", "corrigible.sim_envs.backends.pybullet_backend:PybulletBackend")


def make_backend(engine: str, scene: SceneSpec) -> Backend:
    """Builds `scene` in the named engine (one of `BACKENDS.names()`).

    Raises:
        UnknownNameError: no engine has that name; the message suggests the closest one.
    """
    return BACKENDS.get(engine)(scene)
