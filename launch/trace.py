"""`corrigible trace show EPISODE`: print an episode's JSONL trace readably.

Example:
    corrigible trace show runs/run-20260101-120000/trace.jsonl

EPISODE is a trace file, a run folder holding `trace.jsonl`, or a run folder's name under
`runs/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from corrigible.launch.schema import VerbConfig

_SKIP = {"program.lines"}  # shown only with --lines


class TraceShowConfig(VerbConfig):
    """Which trace and how much of it (`corrigible schema trace`)."""

    episode: str  # trace path, run folder, or run folder name under runs/ (found when run)
    lines: bool = False  # also show every program line reached


def resolve(episode: str) -> Path:
    """The trace file for an episode argument."""
    for candidate in (
        Path(episode),
        Path(episode) / "trace.jsonl",
        Path("runs") / episode / "trace.jsonl",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no trace for {episode!r}: give a trace.jsonl, a run folder, or a folder name under runs/"
    )


def _fmt(event: dict) -> str:
    kind = event.get("kind", "?")
    t = f"{event.get('sim_time_s', 0.0):7.2f}s" if "sim_time_s" in event else " " * 8
    if kind == "skill":
        mark = "ok  " if event.get("success") else "FAIL"
        return (
            f"{t} [{mark}] skill {event['skill']}({json.dumps(event.get('args'))[1:-1]}) "
            f"{event.get('duration_s', 0):.2f}s: {event.get('message', '')}"
        )
    if kind == "api":
        err = f" -> {event['error']}" if event.get("error") else ""
        return (
            f"{t} api {event['name']}"
            f"({', '.join(json.dumps(a) for a in event.get('args', []))}){err}"
        )
    if kind == "plan":
        head = f"plan [{event.get('planner')}] {event.get('instruction')!r}"
        if event.get("error"):
            return f"{t} {head} -> error: {event['error']}"
        return f"{t} {head} family={event.get('family')}\n" + "\n".join(
            "           | " + line for line in str(event.get("program", "")).splitlines()
        )
    if kind == "checkpoint":
        return (
            f"{t} checkpoint {event.get('name')!r} "
            f"expect={event.get('expect')} holds={event.get('holds')}"
        )
    if kind.startswith("arm."):
        fields = {
            k: event[k]
            for k in ("applied", "clipped", "reached", "speed", "holding", "width")
            if k in event
        }
        return f"{t} {kind} {json.dumps(fields)}"
    if kind == "program.result":
        return (
            f"{t} program {event.get('status')} {event.get('error_class') or ''} "
            f"line={event.get('line')} {event.get('message', '')}"
        )
    rest = {k: v for k, v in event.items() if k not in ("kind", "episode", "wall_s", "sim_time_s")}
    return f"{t} {kind} {json.dumps(rest)[:200]}"


def run(cfg: TraceShowConfig) -> int:
    """Prints the trace; returns the exit status."""
    try:
        path = resolve(cfg.episode)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            print(f"line {n}: (unreadable trace line, skipped)")
            continue
        if event.get("kind") in _SKIP and not cfg.lines:
            continue
        print(_fmt(event))
    return 0


def register(app: typer.Typer) -> None:
    """Adds the `trace` verb group."""
    trace_app = typer.Typer(help="Inspect episode traces.", no_args_is_help=True)

    @trace_app.command("show")
    def show(
        episode: str = typer.Argument(
            ..., help="trace.jsonl, run folder, or folder name under runs/"
        ),
        lines: bool = typer.Option(False, help="also show every program line reached"),
    ) -> None:
        """Print an episode's trace readably."""
        raise typer.Exit(run(TraceShowConfig(episode=episode, lines=lines)))

    app.add_typer(trace_app, name="trace")
