"""Records OpenAI wire exchanges to JSONL, and the request normalisation replay matches on.

The recorder is an HTTP transport wrapped around the real one, so it sees exactly the bytes the
`openai` client sent and the server returned; nothing is re-serialised from Python objects.

Wire format, one JSON object per line (one line per HTTP exchange)::

    {"request":  {"method": "POST", "path": "/v1/chat/completions", "body": {...}},
     "response": {"status": 200, "body": {...}}}

`body` holds the decoded JSON body (a string if the body was not JSON).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

# The `openai` client >= 3 talks through `httpx2`, a fork of httpx with the same API; older
# clients use httpx itself. Transports must subclass the library the client actually uses, or
# the client rejects the `http_client`.
try:
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed openai major version
    import httpx  # type: ignore[no-redef]

_FRAMING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})

__all__ = ["RecordingTransport", "httpx", "normalise_request", "request_key"]


def _decode_body(content: bytes) -> Any:
    """JSON-decodes a body, falling back to text so that odd replies are still recorded."""
    if not content:
        return None
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return content.decode("utf-8", errors="replace")


def normalise_request(body: Any) -> dict[str, Any]:
    """The fields of a chat request that decide its answer, in a canonical form.

    Only `model, messages, temperature, max_tokens, stop` take part: client-added fields (user
    agent, stream flags, retry ids) vary between client versions and must not break a replay.

    Args:
        body: the decoded JSON body of a `/chat/completions` request.
    """
    body = body if isinstance(body, dict) else {}
    stop = body.get("stop")
    temperature = body.get("temperature")
    return {
        "model": body.get("model"),
        "messages": [
            {"role": m.get("role"), "content": m.get("content")}
            for m in body.get("messages") or []
            if isinstance(m, dict)
        ],
        "temperature": None if temperature is None else float(temperature),
        "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        # The API accepts a bare string or a list; both mean the same.
        "stop": [stop] if isinstance(stop, str) else stop,
    }


def request_key(body: Any) -> str:
    """`normalise_request` as a canonical JSON string, usable as a dict key."""
    return json.dumps(
        normalise_request(body), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )


class RecordingTransport(httpx.BaseTransport):
    """Forwards every request to `inner` and appends the exchange to a JSONL file.

    Lines are appended (never truncated) so several runs can build one replay file; delete the
    file first to start over. The file is opened per exchange, so there is no handle to leak.

    Args:
        path: the JSONL file to append to; its folder is created if needed.
        inner: the transport that really talks to the server (default: a plain HTTP transport).
    """

    def __init__(self, path: str | Path, inner: httpx.BaseTransport | None = None) -> None:
        self.path = Path(path)
        self._inner = inner if inner is not None else httpx.HTTPTransport()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Sends `request`, records it with the reply, and returns the reply unchanged."""
        request_body = _decode_body(request.read())
        response = self._inner.handle_request(request)
        content = response.read()
        line = {
            "request": {"method": request.method, "path": request.url.path, "body": request_body},
            "response": {"status": response.status_code, "body": _decode_body(content)},
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        # `read()` consumed (and decompressed) the stream; hand the client a fresh response over
        # the decoded bytes, without the headers that described the encoded ones.
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING_HEADERS
        ]
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            content=content,
            request=request,
        )

    def close(self) -> None:
        """Closes the wrapped transport."""
        self._inner.close()
