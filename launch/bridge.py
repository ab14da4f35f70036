r"""`corrigible bridge`: a corrigible session served to ROS tools over the rosbridge v2 protocol.

Example:
    corrigible bridge --port 9090 --sim mujoco

Then, from any rosbridge client (roslibpy, roslib.js), on ws://127.0.0.1:9090:
    publish "put the red block in the blue bowl" on /corrigible/instruction (std_msgs/String)
    publish "no, the gray bowl" on /corrigible/correction while it runs
    subscribe /corrigible/events, /joint_states, /ee_pose, /camera/image/compressed
    call /corrigible/stop (std_srvs/Trigger), or /rosapi/topics to look around

Each instruction runs as one episode in a fresh scene holding the objects it names, one at a
time; corrections change the running episode (robots/bridge/README.md has every topic, the
protocol notes and the per-connection limits). The server listens on loopback only unless a
token is given: `--host 0.0.0.0 --token-file FILE` makes every client send the `auth` op
first; without a token such a bind is refused (exit 2). Ctrl-C (or SIGTERM) stops the running
episode and closes the server (exit 0).
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from corrigible.boundary import escape
from corrigible.errors import ConfigError
from corrigible.launch.schema import VerbConfig

if TYPE_CHECKING:
    from corrigible.session import Session

EXIT_OK, EXIT_BAD_INPUT = 0, 2
MIN_TOKEN_CHARS = 16  # a shorter secret is guessable


class BridgeConfig(VerbConfig):
    """`corrigible bridge` options."""

    sim: str = "mujoco"  # physics engine: mujoco | pybullet
    host: str = "127.0.0.1"  # address to bind; not loopback needs token_file
    port: int = 9090  # TCP port; 0: any free one (printed at start)
    token_file: Path | None = None  # file holding the auth secret (>= 16 characters)
    seed: int = 0  # layout seed of every episode's scene
    planner: str = "grammar"  # grammar | openai:<model> | local:<path> | replay:<file>
    perception: str = "camera"  # camera | privileged
    kb: Path | None = None  # knowledge base directory: recall before skills
    trace_dir: Path | None = None  # one JSONL trace per episode here; None: kept in memory
    state_hz: float = 20.0  # /joint_states and /ee_pose messages per second
    camera_hz: float = 2.0  # /camera/image/compressed images per second while subscribed
    scene: tuple[str, ...] = ()  # texts whose objects the first scene holds (before any episode)


def _say(text: str, *, err: bool = False) -> None:
    print(escape(text), file=sys.stderr if err else sys.stdout, flush=True)


def read_token(path: Path) -> str:
    """The secret in `path` (surrounding whitespace removed).

    Raises:
        ConfigError: unreadable, empty or shorter than `MIN_TOKEN_CHARS`.
    """
    from corrigible.boundary import read_text

    token = read_text(path, what="token file", max_bytes=4096).strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"the token in {path} has {len(token)} characters; use a random secret of at "
            f"least {MIN_TOKEN_CHARS}, e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(16))'`"
        )
    return token


def _check(cfg: BridgeConfig) -> str | None:
    """The first unusable option, as an error message (None: all usable)."""
    from corrigible.sim_envs.backends.registry import BACKENDS

    if cfg.sim not in BACKENDS:
        return f"--sim must be {' or '.join(BACKENDS.names())}, got {cfg.sim!r}"
    if cfg.perception not in ("camera", "privileged"):
        return f"--perception must be camera or privileged, got {cfg.perception!r}"
    if not 0 <= cfg.port <= 65535:
        return f"--port must be 0..65535 (0: any free port), got {cfg.port}"
    if cfg.seed < 0:
        return f"--seed must be >= 0, got {cfg.seed}"
    if not 0 < cfg.state_hz <= 1000:
        return f"--state-hz must be in (0, 1000], got {cfg.state_hz:g}"
    if not 0 <= cfg.camera_hz <= 60:
        return f"--camera-hz must be in [0, 60] (0: no images), got {cfg.camera_hz:g}"
    if cfg.kb is not None and cfg.kb.exists() and not cfg.kb.is_dir():
        return f"--kb {cfg.kb} is a file; give a directory (it is created if missing)"
    return None


def session_factory(cfg: BridgeConfig) -> Any:
    """Builds each episode's `Session`: interactive (corrections at any time), one router."""
    from corrigible.corrections.router import GrammarEmbeddingRouter
    from corrigible.session import Session, SessionConfig

    router = GrammarEmbeddingRouter()  # loaded once, shared by every episode's session

    def make(episode: str) -> Session:
        trace = None if cfg.trace_dir is None else cfg.trace_dir / f"{episode}.jsonl"
        return Session(
            SessionConfig(
                engine=cfg.sim,
                seed=cfg.seed,
                planner=cfg.planner,
                perception=cfg.perception,  # type: ignore[arg-type]  # checked in _check
                trace=trace,
                episode=episode,
                kb=cfg.kb,
                interactive=True,
            ),
            router=router,
        )

    return make


