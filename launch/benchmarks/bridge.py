"""`corrigible bench bridge`: the rosbridge server's correction round trip and state rate.

Measured with the real `roslibpy` client (2.x, its default twisted transport) on loopback
against the project's `RosbridgeServer` and a `SessionNode` over real interactive MuJoCo
sessions (objects seen through privileged perception, which only shortens the episodes; the
bridge does not depend on how the planner sees). Everything runs in this one process, so the
clients, the server and the simulator share the machine's cores: each row carries the load
average it was measured under.

Rows, one JSON object each (`"benchmark": "bridge"`):

- `correction_round_trip` (clients 1 and 10): time from a client publishing a correction on
  `/corrigible/correction` to that client receiving the `correction.reply` event for the same
  text on `/corrigible/events`, ms (n, p50, p99, max). A reply is sent when the running
  episode *takes* the correction: the bridge hands it to `Session.correct`, the moving arm halts
  at its next control tick, the router reads the text and the reply says what changed
  (`status`: applied, refused, unused, ...). It is not an acknowledgement of receipt: a
  correction that arrives between episodes is answered `bridge.correction.queued` at once and
  replied to only when the next episode starts, so the benchmark sends corrections only while
  an episode runs, and a round in which one was queued anyway is discarded and counted
  (`discarded`). With 10 clients, each round has every client publish one correction (its own
  text) at once, and each measures its own round trip.
- `joint_states_rate` (clients 1 and 10): messages per second each subscribed client received
  on `/joint_states` over a fixed window between episodes, with the node's default
  `state_hz` (20); hz p50/min/max over the clients.

Example:
    corrigible bench bridge --quick
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np

from corrigible.errors import CorrigibleError

INSTRUCTION = "pick up the red block then place it in the red bowl"
# the texts the clients send, in turn: all retarget the place (the episode goes on)
_TARGETS = ("gray bowl", "red bowl")
_REPLY_TIMEOUT_S = 60.0
_EPISODE_TIMEOUT_S = 120.0


class _Client:
    """One roslibpy client: its own events subscription and the arrival times it saw."""

    def __init__(self, port: int) -> None:
        import roslibpy

        self.ros = roslibpy.Ros("127.0.0.1", port)
        self.ros.run(timeout=10)
        self._lock = threading.Lock()
        self.replies: dict[str, tuple[float, str]] = {}  # text -> (arrival, status)
        self.queued: set[str] = set()
        self.kinds: list[str] = []
        self.states: list[float] = []
        self.events = roslibpy.Topic(self.ros, "/corrigible/events", "std_msgs/String")
        self.correction = roslibpy.Topic(self.ros, "/corrigible/correction", "std_msgs/String")
        self.instruction = roslibpy.Topic(self.ros, "/corrigible/instruction", "std_msgs/String")
        self.joint_states = roslibpy.Topic(self.ros, "/joint_states", "sensor_msgs/JointState")

    def on_event(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        event = json.loads(message["data"])
        kind, data = event["kind"], event.get("data") or {}
        with self._lock:
            self.kinds.append(kind)
            if kind == "correction.reply":
                self.replies.setdefault(str(data.get("text")), (now, str(data.get("status"))))
            elif kind == "bridge.correction.queued":
                self.queued.add(str(data.get("text")))

    def on_state(self, _message: dict[str, Any]) -> None:
        now = time.perf_counter()
        with self._lock:
            self.states.append(now)

    def count(self, kind: str) -> int:
        with self._lock:
            return self.kinds.count(kind)

    def reply(self, text: str) -> tuple[float, str] | None:
        with self._lock:
            return self.replies.get(text)

    def was_queued(self, text: str) -> bool:
        with self._lock:
            return text in self.queued

    def close(self) -> None:
        """Closes the connection (never `terminate()`: the reactor serves the whole process)."""
        self.ros.close()


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"loadavg 1 min {one:.2f}, 5 min {five:.2f} on {os.cpu_count()} cpus"


def _percentile_ms(values_s: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values_s) * 1e3, q)), 2)


def _clients(stack: ExitStack, port: int, count: int) -> list[_Client]:
    clients = []
    for _ in range(count):
        client = _Client(port)
        stack.callback(client.close)
        clients.append(client)
    return clients


def _state_rate(server: Any, port: int, count: int, window_s: float) -> dict[str, Any]:
    with ExitStack() as stack:
        clients = _clients(stack, port, count)
        for client in clients:
            client.joint_states.subscribe(client.on_state)
        if not _wait(lambda: server.subscriber_count("/joint_states") >= count, 20):
            raise CorrigibleError(f"{count} clients did not all subscribe to /joint_states")
        _wait(lambda: all(len(c.states) >= 2 for c in clients), 10)
        load = _load()
        start = time.perf_counter()
        time.sleep(window_s)
        end = time.perf_counter()
        counts = [sum(start <= t < end for t in list(c.states)) for c in clients]
        for client in clients:
            client.joint_states.unsubscribe()
    rates = [n / (end - start) for n in counts]
    return {
        "benchmark": "bridge",
        "measure": "joint_states_rate",
        "clients": count,
        "n": int(sum(counts)),
        "window_s": round(end - start, 3),
        "hz": round(float(np.median(rates)), 2),
        "hz_min": round(min(rates), 2),
        "hz_max": round(max(rates), 2),
        "note": f"between episodes, node state_hz 20; {load}",
    }


def _ensure_episode(node: Any, lead: _Client) -> None:
    """Returns once an episode runs with its first skill started (sends the instruction)."""
    if node.is_running and lead.count("bridge.episode.start") > lead.count(
        "bridge.episode.result"
    ) + lead.count("bridge.episode.error"):
        return
    if not node.wait_idle(_EPISODE_TIMEOUT_S):
        raise CorrigibleError("the bridge's episode did not end")
    starts, skills = lead.count("bridge.episode.start"), lead.count("skill.start")
    import roslibpy

    lead.instruction.publish(roslibpy.Message({"data": INSTRUCTION}))
    if not _wait(
        lambda: lead.count("bridge.episode.start") > starts and lead.count("skill.start") > skills,
        _EPISODE_TIMEOUT_S,
    ):
        raise CorrigibleError(f"no episode started for {INSTRUCTION!r}: {lead.kinds[-10:]}")


def _ended(lead: _Client) -> int:
    return lead.count("bridge.episode.result") + lead.count("bridge.episode.error")


def _one_round(
    node: Any, clients: list[_Client], texts: list[str]
) -> tuple[list[float], list[str]] | None:
    """Every client publishes its text at once; their round trips (s) and reply statuses.

    None when the round does not count: a correction was queued between episodes, or the
    episode ended before taking it (its `unused` reply comes when the session closes, at the
    next instruction).
    """
    import roslibpy

    _ensure_episode(node, clients[0])
    ended = _ended(clients[0])
    sent_at = []
    for client, text in zip(clients, texts, strict=True):
        sent_at.append(time.perf_counter())
        client.correction.publish(roslibpy.Message({"data": text}))
    pairs = list(zip(clients, texts, strict=True))

    def settled() -> bool:
        return _ended(clients[0]) > ended or all(
            c.reply(t) is not None or c.was_queued(t) for c, t in pairs
        )

    if not _wait(settled, _REPLY_TIMEOUT_S):
        raise CorrigibleError(f"no correction.reply within {_REPLY_TIMEOUT_S:g} s: {texts}")
    replies = [c.reply(t) for c, t in pairs]
    if any(r is None for r in replies):
        return None
    return (
        [r[0] - t0 for r, t0 in zip(replies, sent_at, strict=True) if r is not None],
        [r[1] for r in replies if r is not None],
    )


def _round_trips(node: Any, port: int, count: int, samples: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    discarded = 0
    loads = []
    with ExitStack() as stack:
        clients = _clients(stack, port, count)
        for client in clients:
            client.events.subscribe(client.on_event)
        if not _wait(lambda: node.server.subscriber_count("/corrigible/events") >= count, 20):
            raise CorrigibleError(f"{count} clients did not all subscribe to /corrigible/events")
        for client in clients:
            client.correction.advertise()
        time.sleep(0.2)  # the advertise ops reach the server before the first publish
        # untimed warm-up: the router embeds its first correction (MiniLM) far more slowly
        cold = None
        for attempt in range(5):
            measured = _one_round(node, clients[:1], [f"no, the gray bowl (warm-up {attempt})"])
            if measured is not None:
                cold = measured[0][0]
                break
        rounds = 0
        while len(latencies) < samples and rounds < 4 * samples:
            rounds += 1
            loads.append(os.getloadavg()[0])
            texts = [
                f"no, the {_TARGETS[(rounds + i) % len(_TARGETS)]} ({rounds}.{i})"
                for i in range(count)
            ]
            measured = _one_round(node, clients, texts)
            if measured is None:
                discarded += count
                continue
            latencies.extend(measured[0])
            for status in measured[1]:
                statuses[status] = statuses.get(status, 0) + 1
        for client in clients:
            client.correction.unadvertise()
    if not latencies:
        raise CorrigibleError("no correction was taken by a running episode; nothing measured")
    return {
        "benchmark": "bridge",
        "measure": "correction_round_trip",
        "clients": count,
        "n": len(latencies),
        "sent": len(latencies) + discarded,
        "discarded": discarded,
        "p50_ms": _percentile_ms(latencies, 50),
        "p99_ms": _percentile_ms(latencies, 99),
        "max_ms": round(max(latencies) * 1e3, 2),
        "warmup_ms": None if cold is None else round(cold * 1e3, 2),
        "reply_status": statuses,
        "note": (
            "publish on /corrigible/correction to its correction.reply on /corrigible/events "
            "(the correction taken by the running MuJoCo episode, privileged perception; "
            "one untimed warm-up correction first); "
            f"loadavg 1 min {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cpus"
        ),
    }


def run_bench(quick: bool = False, *, router: Any = None) -> Iterator[dict[str, Any]]:
    """Yields the joint-state rate rows, then the correction round-trip rows (1, 10 clients).

    Args:
        quick: 10 corrections per client count and 3 s of joint states (else 50 and 10 s).
        router: the correction router to share (built, with MiniLM, when not given).
    """
    try:
        import roslibpy  # noqa: F401
    except ImportError as exc:
        raise CorrigibleError(
            "the bridge benchmark needs roslibpy: pip install 'roslibpy>=2'"
        ) from exc
    from corrigible.corrections.router import GrammarEmbeddingRouter
    from corrigible.robots.bridge.server import RosbridgeServer
    from corrigible.robots.bridge.session_node import NodeConfig, SessionNode
    from corrigible.session import Session, SessionConfig

    samples, window_s = (10, 3.0) if quick else (50, 10.0)
    shared = router if router is not None else GrammarEmbeddingRouter()

    def make(episode: str) -> Session:
        config = SessionConfig(interactive=True, episode=episode, perception="privileged")
        return Session(config, router=shared)

    with (
        RosbridgeServer(port=0) as server,
        SessionNode(server, make, NodeConfig(), mention=(INSTRUCTION,)) as node,
    ):
        for count in (1, 10):
            yield _state_rate(server, server.port, count, window_s)
        for count in (1, 10):
            yield _round_trips(node, server.port, count, samples)
        # leaving the block stops the running episode, the worker, the session and the server


__all__ = ["run_bench"]
