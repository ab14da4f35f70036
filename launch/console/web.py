"""The web console: a local page over a `ConsoleSession` (FastAPI, websockets, uvicorn).

Routes (all on loopback; the console has no login, so it never binds a public address):

    GET  /                  the page (`page.PAGE`)
    GET  /camera.png        the last camera frame
    GET  /api/state         the console's state as JSON (`driver.ConsoleState`)
    WS   /ws                the same state, pushed whenever it changes (10 Hz at most)
    POST /api/correct       {"text": ...}: a typed correction (the arm halts, the skill redoes)
    POST /api/control/NAME  NAME: pause | resume | stop | estop | undo
    POST /api/audio         push-to-talk: the recorded clip as the body, its MIME type as
                            Content-Type (what the browser's MediaRecorder produced)
    GET  /api/kb            the knowledge base's entries with provenance
    POST /api/kb/ID         {"text": ...}: edit an entry's rule;  DELETE /api/kb/ID: delete it

A bad request gets status 400 and {"error": "..."} saying what to do; the robot is never
touched by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from corrigible.errors import CorrigibleError, DependencyNotInstalled
from corrigible.launch.console.driver import MAX_AUDIO_BYTES, ConsoleSession
from corrigible.launch.console.page import PAGE

try:
    import uvicorn
    from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise DependencyNotInstalled(
        "the web console needs fastapi, uvicorn and websockets: pip install 'corrigible[console]'"
    ) from exc

PUSH_PERIOD_S = 0.1  # s between state checks on a websocket


class CorrectionBody(BaseModel):
    """A typed correction from the page."""

    text: str = Field(max_length=2000)  # the person's words


class EditBody(BaseModel):
    """A knowledge-base entry's new rule."""

    text: str = Field(max_length=2000)  # the rule as the person rewrote it


def _bad(exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


def create_app(console: ConsoleSession) -> FastAPI:
    """The page and its API over `console` (which the caller starts and closes)."""
    app = FastAPI(title="corrigible console", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/camera.png")
    def camera() -> Response:
        frame = console.frame()
        if frame is None:
            return Response(status_code=204)
        return Response(frame, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        return console.state().model_dump()

    @app.websocket("/ws")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        shown: tuple[int, int, int, str] | None = None
        try:
            while True:
                st = console.state()
                key = (st.events, st.replies, st.frames, st.status)
                if key != shown:
                    await ws.send_json(st.model_dump())
                    shown = key
                await asyncio.sleep(PUSH_PERIOD_S)
        except (WebSocketDisconnect, RuntimeError):
            return  # the page closed

    @app.post("/api/correct")
    def correct(body: CorrectionBody) -> Response:
        try:
            record = console.correct(body.text)
        except CorrigibleError as exc:
            return _bad(exc)
        return JSONResponse({"preempted": record["preempted"], "text": record["text"]})

    @app.post("/api/control/{name}")
    def control(name: str) -> Response:
        actions = {
            "pause": console.pause,
            "resume": console.resume,
            "stop": console.stop,
            "estop": lambda: console.stop(estop=True),
            "undo": console.undo,
        }
        if name not in actions:
            return _bad(ValueError(f"unknown control {name!r}; use one of {', '.join(actions)}"))
        try:
            out = actions[name]()
        except CorrigibleError as exc:
            return _bad(exc)
        return JSONResponse({"ok": True, "reply": out if isinstance(out, str) else ""})

    @app.post("/api/audio")
    async def audio(request: Request) -> Response:
        mime = request.headers.get("content-type", "application/octet-stream").split(";")[0]
        if not mime.startswith("audio/") and mime != "video/webm":
            return _bad(ValueError(f"push-to-talk takes an audio clip, got Content-Type {mime}"))
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_AUDIO_BYTES:
                return _bad(ValueError(f"the clip is over {MAX_AUDIO_BYTES} bytes; say less"))
        try:
            text = await asyncio.to_thread(console.hear, bytes(body), mime)
        except CorrigibleError as exc:
            return _bad(exc)
        return JSONResponse({"bytes": len(body), "mime": mime, "transcript": text})

    @app.get("/api/kb")
    def kb_list() -> Response:
        try:
            return JSONResponse([e.model_dump() for e in console.kb_entries()])
        except CorrigibleError as exc:
            return _bad(exc)

    @app.post("/api/kb/{entry_id}")
    def kb_edit(entry_id: str, body: EditBody) -> Response:
        try:
            return JSONResponse({"id": console.kb_edit(entry_id, body.text)})
        except (CorrigibleError, KeyError) as exc:
            return _bad(exc)

    @app.delete("/api/kb/{entry_id}")
    def kb_delete(entry_id: str) -> Response:
        try:
            console.kb_delete(entry_id)
        except (CorrigibleError, KeyError) as exc:
            return _bad(exc)
        return JSONResponse({"ok": True})

    return app


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on loopback (port 0: a free one; `getsockname()` tells which)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def _server(console: ConsoleSession) -> uvicorn.Server:
    config = uvicorn.Config(create_app(console), log_level="warning", ws="websockets-sansio")
    return uvicorn.Server(config)


def serve(console: ConsoleSession, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Starts the episode and serves the page until Ctrl-C."""
    sock = bind(host, port)
    url = "http://{}:{}/".format(*sock.getsockname()[:2])
    print(f"corrigible console: open {url}  (Ctrl-C ends)", flush=True)
    console.start()
    _server(console).run(sockets=[sock])


@contextlib.contextmanager
def serving(console: ConsoleSession, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serves the page in a background thread on a free loopback port; yields its URL.

    For tests and embedding: the server stops when the block ends (the console is not
    started or closed here).
    """
    sock = bind(host, 0)
    server = _server(console)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="console-web", daemon=True
    )
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the console's web server did not start")
            threading.Event().wait(0.02)
        yield "http://{}:{}/".format(*sock.getsockname()[:2])
    finally:
        server.should_exit = True
        thread.join(10.0)
        sock.close()
