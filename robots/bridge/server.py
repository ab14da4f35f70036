"""`RosbridgeServer`: a ROS-free rosbridge v2 server over websockets, with an in-process API.

ROS tools (roslibpy, roslib.js, a lab's own scripts) talk to it as to ROS's rosbridge_server;
Python code in the same process advertises topics, publishes, receives what clients publish
and serves services through a small thread-safe API. The server runs its own asyncio loop in a
background thread, so callers need no event loop of their own:

    from corrigible.robots.bridge.server import RosbridgeServer

    with RosbridgeServer(port=0) as server:  # port 0: a free port, read back from .port
        server.advertise("/joint_states", "sensor_msgs/JointState")
        server.on_publish(
            "/arm/command", "trajectory_msgs/JointTrajectory", lambda msg: print(msg["points"])
        )
        server.advertise_service("/arm/home", "std_srvs/Trigger", lambda args: {"success": True})
        server.publish("/joint_states", {"name": ["j1"], "position": [0.0]})
        print(f"ws://127.0.0.1:{server.port}")

Callbacks (`on_publish`) run in one dispatcher thread, in arrival order; service handlers run in
a small thread pool with a timeout. Neither runs in the event loop, so a slow handler delays
only itself.

Compatibility with roslibpy 2.x (which raises on any op it has no handler for): the server
never sends `status` unless the client asked for it with `set_level`; `service_response`
always carries `values` and the call's `id`; service `args` may be a dict or a list.
Bad frames are answered that way (a failed call, or nothing), counted in `stats`, and logged
at debug level (a flood of bad frames must not flood the log either).

Security: the server binds loopback (127.0.0.1) by default. Any other address needs a `token`;
clients must then send the `auth` op first (see `protocol.Auth`). Per-connection limits
(`BridgeLimits`) bound frame size, message rate, subscriptions, advertisements, fragment
reassembly and pending calls; robots/bridge/README.md lists them.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import hmac
import ipaddress
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from corrigible.config import StrictConfig
from corrigible.errors import ConfigError, DependencyNotInstalled

try:
    from websockets.asyncio.server import Server, ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
except ImportError as _exc:  # websockets < 13 has no asyncio server module
    raise DependencyNotInstalled(
        "the rosbridge server needs websockets >= 13: pip install 'corrigible[bridge]'"
    ) from _exc
from corrigible.robots.bridge import protocol as p

_LOG = logging.getLogger(__name__)

ServiceHandler = Callable[[dict[str, Any]], dict[str, Any] | None]
TopicCallback = Callable[[dict[str, Any]], None]
_LEVELS = {"none": 0, "error": 1, "warning": 2, "info": 3}
_POLICY_VIOLATION = 1008  # websocket close code: the client broke a rule (auth, limits)
_TRY_AGAIN_LATER = 1013  # websocket close code: the server is full


class BridgeLimits(StrictConfig):
    """Per-connection and server-wide limits (robots/bridge/README.md explains each).

    A frame over `max_frame_bytes` closes its connection (close code 1009); every other excess
    drops the op (counted in `RosbridgeServer.stats`) and keeps the connection.
    """

    max_frame_bytes: int = Field(default=1 << 20, ge=1024)  # bytes of one websocket message
    max_message_bytes: int = Field(default=8 << 20, ge=1024)  # bytes in reassembly per conn.
    max_queued_bytes: int = Field(default=16 << 20, ge=1024)  # bytes waiting to go to a client
    max_messages_per_s: float = Field(default=1000.0, gt=0, allow_inf_nan=False)  # ops/s/conn.
    burst: int = Field(default=2000, ge=1)  # ops a connection may send at once above the rate
    max_subscriptions: int = Field(default=64, ge=1)  # subscriptions per connection
    max_advertised: int = Field(default=64, ge=1)  # topics + services one connection advertises
    max_pending_fragments: int = Field(default=8, ge=1)  # messages in reassembly per connection
    max_fragment_parts: int = Field(default=4096, ge=1)  # parts of one fragmented message
    min_fragment_size: int = Field(default=256, ge=1)  # chars; smaller fragment_size is raised
    fragment_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)  # s to finish
    max_pending_calls: int = Field(default=32, ge=1)  # service calls in flight per connection
    default_queue_length: int = Field(default=100, ge=1)  # queue of a subscription without one
    max_queue_length: int = Field(default=1000, ge=1)  # cap on a subscription's queue_length
    max_connections: int = Field(default=32, ge=1)  # clients at once; more are refused (1013)
    service_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)  # s per call
    auth_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)  # s to send auth
    max_dispatch_backlog: int = Field(default=10_000, ge=1)  # callbacks queued; more dropped


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine ("localhost" or 127.x / ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name (or "" = every interface): it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuses a bind that would let other machines drive the robot without authenticating.

    Raises:
        ConfigError: `host` is not loopback and no token is configured.
    """
    if token is not None and not token:
        raise ConfigError("the auth token is empty; give a non-empty secret (or none at all)")
    if not is_loopback(host) and token is None:
        raise ConfigError(
            f"refusing to serve rosbridge on {host or 'every interface'!r} without "
            "authentication: anyone who can reach it could drive the robot. Bind 127.0.0.1 "
            "(the default), give a token (`--token-file FILE`; clients then send the `auth` op "
            "first), or bind loopback behind a TLS-terminating proxy that authenticates"
        )