def correction_source() -> str:
    """The correction source: "bridge" where corrections know it, else "typed"."""
    from typing import get_args

    from corrigible.corrections.correction import CorrectionSource

    return "bridge" if "bridge" in get_args(CorrectionSource) else "typed"


def run(cfg: BridgeConfig, *, stop: threading.Event | None = None) -> int:
    """Serves until Ctrl-C, SIGTERM or `stop` is set; returns the exit status."""
    from corrigible.errors import CorrigibleError
    from corrigible.robots.bridge.server import RosbridgeServer, check_bind
    from corrigible.robots.bridge.session_node import NodeConfig, SessionNode

    problem = _check(cfg)
    if problem is not None:
        _say(f"error: {problem}", err=True)
        return EXIT_BAD_INPUT
    try:
        token = None if cfg.token_file is None else read_token(cfg.token_file)
        check_bind(cfg.host, token)  # before anything is built: a refused bind costs nothing
        server = RosbridgeServer(cfg.host, cfg.port, token=token)
        node = SessionNode(
            server,
            session_factory(cfg),
            NodeConfig(
                state_hz=cfg.state_hz,
                camera_hz=cfg.camera_hz,
                correction_source=correction_source(),
            ),
            mention=cfg.scene,
        )
        server.start()
    except (CorrigibleError, ValueError) as exc:
        _say(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    stop = stop or threading.Event()
    previous = _on_signals(stop)
    try:
        try:
            node.start()
        except CorrigibleError as exc:
            _say(f"error: {exc}", err=True)
            return EXIT_BAD_INPUT
        auth = "; clients send the auth op first" if token else ""
        _say(f"# rosbridge v2 on {server.url} ({cfg.sim}, seed {cfg.seed}){auth}")
        _say(
            "# publish std_msgs/String on /corrigible/instruction and /corrigible/correction; "
            "events on /corrigible/events; Ctrl-C stops"
        )
        while not stop.wait(0.5):
            pass
        _say("# stopping: the running episode ends at its next control step")
        return EXIT_OK
    finally:
        node.stop()
        server.stop()
        _restore_signals(previous)


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGINT and SIGTERM set `stop` (main thread only; elsewhere the caller stops)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Adds the `bridge` verb."""

    @app.command("bridge")
    def bridge_cmd(
        port: int = typer.Option(9090, "--port", help="TCP port (0: any free one)"),
        sim: str = typer.Option("mujoco", "--sim", help="mujoco | pybullet"),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="address to bind; not loopback needs --token-file"
        ),
        token_file: Path | None = typer.Option(
            None, "--token-file", help="file with the auth secret; clients send `auth` first"
        ),
        seed: int = typer.Option(0, "--seed", help="layout seed of every episode's scene"),
        planner: str = typer.Option("grammar", help="grammar | openai:<model> | local:<path>"),
        perception: str = typer.Option("camera", help="camera | privileged"),
        kb: Path | None = typer.Option(None, "--kb", help="knowledge base directory"),
        trace_dir: Path | None = typer.Option(
            None, "--trace-dir", help="write one JSONL trace per episode here"
        ),
        state_hz: float = typer.Option(20.0, "--state-hz", help="joint states per second"),
        camera_hz: float = typer.Option(2.0, "--camera-hz", help="images per second (0: off)"),
        scene: list[str] | None = typer.Option(
            None, "--scene", help="text whose objects the first scene holds; repeatable"
        ),
    ) -> None:
        """Serve a session over rosbridge v2 (websockets) to ROS tools such as roslibpy."""
        try:
            cfg = BridgeConfig(
                sim=sim,
                host=host,
                port=port,
                token_file=token_file,
                seed=seed,
                planner=planner,
                perception=perception,
                kb=kb,
                trace_dir=trace_dir,
                state_hz=state_hz,
                camera_hz=camera_hz,
                scene=tuple(scene or ()),
            )
        except ConfigError as exc:
            _say(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        raise typer.Exit(run(cfg))
