"""A real OpenAI-compatible HTTP server on loopback that replays recorded chat completions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

RECORDINGS = Path(__file__).parent / "recordings"


class ReplayServer:
    """Serves `POST /v1/chat/completions` from a queue of scripted replies.

    A reply is ("recording", name) for a recorded chat-completion body, ("raw", status, text)
    for a non-completion answer, or ("hang", seconds) for a server that does not answer in
    time. Every request body is kept for the test to check the wire format.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "body": body})
                reply = server.replies.pop(0) if server.replies else ("raw", 500, "no reply")
                if reply[0] == "hang":
                    server.release.wait(reply[1])
                    return
                if reply[0] == "recording":
                    status, text = 200, (RECORDINGS / f"{reply[1]}.json").read_text()
                else:
                    status, text = reply[1], reply[2]
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        """The server root including /v1."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        """Releases hung handlers and stops the server."""
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def vlm_server() -> Iterator[ReplayServer]:
    server = ReplayServer()
    yield server
    server.close()
