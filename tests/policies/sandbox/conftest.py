"""Shared fixtures for the sandbox tests: a harmless fake robot API and short limits."""

from __future__ import annotations

import os

import pytest

from corrigible.policies.sandbox import SandboxLimits
from corrigible.policies.sandbox.hostile_report import fake_api


@pytest.fixture
def api() -> dict:
    return fake_api()


@pytest.fixture
def short_limits() -> SandboxLimits:
    """Limits short enough that a runaway program costs about a second."""
    return SandboxLimits(wall_time_s=3.0, cpu_time_s=1.0, memory_mb=256, max_output_bytes=4096)


@pytest.fixture
def is_dead():
    """Returns a check that a child pid no longer runs (gone or a zombie)."""
    return _process_is_dead


def _process_is_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True
