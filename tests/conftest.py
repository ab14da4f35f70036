"""Shared fixtures: real engines, offline model loading, both backends as a parameter."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

ENGINES = ["mujoco", "pybullet"]


@pytest.fixture(params=ENGINES, ids=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test taking `engine` runs once per physics backend."""
    return request.param


@pytest.fixture
def state_env(engine: str):
    """A reset state-only TabletopEnv on seed 0 (3 blocks, 3 bowls, drawer)."""
    from corrigible.sim_envs import TabletopEnv

    env = TabletopEnv(engine, obs_mode="state")
    env.reset(seed=0)
    yield env
    env.close()
