"""Fuzzing the rosbridge server: malformed, oversized, out-of-order and fragmented frames.

The server runs in its own process (its memory is measured alone, with psutil). Eight raw
websocket clients on loopback send a seeded mix of bad frames as fast as the server takes them
(half of them never read what the server sends back, so its send queues fill); a frame over the
size limit closes its connection and the client reconnects. Afterwards the server process must
still be up, its tables back to where they were, its memory bounded, and a well-behaved
roslibpy client served correctly: subscribe, publish, call services.

The default run sends 10,000 frames (a few seconds); the slow variant 100,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import roslibpy
from rosbridge_testing import ros_client, wait_for
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SERVER = Path(__file__).with_name("rosbridge_fuzz_server.py")
OPS = [
    "advertise", "unadvertise", "publish", "subscribe", "unsubscribe", "call_service",
    "service_response", "advertise_service", "unadvertise_service", "fragment", "auth",
    "set_level", "status", "png", "send_action_goal", "",
]  # fmt: skip
ODD_VALUES: list[Any] = [
    None, True, -1, 0, 2**70, 1e308, -0.0, "", "x" * 300, "/ok", "/a b", "../..", "\u0000",
    "😀", [], [1, [2, [3]]], {}, {"a": {"b": {}}}, "std_msgs/String", "bad type",
]  # fmt: skip
FIELDS = [
    "op", "id", "topic", "type", "msg", "service", "args", "values", "result", "throttle_rate",
    "queue_length", "fragment_size", "data", "num", "total", "level", "compression", "token",
]  # fmt: skip
MAX_FRAME = 1 << 20  # the server's default max_frame_bytes


@pytest.fixture
def fuzz_server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = int(proc.stdout.readline())
    try:
        yield proc, port
    finally:
        proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frame(rng: random.Random, n: int) -> str | bytes:
    """One hostile frame; `n` counts frames so far (to place the rare oversized ones)."""
    if n % 250 == 249:
        return "[" * (MAX_FRAME + 10)  # over the size limit: the connection is closed
    kind = rng.randrange(12)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))  # binary garbage (CBOR is not served)
    if kind == 1:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 200)))
    if kind == 2:  # truncated JSON of a valid op
        text = json.dumps({"op": "subscribe", "topic": "/tick", "id": n})
        return text[: rng.randrange(len(text))]
    if kind == 3:
        return rng.choice(["[]", "1", '"op"', "null", "NaN", '{"op": Infinity}', "{}"])
    if kind == 4:  # deep nesting (within the frame size)
        depth = rng.choice([40, 1000, 100_000])
        return '{"op": "publish", "topic": "/say", "msg": ' + "[" * depth + "]" * depth + "}"
    if kind == 5:  # a known op with fields of the wrong type
        frame = {f: rng.choice(ODD_VALUES) for f in rng.sample(FIELDS, rng.randrange(1, 8))}
        frame["op"] = rng.choice(OPS)
        return json.dumps(frame)
    if kind == 6:  # out of order: answers, removals and parts of things that never began
        return json.dumps(
            rng.choice(
                [
                    {"op": "service_response", "id": f"x{n}", "service": "/s", "values": {}},
                    {"op": "unsubscribe", "topic": f"/never{n % 50}", "id": n},
                    {"op": "unadvertise", "topic": "/tick"},
                    {"op": "unadvertise_service", "service": "/rosapi/topics"},
                    {"op": "fragment", "id": n, "data": "{", "num": 5, "total": 3},
                    {"op": "fragment", "id": "f", "data": "}", "num": 0, "total": 10**9},
                    {"op": "publish", "topic": f"/unknown{n % 50}", "msg": {"data": 1}},
                    {"op": "auth", "token": "nothing to prove"},
                ]
            )
        )
    if kind == 7:  # a fragment of a message that may never be completed
        return json.dumps(
            {
                "op": "fragment",
                "id": f"m{rng.randrange(20)}",
                "data": "x" * rng.randrange(1, 5000),
                "num": rng.randrange(4),
                "total": rng.choice([4, 4, 5]),
            }
        )
    if kind == 8:  # valid topic ops on many names (bounded by the subscription limit)
        topic = f"/fuzz/t{rng.randrange(200)}"
        return json.dumps(
            rng.choice(
                [
                    {
                        "op": "subscribe",
                        "topic": topic,
                        "type": "std_msgs/Int32",
                        "id": n,
                        "throttle_rate": rng.randrange(0, 50),
                        "queue_length": rng.randrange(0, 5),
                    },
                    {"op": "advertise", "topic": topic, "type": "std_msgs/Int32"},
                    {"op": "subscribe", "topic": "/tick", "fragment_size": rng.randrange(1, 9)},
                    {"op": "publish", "topic": "/say", "msg": {"data": "y" * rng.randrange(900)}},
                    {"op": "advertise_service", "service": f"/fuzz/s{n % 100}", "type": "a/B"},
                ]
            )  # fmt: skip
        )
    if kind == 9:  # service calls with list, dict and odd args
        return json.dumps(
            {
                "op": "call_service",
                "id": n,
                "service": rng.choice(["/rosapi/topics", "/rosapi/topic_type", "/fuzz/s1", "/x"]),
                "args": rng.choice([[], ["/tick"], {"topic": 3}, [1, 2, 3], {}, None]),
            }
        )
    if kind == 10:  # a valid message split into fragments, sent in shuffled order
        text = json.dumps({"op": "publish", "topic": "/say", "msg": {"data": f"frag {n}"}})
        size = rng.randrange(3, 20)
        parts = [text[i : i + size] for i in range(0, len(text), size)]
        num = rng.randrange(len(parts))
        frame = {"op": "fragment", "id": f"v{n // 8}", "data": parts[num], "num": num}
        return json.dumps({**frame, "total": len(parts)})
    return json.dumps({"op": "set_level", "level": rng.choice(["error", "none", "loud", 3])})


async def _client(
    port: int, seed: int, budget: list[int], counts: dict[str, int], reads: bool
) -> None:
    """Sends frames until the shared budget is spent; reconnects when the server closes.

    An oversized frame is the last on its connection: the client waits for the server to close
    it (1009), then reconnects. Each client ends with a call and waits for its answer, so every
    frame it sent has been processed. One client reads only every 2000 frames (the server's
    queues for it fill up; reading now and then keeps it within the server's ping timeout); it
    sends no `set_level` (status replies would rightly stall
    its own connection) and no oversized frame (it would not see the close).
    """
    rng = random.Random(seed)
    made = 0  # frames this client has made (every 250th is oversized)
    while budget[0] > 0:
        try:
            async with connect(f"ws://127.0.0.1:{port}", max_size=None, open_timeout=20) as ws:
                answered = asyncio.Event()
                drain = asyncio.create_task(_drain(ws, counts, answered)) if reads else None
                try:
                    while budget[0] > 0:
                        made += 1
                        frame = _frame(rng, made)
                        big = len(frame) > MAX_FRAME
                        if not reads and (big or (isinstance(frame, str) and "set_level" in frame)):
                            continue
                        budget[0] -= 1
                        counts["frames"] += 1
                        if big:  # the frames before it are processed first, then it closes
                            assert drain is not None
                            await _sync(ws, answered, drain)
                            counts["big"] += 1
                            await ws.send(frame)
                            await asyncio.wait_for(drain, 60)  # ends when the server closes
                            raise ConnectionClosed(None, None)
                        await ws.send(frame)
                        await asyncio.sleep(0)  # let the other clients and this reader run
                        if drain is None and made % 2000 == 0:  # the slow reader catches up
                            catch_up = asyncio.create_task(_drain(ws, counts, answered))
                            await _sync(ws, answered, catch_up)  # (and answers the pings)
                            catch_up.cancel()
                    if drain is None:  # the slow reader starts reading at last
                        drain = asyncio.create_task(_drain(ws, counts, answered))
                    await _sync(ws, answered, drain)
                finally:
                    if drain is not None:
                        drain.cancel()
        except ConnectionClosed:
            counts["reconnects"] += 1


async def _sync(ws: Any, answered: asyncio.Event, reader: asyncio.Task) -> None:
    """A call whose answer comes after every frame sent before it has been processed.

    The server's per-connection rate limit drops ops past its burst (counted, connection
    kept), and after a flood that can be the call itself, so it is sent again every 2 s until
    answered. Raises ConnectionClosed when the reader ends first: the server closed this
    connection (a slow reader past the ping timeout), and the client reconnects.
    """
    answered.clear()
    call = json.dumps({"op": "call_service", "id": "sync", "service": "/rosapi/get_time"})
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        await ws.send(call)
        waiter = asyncio.create_task(answered.wait())
        done, _ = await asyncio.wait(
            {waiter, reader}, timeout=2.0, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if answered.is_set():
            return
        if reader in done:
            raise ConnectionClosed(None, None)
    raise TimeoutError("no answer to the sync call within 60 s")


async def _drain(ws: Any, counts: dict[str, int], answered: asyncio.Event) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for frame in ws:
            counts["received"] += 1
            if '"id":"sync"' in frame:
                answered.set()


def _fuzz(port: int, frames: int) -> dict[str, int]:
    counts = {"frames": 0, "big": 0, "reconnects": 0, "received": 0}
    budget = [frames]

    async def main() -> None:
        await asyncio.gather(
            *(_client(port, seed, budget, counts, reads=seed != 7) for seed in range(8))
        )

    asyncio.run(main())
    return counts


def _served_correctly(port: int) -> dict[str, Any]:
    """A well-behaved roslibpy client: subscribe, publish and get it echoed, call services."""
    ticks: list[dict[str, Any]] = []
    echoes: list[dict[str, Any]] = []
    with ros_client(port) as ros:
        roslibpy.Topic(ros, "/tick", "std_msgs/Int32").subscribe(ticks.append)
        roslibpy.Topic(ros, "/echo", "std_msgs/String").subscribe(echoes.append)
        say = roslibpy.Topic(ros, "/say", "std_msgs/String")
        assert wait_for(lambda: len(ticks) >= 5, 10)
        say.publish(roslibpy.Message({"data": "still here"}))
        assert wait_for(lambda: echoes == [{"data": "still here"}], 10), echoes
        assert {"/tick", "/echo", "/say"} <= set(ros.get_topics())
        stats = roslibpy.Service(ros, "/fuzz/stats", "corrigible/FuzzStats")
        return stats.call(roslibpy.ServiceRequest(), timeout=10)


def _run(fuzz_server: tuple[subprocess.Popen[str], int], frames: int, limit_s: float) -> None:
    proc, port = fuzz_server
    memory = psutil.Process(proc.pid)
    _served_correctly(port)  # warm up: every code path of a good client has run once
    rss_before = memory.memory_info().rss
    t0 = time.perf_counter()
    counts = _fuzz(port, frames)
    elapsed = time.perf_counter() - t0
    assert proc.poll() is None, "the server process died"
    time.sleep(1.0)  # closed connections are cleaned up
    after = _served_correctly(port)
    rss_after = memory.memory_info().rss
    growth_mib = (rss_after - rss_before) / 2**20
    print(
        f"\nfuzz: {counts['frames']} frames in {elapsed:.1f} s ({counts['big']} oversized), "
        f"{counts['reconnects']} "
        f"reconnects, {counts['received']} replies read; server RSS "
        f"{rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB; stats {after['stats']}"
    )
    assert counts["frames"] >= frames
    assert elapsed < limit_s
    stats = after["stats"]
    # every frame reached the server: parsed, or refused by size (plus the final sync calls)
    too_big = stats.get("closed.frame_too_big", 0)
    assert stats["frames"] + too_big >= frames
    assert stats["errors"] > frames * 0.3  # and most were refused as malformed
    assert too_big == counts["big"] > 0  # each oversized frame closed its connection
    assert after["connections"] == 1 and after["partials"] == 0 and after["backlog"] == 0
    assert after["topics"] == ["/echo", "/say", "/tick"]  # what the fuzz made is gone
    assert after["services"] == 20  # the rosapi services and /fuzz/stats: none left over
    assert growth_mib < 64, f"server RSS grew {growth_mib:.1f} MiB"


def test_ten_thousand_hostile_frames_leave_the_server_up_and_bounded(fuzz_server) -> None:
    _run(fuzz_server, 10_000, limit_s=60)


@pytest.mark.slow
def test_a_hundred_thousand_hostile_frames(fuzz_server) -> None:
    _run(fuzz_server, 100_000, limit_s=600)
