"""The Gymnasium ids are registered by `import corrigible.sim_envs`, with a time limit."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

import corrigible.sim_envs
from corrigible.sim_envs import TABLETOP_MAX_EPISODE_STEPS, TabletopEnv

_ID = "corrigible/Tabletop-v0"


def test_importing_sim_envs_alone_registers_the_id_without_loading_an_engine():
    code = (
        "import sys, gymnasium\n"
        "import corrigible.sim_envs\n"
        f"spec = gymnasium.spec({_ID!r})\n"
        "print(spec.max_episode_steps, spec.entry_point)\n"
        "heavy = {'corrigible.sim_envs.tabletop_env', 'mujoco', 'pybullet'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert out == [
        f"{TABLETOP_MAX_EPISODE_STEPS} corrigible.sim_envs.tabletop_env:TabletopEnv",
        "[]",
    ]


def test_make_wraps_the_env_in_a_time_limit(engine):
    env = gym.make(_ID, backend=engine, obs_mode="state")
    try:
        assert isinstance(env, TimeLimit)
        assert env.spec.max_episode_steps == TABLETOP_MAX_EPISODE_STEPS == 1000
        assert isinstance(env.unwrapped, TabletopEnv)
        assert env.unwrapped.max_episode_steps == TABLETOP_MAX_EPISODE_STEPS
        obs, info = env.reset(seed=0)
        assert set(obs) >= {"ee.pos_m", "joint.q_rad"} and "objects" in info
    finally:
        env.close()


def test_make_honours_a_shorter_time_limit():
    env = gym.make(_ID, obs_mode="state", max_episode_steps=2)
    try:
        env.reset(seed=0)
        action = [0.0, 0.0, 0.0, -1.0]
        assert env.step(action)[3] is False
        assert env.step(action)[3] is True  # truncated by the TimeLimit wrapper
    finally:
        env.close()


def test_registry_holds_the_id():
    assert _ID in gym.registry and corrigible.sim_envs.__name__ == "corrigible.sim_envs"
