"""Fixtures for the LLM backend tests; the tiny model and server are in tests/conftest.py.

Nothing here touches the network: the model is built in-process, the server binds 127.0.0.1 and
runs with the Hub switched off, and `no_internet` makes any other connection attempt fail.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from loopback_llm import LoopbackServer

DATA_DIR = Path(__file__).parent / "data"


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