@dataclass
class _Topic:
    """A topic the server knows: its type, who publishes it, who listens."""

    name: str
    type: str | None
    server_advertised: bool = False
    publishers: set[int] = field(default_factory=set)  # connection ids that advertised it
    callbacks: list[TopicCallback] = field(default_factory=list)
    subscriptions: set[_Subscription] = field(default_factory=set)


@dataclass
class _Service:
    """A service: served in-process (`handler`) or hosted by a client (`host`)."""

    name: str
    type: str
    handler: ServiceHandler | None = None
    fields: tuple[str, ...] = ()  # argument names in order, for list `args`
    host: _Connection | None = None


class _Subscription:
    """One connection's subscription to one topic: throttling, queue and fragmenting.

    Several subscribe ops of one client on one topic merge as in rosbridge: the smallest
    throttle rate, queue length and fragment size of its ids apply; the topic's messages are
    sent once.
    """

    def __init__(self, conn: _Connection, topic: str, limits: BridgeLimits) -> None:
        self.conn, self.topic, self._limits = conn, topic, limits
        self.ids: dict[str | int | None, p.Subscribe] = {}
        self.throttle_s = 0.0
        self.fragment_size: int | None = None
        self.queue: collections.deque[str] = collections.deque(maxlen=limits.default_queue_length)
        self.ready = asyncio.Event()
        self.dropped = 0
        self.task = asyncio.get_running_loop().create_task(self._send_loop())

    def update(self) -> None:
        ops = list(self.ids.values())
        self.throttle_s = min(o.throttle_rate for o in ops) / 1000.0
        lengths = [o.queue_length for o in ops]
        length = min(lengths) if all(lengths) else 0
        if length == 0:  # rosbridge: no queue length; keep the newest when throttled
            length = 1 if self.throttle_s > 0 else self._limits.default_queue_length
        length = min(length, self._limits.max_queue_length)
        if length != self.queue.maxlen:
            while len(self.queue) > length:  # the oldest give way, and their bytes are freed
                self.conn.queued_bytes -= len(self.queue.popleft())
            self.queue = collections.deque(self.queue, maxlen=length)
        sizes = [o.fragment_size for o in ops if o.fragment_size is not None]
        # a tiny fragment size would multiply the frames sent (one per character at 1)
        least = self._limits.min_fragment_size
        self.fragment_size = max(min(sizes), least) if sizes else None

    def offer(self, text: str) -> bool:
        """Queues one message; False when the client's byte budget is spent (dropped)."""
        conn = self.conn
        if conn.queued_bytes + len(text) > self._limits.max_queued_bytes:
            return False  # a client that does not read gets nothing more until it does
        if len(self.queue) == self.queue.maxlen:
            conn.queued_bytes -= len(self.queue[0])  # the oldest gives way: the newest state
            self.dropped += 1
        self.queue.append(text)
        conn.queued_bytes += len(text)
        self.ready.set()
        return True

    async def _send_loop(self) -> None:
        serial = itertools.count()
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                await self.ready.wait()
                self.ready.clear()
                while self.queue:
                    text = self.queue.popleft()
                    self.conn.queued_bytes -= len(text)
                    if self.fragment_size is not None and len(text) > self.fragment_size:
                        frame_id = f"publish:{self.topic}:{next(serial)}"
                        for part in p.fragments(text, frame_id, self.fragment_size):
                            await self.conn.ws.send(p.dumps(part))
                    else:
                        await self.conn.ws.send(text)
                    if self.throttle_s > 0:
                        await asyncio.sleep(self.throttle_s)


@dataclass
class _Partial:
    """A fragmented message being reassembled."""

    total: int
    started: float
    parts: dict[int, str] = field(default_factory=dict)
    size: int = 0


