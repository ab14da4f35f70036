"""Shared fixtures: real engines, offline model loading, both backends as a parameter, and one
loopback LLM server (the tiny test model behind `transformers serve`) for the whole session.

Test-only helpers live in `tests/support/` and import as top-level modules (`loopback_llm`):
pytest puts that folder on `sys.path` (`pythonpath` in pyproject.toml), and `pytest_configure`
below adds it to `PYTHONPATH` so that subprocesses started by tests import them too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from corrigible.sim_envs.backends.registry import BACKENDS  # noqa: E402

ENGINES = BACKENDS.names()  # every registered engine: "mujoco", "pybullet"


def pytest_configure(config: pytest.Config) -> None:
    """Passes pytest's `pythonpath` (tests/support/) on to subprocesses via PYTHONPATH."""
    paths = [str(path) for path in config.getini("pythonpath")]
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([inherited] if inherited else []))


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


@pytest.fixture(scope="session")
def embedder():
    """The real MiniLM, loaded and warmed once for the whole session (not timed by tests)."""
    from corrigible.text_embedding import get_text_embedder

    model = get_text_embedder()
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def router(embedder):
    """The offline correction router on the shipped examples, sharing the session's MiniLM."""
    from corrigible.corrections.router import GrammarEmbeddingRouter

    return GrammarEmbeddingRouter(embedder=embedder)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~130 kB Llama trained to answer one ```python block; built in about a second."""
    from loopback_llm import TINY_MODEL_NAME, build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("llm") / TINY_MODEL_NAME)


@pytest.fixture(scope="session")
def loopback_server(tiny_model_dir: Path) -> Iterator:
    """`transformers serve` on 127.0.0.1:<free port>, serving the tiny model, for the session.

    Shared by the LLM backend tests and the corrections LLM tests, so it starts once per run.
    """
    from corrigible.errors import DependencyNotInstalled
    from loopback_llm import LoopbackServer, LoopbackServerConfig

    server = LoopbackServer(LoopbackServerConfig(model=tiny_model_dir, startup_timeout_s=120))
    try:
        server.start()
    except DependencyNotInstalled as exc:
        # `pip install -e '.[test]'` installs the server (through the [llm] extra): a missing
        # one is a broken test environment, not a reason to skip the LLM tests quietly.
        pytest.fail(f"no loopback server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
