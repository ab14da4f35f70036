"""Shared fixtures for the LLM backend tests: a tiny local model and a live loopback server.

Nothing here touches the network: the model is built in-process, the server binds 127.0.0.1 and
runs with the Hub switched off, and `no_internet` makes any other connection attempt fail.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from corrigible.errors import DependencyNotInstalled
from corrigible.policies.llm.loopback import (
    TINY_MODEL_NAME,
    LoopbackServer,
    LoopbackServerConfig,
    build_tiny_chat_model,
)

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~130 kB Llama trained to answer one ```python block; built in about a second."""
    return build_tiny_chat_model(tmp_path_factory.mktemp("llm") / TINY_MODEL_NAME)


@pytest.fixture(scope="session")
def loopback_server(tiny_model_dir: Path) -> Iterator[LoopbackServer]:
    """`transformers serve` on 127.0.0.1:<free port>, serving the tiny model, for the session."""
    server = LoopbackServer(LoopbackServerConfig(model=tiny_model_dir, startup_timeout_s=120))
    try:
        server.start()
    except DependencyNotInstalled as exc:
        pytest.skip(f"no loopback server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch, loopback_server: LoopbackServer) -> LoopbackServer:
    """Points `openai:` specs at the loopback server through the documented variables."""
    monkeypatch.setenv("CORRIGIBLE_LLM_BASE_URL", loopback_server.base_url)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("CORRIGIBLE_LLM_RECORD", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "not-needed")
    return loopback_server


_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails any socket connection that is not to loopback, so a download cannot hide."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOCAL_HOSTS:
            raise OSError(f"test forbids network access (tried to connect to {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
