"""Runs a suite of instructions, one session per episode and engine, and summarises success.

The loop behind `corrigible eval` (the verb parses options and prints the table). Each episode
is judged by its suite's predicate on the final state; an entry the scene cannot satisfy
counts as a failure of that episode, never as a crash of the evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corrigible.policies.suites.schema import SuiteEpisode
from corrigible.session import Session, SessionConfig


def run_episode(ep: SuiteEpisode, *, engine: str, planner: str, perception: str) -> dict[str, Any]:
    """One suite episode on one engine, as a results row."""
    row: dict[str, Any] = {
        "id": ep.id,
        "family": ep.family,
        "split": ep.split,
        "engine": engine,
        "instruction": ep.instruction,
        "expect": ep.expect,
    }
    try:
        config = SessionConfig(
            engine=engine,
            seed=ep.seed,
            planner=planner,
            perception=perception,  # type: ignore[arg-type]  # checked by the verb
            episode=ep.id,
        )
        with Session(config, layout=ep.layout()) as session:
            result = session.run(ep.instruction, expect=ep.expect)
        last = result.steps[-1] if result.steps else {}
        row.update(
            success=bool(result.expect_holds),
            status=last.get("status"),
            error_class=last.get("error_class"),
            message=last.get("message", ""),
            details=result.expect_details,
            wall_s=round(result.wall_s, 2),
            programs=[s.get("program") for s in result.steps],
        )
    except Exception as exc:  # a suite entry the scene cannot satisfy is a failure, not a crash
        row.update(
            success=False,
            status="error",
            error_class=type(exc).__name__,
            message=str(exc),
            details=[],
            wall_s=0.0,
        )
    return row


def run_suite(
    episodes: list[SuiteEpisode],
    *,
    engines: list[str],
    planner: str,
    perception: str,
    partial: Path | None = None,
    on_episode: Callable[[str, SuiteEpisode], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every episode on every engine; rows also go, one JSON line each, to `partial`.

    The partial file lets a long run be inspected while it goes and survives a kill.
    """
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")
    rows: list[dict[str, Any]] = []
    for engine in engines:
        for ep in episodes:
            if on_episode is not None:
                on_episode(engine, ep)
            row = run_episode(ep, engine=engine, planner=planner, perception=perception)
            rows.append(row)
            if partial is not None:
                with partial.open("a") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")
            if on_row is not None:
                on_row(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{engine: {family: {split | "all": {n, successes, rate}}}}."""
    summary: dict[str, Any] = {}
    for r in rows:
        cell = (
            summary.setdefault(r["engine"], {})
            .setdefault(r["family"], {})
            .setdefault(r["split"], {"n": 0, "successes": 0})
        )
        cell["n"] += 1
        cell["successes"] += int(r["success"])
    for fams in summary.values():
        for splits in fams.values():
            total = {
                "n": sum(c["n"] for c in splits.values()),
                "successes": sum(c["successes"] for c in splits.values()),
            }
            splits["all"] = total
            for c in splits.values():
                c["rate"] = c["successes"] / c["n"] if c["n"] else 0.0
    return summary
