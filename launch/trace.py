"""`corrigible trace show EPISODE`: print an episode's JSONL trace readably.

Example:
    corrigible trace show runs/run-20260101-120000/trace.jsonl

EPISODE is a trace file, a run folder holding `trace.jsonl`, or a run folder's name under
`runs/`. Failure records of the repair loop ("repair.failure": class, line, subgoal,
message, evidence), repair attempts and checkpoint verdicts are shown in full.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from corrigible.boundary import escape
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
        f"no trace for {escape(repr(episode))}: give a trace.jsonl, a run folder, or a folder "
        "name under runs/"
    )


def _fmt(event: dict) -> list[str]:
    """The event as lines to show (raw: the caller escapes each one)."""
    kind = str(event.get("kind", "?"))
    t = f"{event.get('sim_time_s', 0.0):7.2f}s" if "sim_time_s" in event else " " * 8
    if kind == "skill":
        mark = "ok  " if event.get("success") else "FAIL"
        return [
            f"{t} [{mark}] skill {event['skill']}({json.dumps(event.get('args') or [])[1:-1]}) "
            f"{event.get('duration_s', 0):.2f}s: {event.get('message', '')}"
        ]
    if kind == "api":
        err = f" -> {event['error']}" if event.get("error") else ""
        return [
            f"{t} api {event['name']}"
            f"({', '.join(json.dumps(a) for a in event.get('args', []))}){err}"
        ]
    if kind == "plan":
        head = f"plan [{event.get('planner')}] {event.get('instruction')!r}"
        if event.get("error"):
            return [f"{t} {head} -> error: {event['error']}"]
        program = str(event.get("program", ""))
        # split at "\n" only: each line is escaped whole, so no other character breaks it
        lines = program.removesuffix("\n").split("\n") if program else []
        return [f"{t} {head} family={event.get('family')}"] + [
            "           | " + line for line in lines
        ]
    if kind == "checkpoint":
        return [
            f"{t} checkpoint {event.get('name')!r} "
            f"expect={event.get('expect')} holds={event.get('holds')}"
        ]
    if kind == "checkpoint.verdict":
        return [
            f"{t} verdict [{event.get('monitor')}] {event.get('name')!r} "
            f"holds={event.get('holds')} line={event.get('line')}: {event.get('reason', '')}"
        ]
    if kind == "checkpoint.evidence":
        return [f"{t} evidence line={event.get('line')} rgb={event.get('rgb')}"]
    if kind == "checkpoint.monitor_error":
        return [
            f"{t} MONITOR ERROR [{event.get('error_kind')}] {event.get('monitor')} at "
            f"{event.get('checkpoint')!r}: {event.get('message')} (run stopped)"
        ]
    if kind == "repair.failure":
        head = (
            f"{t} FAILURE [{event['failure_class']}] line={event.get('line')} "
            f"subgoal={event.get('subgoal')} {event.get('subgoal_name') or ''}".rstrip()
        )
        out = [head, f"           message: {event.get('message', '')}"]
        if event.get("line_text"):
            out.append(f"           code: {event['line_text']}")
        out += [f"           evidence: {e}" for e in event.get("evidence") or []]
        return out
    if kind == "repair.attempt":
        return [
            f"{t} REPAIR #{event.get('iteration')} [{event.get('failure_class', '')}] "
            f"{event.get('strategy')}: {event.get('description') or event.get('error', '')}"
        ]
    if kind.startswith("arm."):
        fields = {
            k: event[k]
            for k in ("applied", "clipped", "reached", "speed", "holding", "width")
            if k in event
        }
        return [f"{t} {kind} {json.dumps(fields)}"]
    if kind == "program.result":
        return [
            f"{t} program {event.get('status')} {event.get('error_class') or ''} "
            f"line={event.get('line')} {event.get('message', '')}"
        ]
    rest = {k: v for k, v in event.items() if k not in ("kind", "episode", "wall_s", "sim_time_s")}
    return [f"{t} {kind} {json.dumps(rest)[:200]}"]


def _event(raw: bytes) -> dict | None:
    """One trace line as an event, or None when it is not a JSON object."""
    try:
        event = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deeply
        return None
    return event if isinstance(event, dict) else None


def run(cfg: TraceShowConfig) -> int:
    """Prints the trace; returns the exit status.

    Every printed line is escaped (`boundary.escape`): a trace holds instructions, corrections
    and messages as they were typed. Lines that are not JSON objects, and events whose fields
    have unexpected types, are reported or shown raw, never a traceback.
    """
    try:
        path = resolve(cfg.episode)
        with path.open("rb") as handle:
            data = handle.read()
    except (FileNotFoundError, OSError) as exc:
        print(f"error: {escape(exc)}", file=sys.stderr)
        return 2
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        event = _event(raw)
        if event is None:
            print(f"line {n}: (unreadable trace line, skipped)")
            continue
        if event.get("kind") in _SKIP and not cfg.lines:
            continue
        try:
            lines = _fmt(event)
        except (KeyError, TypeError, ValueError, RecursionError):  # a field of another type
            kind = event.get("kind")
            lines = [f"line {n}: {kind if isinstance(kind, str) else '?'} (fields not shown)"]
        for line in lines:
            print(escape(line))
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
