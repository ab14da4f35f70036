"""Simulation: one engine-neutral scene description, MuJoCo and PyBullet backends, a Gymnasium env.

Importing this package is cheap; engines load when an env or backend is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corrigible.sim_envs.tabletop_env import TabletopEnv

__all__ = ["TabletopEnv"]


def __getattr__(name: str) -> object:
    if name == "TabletopEnv":
        from corrigible.sim_envs.tabletop_env import TabletopEnv

        return TabletopEnv
    raise AttributeError(name)
