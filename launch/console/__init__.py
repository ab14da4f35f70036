r"""`corrigible console`: watch a robot in sim and correct it as it moves (terminal or web page).

Example:
    corrigible console "put the red block in the red bowl" --kb runs/kb
    corrigible console "put the red block in the red bowl" --web --port 8765

The terminal console (textual) shows the instruction, the program with the executing line
marked, the trace tail, the knowledge entries in use and why, and the last correction's reply;
type a correction at any time ("a bit to the left" during a pick moves the grasp): the moving
arm halts within one control tick and the skill is redone with the correction. F5 pauses and
resumes, F6 stops, Esc is the e-stop, F7 undoes the last correction, F8 is push-to-talk, F2
opens the knowledge-base browser (inspect, edit, delete, with provenance).

`--web` serves the same console as a local web page on loopback (FastAPI, websockets, uvicorn):
the live camera view, the program and trace, a correction box, push-to-talk from the browser's
microphone, the knowledge entries and pause / stop buttons.

Exit status: 0 after a run that met `--expect` (or ran cleanly without one), 1 otherwise, 2 for
bad input or a missing optional dependency (`pip install 'corrigible[console]'`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
from pathlib import Path

import typer
from pydantic import Field, field_validator

from corrigible.errors import ConfigError, CorrigibleError, DependencyNotInstalled
from corrigible.launch.schema import VerbConfig

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class ConsoleConfig(VerbConfig):
    """One console (`corrigible schema console`)."""

    instruction: str = "put the red block in the red bowl"  # what the robot is asked to do
    expect: str | None = None  # success predicate, e.g. "in(red block, red bowl)"
    sim: str = "mujoco"  # physics engine
    seed: int = Field(default=0, ge=0)  # layout seed
    kb: Path | None = None  # knowledge base directory: recall, learn, browse
    trace: Path | None = None  # JSONL trace file; None keeps it in memory
    correction_timeout_s: float = Field(default=60.0, gt=0)  # s a failed skill waits for a line
    web: bool = False  # serve the web page instead of the terminal UI
    host: str = "127.0.0.1"  # web: loopback address to bind (never a public one)
    port: int = Field(default=8765, ge=0, le=65535)  # web: TCP port; 0 picks a free one

    @field_validator("sim")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from corrigible.sim_envs.backends.registry import BACKENDS

        return BACKENDS.canonical(value)  # UnknownNameError with a "did you mean"

    @field_validator("host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        try:
            loopback = value == "localhost" or ipaddress.ip_address(value).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"--host must be a loopback address (the console drives a robot and has no "
                f"login), got {value!r}; use 127.0.0.1"
            )
        return value


def run(cfg: ConsoleConfig) -> int:
    """Runs the console until it is closed; returns the exit status."""
    from corrigible.launch.console.driver import ConsoleSession, ConsoleSettings

    settings = ConsoleSettings(
        instruction=cfg.instruction,
        expect=cfg.expect,
        sim=cfg.sim,
        seed=cfg.seed,
        kb=cfg.kb,
        trace=cfg.trace,
        correction_timeout_s=cfg.correction_timeout_s,
        camera=cfg.web,
    )
    console = ConsoleSession(settings)
    try:
        if cfg.web:
            from corrigible.launch.console.web import serve

            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the page's server ends
                serve(console, host=cfg.host, port=cfg.port)
        else:
            try:
                from corrigible.launch.console.tui import ConsoleApp
            except ImportError as exc:
                raise DependencyNotInstalled(
                    "the terminal console needs textual: pip install 'corrigible[console]'"
                ) from exc
            ConsoleApp(console).run()
    finally:
        console.close()
    result = console.result
    if result is None:
        return EXIT_FAILED
    ok = result.expect_holds if result.expect is not None else result.executed_ok
    return EXIT_OK if ok else EXIT_FAILED


def register(app: typer.Typer) -> None:
    """Adds the `console` verb."""

    @app.command("console")
    def console(
        instruction: str = typer.Argument(
            "put the red block in the red bowl", help="what the robot is asked to do"
        ),
        expect: str | None = typer.Option(None, help='e.g. "in(red block, red bowl)"'),
        sim: str = typer.Option("mujoco", help="physics engine"),
        seed: int = typer.Option(0, help="layout seed"),
        kb: Path | None = typer.Option(None, "--kb", help="knowledge base directory"),
        trace: Path | None = typer.Option(None, help="write the JSONL trace here"),
        correction_timeout: float = typer.Option(
            60.0, "--correction-timeout", help="seconds a failed skill waits for a correction"
        ),
        web: bool = typer.Option(False, "--web", help="serve the web page on loopback"),
        host: str = typer.Option("127.0.0.1", help="--web: loopback address"),
        port: int = typer.Option(8765, help="--web: port (0: any free one)"),
    ) -> None:
        """Watch a robot in sim and correct it as it moves (terminal UI, or --web)."""
        try:
            cfg = ConsoleConfig(
                instruction=instruction,
                expect=expect,
                sim=sim,
                seed=seed,
                kb=kb,
                trace=trace,
                correction_timeout_s=correction_timeout,
                web=web,
                host=host,
                port=port,
            )
            code = run(cfg)
        except CorrigibleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT) from exc
        raise typer.Exit(code)


__all__ = ["ConsoleConfig", "register", "run"]
