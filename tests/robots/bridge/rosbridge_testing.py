"""Helpers shared by the rosbridge tests (imported as `rosbridge_testing`; conftest.py puts this
folder on `sys.path`, since test modules are imported with `--import-mode=importlib`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import roslibpy


@contextmanager
def ros_client(port: int, **kwargs: Any) -> Iterator[Any]:
    """A connected roslibpy client (closed at the end, never terminated)."""
    ros = roslibpy.Ros("127.0.0.1", port, **kwargs)
    ros.run(timeout=10)
    try:
        yield ros
    finally:
        ros.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0, step_s: float = 0.02) -> bool:
    """Polls `predicate` until it holds or `timeout_s` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())


class EventLog:
    """Collects /corrigible/events messages (decoded) from a roslibpy subscription."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.events.append(json.loads(message["data"]))

    def kinds(self) -> list[str]:
        with self._lock:
            return [e["kind"] for e in self.events]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["kind"] == kind]
