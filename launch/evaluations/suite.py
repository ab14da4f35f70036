"""Runs a suite of instructions, one session per episode and engine, and summarises success.

The loop behind `corrigible eval` (the verb parses options and prints the table). Each episode
is judged by its suite's predicate on the final state; an entry the scene cannot satisfy
counts as a failure of that episode, never as a crash of the evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.launch.distributed import Job, RunnerConfig, RunReport, Worker, run_jobs
from corrigible.policies.suites.schema import SuiteEpisode
from corrigible.session import Session, SessionConfig


def run_episode(
    ep: SuiteEpisode, *, engine: str, planner: str, perception: str, low_level: str = "scripted"
) -> dict[str, Any]:
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
            low_level=low_level,
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
            plans=[
                {k: s.get(k) for k in ("planner", "plan_s", "llm_calls", "plan_error_type")}
                for s in result.steps
            ],
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


class SuiteWorker(Worker):
    """A worker process of `run_suite`: runs episodes with one planner and perception."""

    def __init__(self, *, planner: str, perception: str, low_level: str = "scripted") -> None:
        self.planner, self.perception, self.low_level = planner, perception, low_level

    def run(self, job: tuple[SuiteEpisode, str]) -> Iterator[dict[str, Any]]:
        """One (episode, engine) job: its one row."""
        ep, engine = job
        yield run_episode(
            ep,
            engine=engine,
            planner=self.planner,
            perception=self.perception,
            low_level=self.low_level,
        )


def lost_row(ep: SuiteEpisode, engine: str, error: str) -> dict[str, Any]:
    """The row of an episode no worker could finish (after its retries): a failure, said so."""
    return {
        "id": ep.id,
        "family": ep.family,
        "split": ep.split,
        "engine": engine,
        "instruction": ep.instruction,
        "expect": ep.expect,
        "success": False,
        "status": "lost",
        "error_class": "WorkerLost",
        "message": error,
        "details": [],
        "wall_s": 0.0,
    }


def run_suite(
    episodes: list[SuiteEpisode],
    *,
    engines: list[str],
    planner: str,
    perception: str,
    low_level: str = "scripted",
    partial: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    runner: RunnerConfig | None = None,
    report: list[RunReport] | None = None,
) -> list[dict[str, Any]]:
    """Every episode on every engine; rows also go, one JSON line each, to `partial`.

    The partial file lets a long run be inspected while it goes and survives a kill; on Ray its
    lines come in the order episodes finish, the returned rows in the serial order (engine, then
    episode). An episode whose worker failed on every retry gets a `lost_row`, never a gap.

    Args:
        episodes: the suite's episodes.
        engines: physics engines, in order.
        planner: planner spec.
        perception: "camera" or "privileged".
        low_level: who runs pick and place: "scripted" or "learned:<checkpoint>".
        partial: the JSONL file rows stream to (rewritten).
        on_row: called with each row as it finishes.
        runner: serial (default) or Ray (`distributed.RunnerConfig`).
        report: when given, the run's `RunReport` (retries, lost episodes) is appended to it.
    """
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("")
    by_key = {f"{engine}/{ep.id}": (ep, engine) for engine in engines for ep in episodes}

    def row_done(_job: Job, row: dict[str, Any]) -> None:
        if partial is not None:
            with partial.open("a") as fh:
                fh.write(json.dumps(row, default=str) + "\n")
        if on_row is not None:
            on_row(row)

    result = run_jobs(
        f"{__name__}:SuiteWorker",
        [Job(key, payload) for key, payload in by_key.items()],
        runner=runner,
        worker_kwargs={"planner": planner, "perception": perception, "low_level": low_level},
        on_item=row_done,
    )
    lost = {a.key: a.error for a in result.failed}
    rows: list[dict[str, Any]] = []
    for key, items in result.items.items():
        if items:
            rows += items
        else:
            row = lost_row(*by_key[key], lost.get(key, "no result"))
            row_done(Job(key, by_key[key]), row)
            rows.append(row)
    if report is not None:
        report.append(result)
    return rows


# Planning errors that mean the planner understood nothing it could do (a valid answer to an
# impossible request), as opposed to output the sandbox refused or a server that did not answer.
REFUSALS = frozenset({"ParseError", "UnknownObjectError"})


def summarise_planning(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{engine: plan counts, refusals, invalid programs per 100 plans, LLM calls, latency}.

    Every planning attempt of every episode counts once (a session may plan several times);
    an invalid program is one the sandbox refused or LLM output that held no program
    (`LLMOutputError`), never a refusal. Latency is the planner's wall time per attempt.
    """
    out: dict[str, Any] = {}
    for engine in sorted({r["engine"] for r in rows}):
        plans = [p for r in rows if r["engine"] == engine for p in r.get("plans") or []]
        times = [float(p.get("plan_s") or 0.0) for p in plans]
        errors = [p.get("plan_error_type") for p in plans]
        invalid = sum(e is not None and e not in REFUSALS for e in errors)
        by_llm = sum(str(p.get("planner") or "").startswith("llm") for p in plans)
        out[engine] = {
            "plans": len(plans),
            "written_by_llm": by_llm,
            "refusals": sum(e in REFUSALS for e in errors),
            "invalid": invalid,
            "invalid_per_100_plans": round(100 * invalid / len(plans), 1) if plans else None,
            "error_types": {e: errors.count(e) for e in sorted({e for e in errors if e})},
            "llm_calls": sum(int(p.get("llm_calls") or 0) for p in plans),
            "fgen_calls": sum(max(0, int(p.get("llm_calls") or 0) - 1) for p in plans),
            "plan_s_p50": round(float(np.percentile(times, 50)), 3) if times else None,
            "plan_s_p95": round(float(np.percentile(times, 95)), 3) if times else None,
            "episode_wall_s": round(
                sum(float(r.get("wall_s") or 0) for r in rows if r["engine"] == engine), 1
            ),
        }
    return out


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
