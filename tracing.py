"""Per-episode JSONL traces: every arm command, skill call and result, in order.

Events are kept in memory and appended to the file in batches, so tracing costs microseconds per
event on the control path; `flush()` and `close()` make everything durable. Subscribers
(`subscribe`) see each event as it is emitted: the session's event stream is built on them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Converts NumPy values (recursively) into plain JSON types."""
    if isinstance(value, np.ndarray):
        return np.round(value, 6).tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


class EpisodeTrace:
    """Collects trace events of one episode and writes them as JSON lines.

    Args:
        path: JSONL file to append to, or None to keep events in memory only.
        episode: an id stored in every event.
        flush_every: events buffered before a write.
    """

    def __init__(
        self, path: Path | None = None, *, episode: str = "0", flush_every: int = 256
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.episode = episode
        self.events: list[dict[str, Any]] = []
        self._written = 0
        self._flush_every = flush_every
        self._t0 = time.perf_counter()
        self._closed = False
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Records one event; NumPy values are converted on write, not here."""
        event = {
            "kind": kind,
            "episode": self.episode,
            "wall_s": time.perf_counter() - self._t0,
            **fields,
        }
        self.events.append(event)
        if self.path is not None and len(self.events) - self._written >= self._flush_every:
            self.flush()
        for subscriber in self._subscribers:
            subscriber(event)
        return event

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Calls `callback(event)` for every event emitted from now on, in the emitting thread."""
        self._subscribers.append(callback)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind, in order."""
        return [e for e in self.events if e["kind"] == kind]

    def flush(self) -> None:
        """Appends buffered events to the file."""
        if self.path is None or self._written == len(self.events):
            return
        with self.path.open("a") as fh:
            for event in self.events[self._written :]:
                fh.write(json.dumps(to_jsonable(event)) + "\n")
        self._written = len(self.events)

    def close(self) -> None:
        """Flushes; safe to call twice."""
        if not self._closed:
            self.flush()
            self._closed = True
