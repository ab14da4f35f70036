"""The OpenAI-compatible backend, through the real `openai` client and a loopback server.

The server speaks the `/v1/audio/transcriptions` wire format (multipart upload, JSON answer)
and transcribes with the local Whisper, so the request the client builds is really decoded.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from corrigible.corrections.speech import SpeechConfig, SpeechError, Transcriber


@pytest.fixture(scope="module")
def endpoint(stt) -> Iterator[tuple[str, list[dict]]]:
    """(base URL, the form fields of each request) of a loopback transcription server."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            form = BytesParser(policy=HTTP).parsebytes(head + body)
            fields = {
                part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                for part in form.iter_parts()
            }
            seen.append({k: v for k, v in fields.items() if k != "file"})
            if self.path != "/v1/audio/transcriptions" or fields.get("model") != b"whisper-1":
                self._answer(404, {"error": {"message": "model not found"}})
                return
            text = stt.transcribe(fields["file"]).text
            self._answer(200, {"text": text})

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def test_endpoint_transcribes_with_the_vocabulary_prompt(endpoint, say):
    url, seen = endpoint
    with Transcriber.from_config(SpeechConfig(backend="openai", base_url=url)) as remote:
        transcript = remote.transcribe(say("open the drawer first"), vocabulary=["red block"])
    assert transcript.backend == "openai"
    assert transcript.text.lower().strip(".") == "open the drawer first"
    assert seen[-1]["language"] == b"en"
    assert b"red block" in seen[-1]["prompt"]


def test_unknown_model_and_unreachable_server_are_speech_errors(endpoint, say):
    url, _ = endpoint
    audio = say("stop")
    with Transcriber.from_config(SpeechConfig(backend="openai", base_url=url, model="x")) as bad:
        with pytest.raises(SpeechError, match="HTTP 404"):
            bad.transcribe(audio)
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = SpeechConfig(backend="openai", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=5)
    with Transcriber.from_config(closed) as remote:
        with pytest.raises(SpeechError, match="cannot reach"):
            remote.transcribe(audio)
    with pytest.raises(SpeechError, match="closed"):
        remote.transcribe(audio)