class _Connection:
    """One client's state; touched only in the event loop's thread."""

    _ids = itertools.count(1)

    def __init__(self, ws: ServerConnection, limits: BridgeLimits, authed: bool) -> None:
        self.id = next(self._ids)
        self.ws = ws
        self.limits = limits
        self.authed = authed
        self.level = 0  # status level asked with set_level; 0: never send status
        self.subscriptions: dict[str, _Subscription] = {}
        self.advertised: set[str] = set()  # topics
        self.services: set[str] = set()  # services this client hosts
        self.partials: dict[str | int, _Partial] = {}
        self.pending_calls = 0
        self.queued_bytes = 0  # bytes in this client's subscription queues
        self.partial_bytes = 0  # bytes in this client's fragment reassemblies
        self.forwarded: dict[str, asyncio.Future[p.ServiceResponse]] = {}
        self._tokens = float(limits.burst)
        self._refilled = time.monotonic()

    def allow(self) -> bool:
        """Token bucket: `max_messages_per_s` sustained, `burst` at once."""
        now = time.monotonic()
        rate = self.limits.max_messages_per_s
        self._tokens = min(float(self.limits.burst), self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(p.dumps(message))


class RosbridgeServer:
    """A rosbridge v2 server over websockets with a thread-safe in-process API.

    Args:
        host: address to bind; loopback by default. Another address needs `token`.
        port: TCP port (9090 is rosbridge's); 0 picks a free one (read `port` after `start`).
        token: the shared secret clients authenticate with (`auth` op first); None: no auth.
        limits: per-connection limits.
        rosapi: serve the rosapi introspection services (/rosapi/topics, ...).

    Raises:
        ConfigError: a non-loopback `host` without a token, or an empty token.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9090,
        *,
        token: str | None = None,
        limits: BridgeLimits | None = None,
        rosapi: bool = True,
    ) -> None:
        check_bind(host, token)
        if not 0 <= port <= 65535:
            raise ConfigError(f"port must be 0..65535 (0: any free port), got {port}")
        self.host = host
        self.port = port
        self.limits = limits or BridgeLimits()
        self._token = token
        self._lock = threading.RLock()
        self._topics: dict[str, _Topic] = {}
        self._services: dict[str, _Service] = {}
        self._conns: dict[int, _Connection] = {}
        self._params: dict[str, str] = {}  # rosapi parameters: name -> JSON text
        self._seen_rands: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._dispatcher: concurrent.futures.ThreadPoolExecutor | None = None
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None
        self._backlog = 0
        self._forward_ids = itertools.count(1)
        self.started_at = time.time()
        # counters for tests and benchmarks: frames, ops, errors and what the limits dropped
        self.stats: collections.Counter[str] = collections.Counter()
        if rosapi:
            from corrigible.robots.bridge.rosapi import add_rosapi

            add_rosapi(self)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> RosbridgeServer:
        """Binds and serves in a background thread; returns when clients can connect.

        Raises:
            ConfigError: the address cannot be bound (port in use, unknown address).
        """
        if self._thread is not None:
            raise ConfigError("the rosbridge server is already started")
        self._dispatcher = concurrent.futures.ThreadPoolExecutor(1, "rosbridge-callbacks")
        self._workers = concurrent.futures.ThreadPoolExecutor(4, "rosbridge-services")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="rosbridge-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout_s):
            raise ConfigError(f"the rosbridge server did not start within {timeout_s:g} s")
        if failure:
            self._thread.join(timeout_s)
            self._thread = None
            exc = failure[0]
            raise ConfigError(
                f"cannot serve rosbridge on {self.host}:{self.port}: {exc}; pick another "
                "--port (0: any free one) or stop what holds it"
            ) from exc
        return self

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except OSError as exc:
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        self._server = await serve(
            self._serve,
            self.host,
            self.port,
            max_size=self.limits.max_frame_bytes,
            max_queue=16,  # frames read ahead per connection; the rest wait in TCP buffers
            compression=None,  # no permessage-deflate: bounded CPU per byte received
            ping_interval=20,
            ping_timeout=20,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        sweeper = asyncio.get_running_loop().create_task(self._sweep_fragments())
        await self._stopping.wait()
        sweeper.cancel()
        self._server.close()
        await self._server.wait_closed()

    def stop(self) -> None:
        """Closes every connection and the listening socket; waits for the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if self._stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stopping.set)
        thread.join(10)
        self._thread = None
        for pool in (self._dispatcher, self._workers):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> RosbridgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The websocket URL clients connect to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Clients connected now."""
        return len(self._conns)

    # -- the in-process API -----------------------------------------------------------------------
    def advertise(self, topic: str, msg_type: str) -> None:
        """Declares that the server publishes `topic` with messages of `msg_type`.

        Raises:
            ConfigError: a bad name or type, or the topic is known with another type.
        """
        topic, msg_type = _checked(topic, msg_type)
        with self._lock:
            entry = self._topic(topic, msg_type)
            entry.server_advertised = True

    def unadvertise(self, topic: str) -> None:
        """The server stops publishing `topic` (subscribers keep waiting, as in ROS)."""
        with self._lock:
            entry = self._topics.get(_name(topic))
            if entry is not None:
                entry.server_advertised = False

    def publish(self, topic: str, msg: dict[str, Any]) -> None:
        """Sends `msg` to every subscriber of `topic` (clients and `on_publish` callbacks).

        Thread-safe; returns at once. Subscribers get it within their throttle and queue.

        Raises:
            ConfigError: `topic` was not advertised by the server.
        """
        topic = _name(topic)
        with self._lock:
            entry = self._topics.get(topic)
            if entry is None or not entry.server_advertised:
                raise ConfigError(
                    f"publish on {topic} before advertise(): call "
                    f"server.advertise({topic!r}, 'pkg/Type') first"
                )
            has_clients = bool(entry.subscriptions)
            callbacks = list(entry.callbacks)
        for callback in callbacks:
            self._dispatch(callback, msg)
        if has_clients and self._loop is not None and not self._loop.is_closed():
            text = p.dumps({"op": "publish", "topic": topic, "msg": msg})
            with contextlib.suppress(RuntimeError):  # the loop closed in between: nobody listens
                self._loop.call_soon_threadsafe(self._fan_out, topic, text)

    def on_publish(self, topic: str, msg_type: str, callback: TopicCallback) -> Callable[[], None]:
        """Calls `callback(msg)` with every message published on `topic` (by clients or here).

        Callbacks run in the server's dispatcher thread, in arrival order; one that raises is
        logged and kept.

        Returns:
            A function that removes the callback.
        """
        topic, msg_type = _checked(topic, msg_type)
        with self._lock:
            entry = self._topic(topic, msg_type)
            entry.callbacks.append(callback)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                entry.callbacks.remove(callback)

        return remove

    def advertise_service(
        self,
        name: str,
        srv_type: str,
        handler: ServiceHandler,
        *,
        fields: tuple[str, ...] = (),
    ) -> None:
        """Serves `name`: `handler(args) -> values` (a dict; None means {}).

        A handler that raises answers the call with `result: false` and the error as `values`.

        Args:
            fields: the request's field names in order, so that list `args` can be mapped.

        Raises:
            ConfigError: a bad name or type, or the name is already served.
        """
        name, srv_type = _checked(name, srv_type, what="service")
        with self._lock:
            if name in self._services:
                raise ConfigError(f"the service {name} is already advertised")
            self._services[name] = _Service(name, srv_type, handler=handler, fields=fields)

    def unadvertise_service(self, name: str) -> None:
        """Stops serving an in-process service."""
        with self._lock:
            service = self._services.get(_name(name, "service"))
            if service is not None and service.handler is not None:
                del self._services[service.name]

    def call_service(
        self, name: str, args: dict[str, Any] | None = None, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """Calls a service (hosted by a client or in-process) from any thread but the loop's.

        Raises:
            ConfigError: the service is unknown or failed, or the server is not running.
            TimeoutError: no answer within `timeout_s`.
        """
        if self._loop is None or self._thread is None:
            raise ConfigError("the rosbridge server is not running; call start() first")
        request = p.CallService(op="call_service", service=name, args=args or {})
        future = asyncio.run_coroutine_threadsafe(self._call(request, timeout_s), self._loop)
        ok, values = future.result(timeout_s + 1.0)
        if not ok:
            raise ConfigError(f"service {request.service} failed: {values}")
        return values if isinstance(values, dict) else {"values": values}

    def topics(self) -> dict[str, str]:
        """Known topics (advertised here or by clients, or subscribed with a type) -> type."""
        with self._lock:
            return {t.name: t.type or "" for t in self._topics.values() if _listed(t)}

    def services(self) -> dict[str, str]:
        """Served services -> type."""
        with self._lock:
            return {s.name: s.type for s in self._services.values()}

    def subscriber_count(self, topic: str) -> int:
        """Clients subscribed to `topic` now (publishers may skip work nobody reads)."""
        with self._lock:
            entry = self._topics.get(_name(topic))
            return 0 if entry is None else len(entry.subscriptions)

    # -- registry helpers (hold self._lock) -----------------------------------------------------
    def _topic(self, name: str, msg_type: str | None) -> _Topic:
        entry = self._topics.get(name)
        if entry is None:
            entry = self._topics[name] = _Topic(name, msg_type)
        elif msg_type is not None:
            if entry.type is None:
                entry.type = msg_type
            elif entry.type != msg_type:
                raise ConfigError(
                    f"topic {name} has type {entry.type}, not {msg_type}; use {entry.type} "
                    "or another topic name"
                )
        return entry

    def _dispatch(self, callback: TopicCallback, msg: dict[str, Any]) -> None:
        pool = self._dispatcher
        if pool is None:  # not started: call here (tests and tools without clients)
            _call_safely(callback, msg)
            return
        with self._lock:
            if self._backlog >= self.limits.max_dispatch_backlog:
                self.stats["dropped.dispatch_backlog"] += 1
                return
            self._backlog += 1

        def run() -> None:
            try:
                _call_safely(callback, msg)
            finally:
                with self._lock:
                    self._backlog -= 1

        try:
            pool.submit(run)
        except RuntimeError:  # shut down
            with self._lock:
                self._backlog -= 1

    def _fan_out(self, topic: str, text: str) -> None:
        with self._lock:
            entry = self._topics.get(topic)
            subs = list(entry.subscriptions) if entry is not None else []
        for sub in subs:
            if not sub.offer(text):
                self.stats["dropped.slow_client"] += 1

    # -- connections ------------------------------------------------------------------------------
    async def _serve(self, ws: ServerConnection) -> None:
        if len(self._conns) >= self.limits.max_connections:
            self.stats["refused.connections"] += 1
            await ws.close(_TRY_AGAIN_LATER, "too many rosbridge clients; try again later")
            return
        conn = _Connection(ws, self.limits, authed=self._token is None)
        self._conns[conn.id] = conn
        self.stats["connections"] += 1
        try:
            if not conn.authed and not await self._authenticate(conn):
                return
            async for frame in ws:
                await self._on_frame(conn, frame)
        except ConnectionClosed:
            pass
        finally:
            sent = ws.protocol.close_sent
            if sent is not None and sent.code == 1009:  # a frame over max_frame_bytes
                self.stats["closed.frame_too_big"] += 1
            self._drop_connection(conn)

    async def _authenticate(self, conn: _Connection) -> bool:
        """Waits for the `auth` op; closes the connection on anything else (1008)."""
        try:
            frame = await asyncio.wait_for(conn.ws.recv(), self.limits.auth_timeout_s)
        except TimeoutError:
            await conn.ws.close(_POLICY_VIOLATION, "authenticate first: send the auth op")
            self.stats["refused.auth"] += 1
            return False
        problem = None
        try:
            op = p.parse_op(p.loads(frame))
        except p.ProtocolError as exc:
            problem = str(exc)
        else:
            if not isinstance(op, p.Auth):
                problem = f"the first op must be auth on this server, got {op.op}"
            else:
                problem = self._check_auth(op)
        if problem is not None:
            self.stats["refused.auth"] += 1
            await conn.ws.close(_POLICY_VIOLATION, f"authentication failed: {problem}"[:120])
            return False
        conn.authed = True
        return True

    def _check_auth(self, op: p.Auth) -> str | None:
        """None when `op` proves the token; else why not (without revealing the token)."""
        assert self._token is not None
        if op.token is not None:
            ok = hmac.compare_digest(op.token.encode(), self._token.encode())
            return None if ok else "wrong token"
        if op.mac is None:
            return "auth needs 'token' or a rosauth 'mac'"
        t, end = _seconds(op.t), _seconds(op.end)
        if t is None or end is None:
            return "auth 'mac' needs numeric 't' and 'end' (seconds)"
        now = time.time()
        if end < now or t > now + 30:
            return "auth has expired or is dated in the future"
        text = f"{self._token}{op.client}{op.dest}{op.rand}{int(t)}{op.level}{int(end)}"
        expected = hashlib.sha512(text.encode()).hexdigest()
        if not hmac.compare_digest(expected, op.mac.lower()):
            return "wrong mac"
        if op.rand in self._seen_rands:
            return "this auth was used before (replay)"
        self._seen_rands[op.rand] = None
        while len(self._seen_rands) > 10_000:
            self._seen_rands.popitem(last=False)
        return None

    def _drop_connection(self, conn: _Connection) -> None:
        self._conns.pop(conn.id, None)
        with self._lock:
            for sub in conn.subscriptions.values():
                sub.task.cancel()
                entry = self._topics.get(sub.topic)
                if entry is not None:
                    entry.subscriptions.discard(sub)
            for topic in conn.advertised:
                entry = self._topics.get(topic)
                if entry is not None:
                    entry.publishers.discard(conn.id)
            for name in conn.services:
                service = self._services.get(name)
                if service is not None and service.host is conn:
                    del self._services[name]
            self._forget_unused()
        for future in conn.forwarded.values():
            if not future.done():
                future.set_exception(ConnectionError("the client hosting the service left"))
        conn.subscriptions.clear()
        conn.partials.clear()

    def _forget_unused(self) -> None:
        """Drops topics nobody advertises, subscribes or listens to (bounded registry)."""
        for name in [n for n, t in self._topics.items() if not _alive(t)]:
            del self._topics[name]

    async def _sweep_fragments(self) -> None:
        """Every second, drops reassemblies older than `fragment_timeout_s`."""
        while True:
            await asyncio.sleep(1.0)
            cutoff = time.monotonic() - self.limits.fragment_timeout_s
            for conn in list(self._conns.values()):
                for key in [k for k, v in conn.partials.items() if v.started < cutoff]:
                    self._drop_partial(conn, key)
                    self.stats["dropped.fragment_timeout"] += 1

    # -- frames -----------------------------------------------------------------------------------
    async def _on_frame(
        self, conn: _Connection, frame: str | bytes, *, nested: bool = False
    ) -> None:
        self.stats["frames"] += 1
        if not nested and not conn.allow():
            self.stats["dropped.rate"] += 1
            return
        try:
            op = p.parse_op(p.loads(frame))
            await self._handle(conn, op, nested=nested)
        except (p.ProtocolError, ConfigError) as exc:
            self.stats["errors"] += 1
            _LOG.debug("rosbridge client %d: %s", conn.id, exc)
            await self._status(conn, "error", str(exc))

    async def _status(self, conn: _Connection, level: str, text: str, op_id: Any = None) -> None:
        """A `status` op, only to a client that asked for it with `set_level`."""
        if conn.level >= _LEVELS[level]:
            message = {"op": "status", "level": level, "msg": text[:1000]}
            if op_id is not None:
                message["id"] = op_id
            await conn.send(message)

    async def _handle(self, conn: _Connection, op: p.Op, *, nested: bool) -> None:
        if isinstance(op, p.Publish):
            self._on_client_publish(conn, op)
        elif isinstance(op, p.Subscribe):
            self._subscribe(conn, op)
        elif isinstance(op, p.Unsubscribe):
            self._unsubscribe(conn, op)
        elif isinstance(op, p.Advertise):
            self._advertise(conn, op)
        elif isinstance(op, p.Unadvertise):
            with self._lock:
                conn.advertised.discard(op.topic)
                entry = self._topics.get(op.topic)
                if entry is not None:
                    entry.publishers.discard(conn.id)
                self._forget_unused()
        elif isinstance(op, p.CallService):
            self._start_call(conn, op)
        elif isinstance(op, p.ServiceResponse):
            self._on_service_response(conn, op)
        elif isinstance(op, p.AdvertiseService):
            self._advertise_service(conn, op)
        elif isinstance(op, p.UnadvertiseService):
            with self._lock:
                service = self._services.get(op.service)
                if service is not None and service.host is conn:
                    del self._services[op.service]
                conn.services.discard(op.service)
        elif isinstance(op, p.Fragment):
            if nested:
                raise p.ProtocolError("a fragment must not hold another fragment")
            await self._on_fragment(conn, op)
        elif isinstance(op, p.SetLevel):
            conn.level = _LEVELS[op.level]
        elif isinstance(op, p.Auth):
            if self._token is None:
                return  # nothing to prove on an open (loopback) server
            raise p.ProtocolError("already authenticated")
        self.stats[f"op.{op.op}"] += 1

    def _on_client_publish(self, conn: _Connection, op: p.Publish) -> None:
        with self._lock:
            entry = self._topics.get(op.topic)
            if entry is None or entry.type is None:
                raise p.ProtocolError(
                    f"publish on {op.topic}: the topic is unknown; advertise it with its type first"
                )
            if (
                op.topic not in conn.advertised
                and len(conn.advertised) < self.limits.max_advertised
            ):
                conn.advertised.add(op.topic)  # rosbridge advertises a known topic implicitly
                entry.publishers.add(conn.id)
            callbacks = list(entry.callbacks)
            subs = list(entry.subscriptions)
        for callback in callbacks:
            self._dispatch(callback, op.msg)
        if subs:
            text = p.dumps({"op": "publish", "topic": op.topic, "msg": op.msg})
            for sub in subs:
                if not sub.offer(text):
                    self.stats["dropped.slow_client"] += 1

    def _advertise(self, conn: _Connection, op: p.Advertise) -> None:
        if op.topic not in conn.advertised and self._advertised(conn) >= self.limits.max_advertised:
            self.stats["refused.advertise"] += 1
            raise p.ProtocolError(
                f"advertise {op.topic}: this client already advertises "
                f"{self.limits.max_advertised} topics and services (the limit)"
            )
        with self._lock:
            entry = self._topic(op.topic, op.type)
            entry.publishers.add(conn.id)
            conn.advertised.add(op.topic)

    @staticmethod
    def _advertised(conn: _Connection) -> int:
        return len(conn.advertised) + len(conn.services)

    def _subscribe(self, conn: _Connection, op: p.Subscribe) -> None:
        sub = conn.subscriptions.get(op.topic)
        if sub is None and len(conn.subscriptions) >= self.limits.max_subscriptions:
            self.stats["refused.subscribe"] += 1
            raise p.ProtocolError(
                f"subscribe {op.topic}: this client already has {self.limits.max_subscriptions} "
                "subscriptions (the limit); unsubscribe some first"
            )
        if sub is not None and op.id not in sub.ids and len(sub.ids) >= 16:
            raise p.ProtocolError(f"subscribe {op.topic}: more than 16 ids on one topic")
        with self._lock:
            entry = self._topic(op.topic, op.type)
            if sub is None:
                sub = conn.subscriptions[op.topic] = _Subscription(conn, op.topic, self.limits)
                entry.subscriptions.add(sub)
        sub.ids[op.id] = op
        sub.update()

    def _unsubscribe(self, conn: _Connection, op: p.Unsubscribe) -> None:
        sub = conn.subscriptions.get(op.topic)
        if sub is None:
            return
        if op.id is not None and op.id in sub.ids and len(sub.ids) > 1:
            del sub.ids[op.id]
            sub.update()
            return
        sub.task.cancel()
        conn.queued_bytes -= sum(len(text) for text in sub.queue)
        del conn.subscriptions[op.topic]
        with self._lock:
            entry = self._topics.get(op.topic)
            if entry is not None:
                entry.subscriptions.discard(sub)
            self._forget_unused()

    def _advertise_service(self, conn: _Connection, op: p.AdvertiseService) -> None:
        with self._lock:
            current = self._services.get(op.service)
            if current is not None and current.host is not conn:
                raise p.ProtocolError(f"advertise_service {op.service}: already served")
            if current is None and self._advertised(conn) >= self.limits.max_advertised:
                self.stats["refused.advertise"] += 1
                raise p.ProtocolError(
                    f"advertise_service {op.service}: this client already advertises "
                    f"{self.limits.max_advertised} topics and services (the limit)"
                )
            self._services[op.service] = _Service(op.service, op.type, host=conn)
            conn.services.add(op.service)

    # -- services ---------------------------------------------------------------------------------
    def _start_call(self, conn: _Connection, op: p.CallService) -> None:
        limit = self.limits.max_pending_calls
        if conn.pending_calls >= limit:
            self.stats["refused.call"] += 1
            if conn.pending_calls >= 2 * limit:  # not even refusals: the client does not read
                return
            conn.pending_calls += 1
            text = f"more than {limit} calls in flight; wait for the answers"

            async def refuse() -> None:
                try:
                    await conn.send(p.service_response(op.id, op.service, text, result=False))
                finally:
                    conn.pending_calls -= 1

            asyncio.get_running_loop().create_task(refuse())
            return
        conn.pending_calls += 1

        async def answer() -> None:
            try:
                ok, values = await self._call(op, op.timeout or self.limits.service_timeout_s)
                reply = p.service_response(op.id, op.service, values, result=ok)
                text = p.dumps(reply)
                size = op.fragment_size
                if size is not None:
                    size = max(size, self.limits.min_fragment_size)
                if size is not None and len(text) > size:
                    for part in p.fragments(text, op.id or op.service, size):
                        await conn.send(part)
                else:
                    await conn.send(reply)
            finally:
                conn.pending_calls -= 1

        asyncio.get_running_loop().create_task(answer())

    async def _call(self, op: p.CallService, timeout_s: float) -> tuple[bool, Any]:
        """(result, values) of one call; never raises (a failure is `(False, message)`)."""
        with self._lock:
            service = self._services.get(op.service)
        if service is None:
            return False, f"service {op.service} is not advertised; /rosapi/services lists them"
        try:
            args = _args_dict(op.args, service)
        except p.ProtocolError as exc:
            return False, str(exc)
        if service.handler is not None:
            handler = service.handler
            loop = asyncio.get_running_loop()
            try:
                values = await asyncio.wait_for(
                    loop.run_in_executor(self._workers, handler, args), timeout_s
                )
            except TimeoutError:
                return False, f"service {op.service} did not answer within {timeout_s:g} s"
            except Exception as exc:  # the handler's failure is the caller's answer
                return False, f"{type(exc).__name__}: {exc}"
            return True, {} if values is None else values
        assert service.host is not None
        host = service.host
        if len(host.forwarded) >= self.limits.max_pending_calls:
            return False, f"the client serving {op.service} has too many calls in flight"
        forward_id = f"call_service:{op.service}:{next(self._forward_ids)}"
        future: asyncio.Future[p.ServiceResponse] = asyncio.get_running_loop().create_future()
        host.forwarded[forward_id] = future
        await host.send(
            {"op": "call_service", "id": forward_id, "service": op.service, "args": args}
        )
        try:
            response = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return False, f"service {op.service} did not answer within {timeout_s:g} s"
        except ConnectionError as exc:
            return False, f"service {op.service}: {exc}"
        finally:
            host.forwarded.pop(forward_id, None)
        values = response.values if response.values is not None else {}
        return response.result, values

    def _on_service_response(self, conn: _Connection, op: p.ServiceResponse) -> None:
        future = conn.forwarded.get(str(op.id)) if op.id is not None else None
        if future is None or future.done():
            raise p.ProtocolError(f"service_response for an unknown call id {str(op.id)[:60]!r}")
        future.set_result(op)

    # -- fragments --------------------------------------------------------------------------------
    async def _on_fragment(self, conn: _Connection, op: p.Fragment) -> None:
        limits = self.limits
        if op.total > limits.max_fragment_parts:
            raise p.ProtocolError(f"fragment total {op.total} exceeds {limits.max_fragment_parts}")
        if op.num >= op.total:
            raise p.ProtocolError(f"fragment num {op.num} is not below total {op.total}")
        partial = conn.partials.get(op.id)
        if partial is None:
            if len(conn.partials) >= limits.max_pending_fragments:
                self.stats["dropped.fragments"] += 1
                raise p.ProtocolError(
                    f"more than {limits.max_pending_fragments} fragmented messages in reassembly"
                )
            partial = conn.partials[op.id] = _Partial(op.total, time.monotonic())
        if partial.total != op.total:
            self._drop_partial(conn, op.id)
            raise p.ProtocolError(f"fragment {op.id!r}: total changed from {partial.total}")
        previous = partial.parts.get(op.num)
        grow = len(op.data) - (len(previous) if previous is not None else 0)
        if conn.partial_bytes + grow > limits.max_message_bytes:
            self._drop_partial(conn, op.id)
            self.stats["dropped.fragments"] += 1
            raise p.ProtocolError(
                f"fragments in reassembly exceed {limits.max_message_bytes} bytes; this message "
                "is dropped"
            )
        partial.parts[op.num] = op.data
        partial.size += grow
        conn.partial_bytes += grow
        if len(partial.parts) == partial.total:
            self._drop_partial(conn, op.id)
            text = "".join(partial.parts[n] for n in range(partial.total))
            await self._on_frame(conn, text, nested=True)

    @staticmethod
    def _drop_partial(conn: _Connection, key: str | int) -> None:
        partial = conn.partials.pop(key, None)
        if partial is not None:
            conn.partial_bytes -= partial.size


def _call_safely(callback: TopicCallback, msg: dict[str, Any]) -> None:
    try:
        callback(msg)
    except Exception:  # a subscriber's bug must not stop the server
        _LOG.exception("rosbridge topic callback %r failed", callback)


def _checked(name: str, kind: str, *, what: str = "topic") -> tuple[str, str]:
    try:
        return p.check_name(name, what), p.check_type(kind)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _name(name: str, what: str = "topic") -> str:
    try:
        return p.check_name(name, what)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _listed(topic: _Topic) -> bool:
    return topic.server_advertised or bool(topic.publishers) or topic.type is not None


def _alive(topic: _Topic) -> bool:
    return topic.server_advertised or bool(
        topic.publishers or topic.callbacks or topic.subscriptions
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        secs = value.get("secs", value.get("sec"))
        if isinstance(secs, int | float) and not isinstance(secs, bool):
            return float(secs)
    return None


def _args_dict(args: dict[str, Any] | list[Any] | None, service: _Service) -> dict[str, Any]:
    """Service args as a dict: roslibpy sends a dict, the spec a list in field order."""
    if args is None:
        return {}
    if isinstance(args, dict):
        return args
    if not args:
        return {}
    if len(args) > len(service.fields):
        raise p.ProtocolError(
            f"call_service {service.name}: {len(args)} list args, but the request has "
            f"{len(service.fields)} fields ({', '.join(service.fields) or 'none'}); send a dict"
        )
    return dict(zip(service.fields, args, strict=False))


__all__ = ["BridgeLimits", "RosbridgeServer", "check_bind", "is_loopback"]
