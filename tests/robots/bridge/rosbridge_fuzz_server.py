"""A rosbridge server for the fuzz test, run in its own process so that its memory is its own.

It prints its port, publishes /tick at about 50 Hz, echoes /say to /echo, and serves
/fuzz/stats (counters and the sizes of its tables); it exits when its stdin closes.
"""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

from corrigible.robots.bridge.server import RosbridgeServer


def main() -> None:
    server = RosbridgeServer(port=0).start()
    server.advertise("/tick", "std_msgs/Int32")
    server.advertise("/echo", "std_msgs/String")
    server.on_publish("/say", "std_msgs/String", lambda msg: server.publish("/echo", msg))

    def stats(_: dict[str, Any]) -> dict[str, Any]:
        gc.collect()
        conns = list(server._conns.values())
        return {
            "stats": dict(server.stats),
            "connections": len(conns),
            "topics": sorted(server._topics),
            "services": len(server._services),
            "partials": sum(len(c.partials) for c in conns),
            "queued_bytes": sum(c.queued_bytes for c in conns),
            "backlog": server._backlog,
        }

    server.advertise_service("/fuzz/stats", "corrigible/FuzzStats", stats)
    print(server.port, flush=True)
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    tick = 0
    while not closed.wait(0.02):
        server.publish("/tick", {"data": tick})
        tick += 1
    server.stop()


if __name__ == "__main__":
    main()
