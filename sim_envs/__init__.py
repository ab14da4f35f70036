"""Simulation: one engine-neutral scene description, MuJoCo and PyBullet backends, a Gymnasium env.

Importing this package is cheap: it registers the Gymnasium ids by entry-point string (as
Gymnasium's own `envs/__init__.py` does), so no engine loads until an env or backend is built.

Example:
    import gymnasium as gym
    import corrigible.sim_envs  # registers "corrigible/Tabletop-v0"

    env = gym.make("corrigible/Tabletop-v0", obs_mode="state")  # TimeLimit(1000 steps = 50 s)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gymnasium.envs.registration import register

if TYPE_CHECKING:
    from corrigible.sim_envs.tabletop_env import TabletopEnv

__all__ = ["TABLETOP_MAX_EPISODE_STEPS", "TabletopEnv"]

# Control steps before `gym.make`'s TimeLimit truncates an episode: 1000 x 50 ms = 50 s of
# simulated time, the same limit `TabletopEnv(max_episode_steps=...)` applies by default.
TABLETOP_MAX_EPISODE_STEPS = 1000

register(
    id="corrigible/Tabletop-v0",
    entry_point="corrigible.sim_envs.tabletop_env:TabletopEnv",
    max_episode_steps=TABLETOP_MAX_EPISODE_STEPS,
)


def __getattr__(name: str) -> object:
    if name == "TabletopEnv":
        from corrigible.sim_envs.tabletop_env import TabletopEnv

        return TabletopEnv
    raise AttributeError(name)
