"""Fixtures for the rosbridge tests: a real server on a free loopback port, real roslibpy clients.

roslibpy's default transport (twisted) runs one reactor per process; clients are closed after
each test, never `terminate()`d (a stopped reactor cannot start again in the same process).
Shared helpers live in `rosbridge_testing.py` next to this file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("roslibpy")
sys.path.insert(0, str(Path(__file__).parent))  # `import rosbridge_testing` in the tests

from corrigible.robots.bridge.server import RosbridgeServer  # noqa: E402


@pytest.fixture
def server() -> Iterator[RosbridgeServer]:
    """A started server on 127.0.0.1:<free port> with the rosapi services."""
    with RosbridgeServer(port=0) as started:
        yield started
