"""Console tests: shared helpers (as the `tools` fixture) for reading a real session's trace."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from corrigible.launch.console.driver import ConsoleSession

INSTRUCTION = "put the red block in the red bowl"


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls `cond` (a thread runs the robot) until it holds; fails the test with `what`."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def events(console: ConsoleSession) -> list[dict[str, Any]]:
    """Every trace event of the console's episode, in order."""
    assert console.session is not None and console.session.env is not None
    return list(console.session.env.trace.events)


def grasp_offset(trace: list[dict[str, Any]], obj: str = "red block") -> tuple[float, float]:
    """(x, y) of the arm's grasp relative to the object where the pick that grasped began, m.

    The grasp is the end of the last descent ("arm.move_to") before the first "arm.grasp"; the
    object's position is the pick's recorded start state.
    """
    grasp_at = next(i for i, e in enumerate(trace) if e["kind"] == "arm.grasp")
    descent = [e for e in trace[:grasp_at] if e["kind"] == "arm.move_to"][-1]
    pick = next(e for e in trace[grasp_at:] if e["kind"] == "skill" and e["skill"] == "pick")
    obj_xy = pick["start_state"]["objects"][obj][:2]
    return (
        float(descent["requested"][0] - obj_xy[0]),
        float(descent["requested"][1] - obj_xy[1]),
    )


@pytest.fixture
def tools() -> SimpleNamespace:
    """The helpers above, for the test modules (conftest modules are not importable)."""
    return SimpleNamespace(
        wait_for=wait_for, events=events, grasp_offset=grasp_offset, INSTRUCTION=INSTRUCTION
    )
