r"""`corrigible run "<instruction>"`: one episode in simulation, its trace and its verified result.

Example:
    corrigible run "put the red block in the blue bowl" \
        --expect "in(red block, blue bowl)" --sim mujoco

Exit status: 0 when `--expect` holds at the end, 1 when it does not, 2 for bad input (an
instruction, object or predicate that cannot be understood), 3 for a clean run without
`--expect` (its result is unverified).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNVERIFIED = 0, 1, 2, 3


@dataclass(kw_only=True)
class RunConfig:
    """One episode."""

    instruction: str  # what to do, in words
    sim: str = "mujoco"  # "mujoco" | "pybullet"
    seed: int = 0  # layout seed
    expect: str | None = None  # predicate that defines success, e.g. "in(red block, blue bowl)"
    planner: str = (
        "grammar"  # grammar | openai:<model> | local:<path> | local:bundled | replay:<file>
    )
    perception: str = "camera"  # camera | privileged
    out: Path | None = None  # results JSON (schema: launch/README.md#run)
    trace: Path | None = None  # JSONL trace; default runs/run-<time>/trace.jsonl


def run(cfg: RunConfig) -> int:
    """Runs the episode, prints the trace and result, and returns the exit status."""
    from corrigible.errors import CorrigibleError
    from corrigible.policies.episode import Episode

    if cfg.expect is not None and not cfg.expect.strip():
        print("error: --expect is empty; write e.g. 'in(red block, blue bowl)'", file=sys.stderr)
        return EXIT_BAD_INPUT
    if cfg.seed < 0:
        print(f"error: --seed must be >= 0, got {cfg.seed}", file=sys.stderr)
        return EXIT_BAD_INPUT
    trace = cfg.trace or Path("runs") / f"run-{time.strftime('%Y%m%d-%H%M%S')}" / "trace.jsonl"
    try:
        episode = Episode(
            cfg.instruction,
            engine=cfg.sim,
            seed=cfg.seed,
            expect=cfg.expect,
            trace_path=trace,
            planner=cfg.planner,
            perception=cfg.perception,
        )
    except (CorrigibleError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        print(
            f"# {cfg.sim}, layout seed {cfg.seed}: "
            f"{', '.join(o.name for o in episode.env.scene.objects)}"
        )
        try:
            result = episode.run()
        except CorrigibleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        for step in result.steps:
            print(f"# {cfg.planner} planner, family {step['family']}: {step['instruction']}")
            for line in (step["program"] or "").splitlines():
                print(f"    {line}")
            for skill in step["skills"]:
                mark = "ok  " if skill["success"] else "FAIL"
                print(
                    f"[{mark}] {skill['skill']}({json.dumps(skill['args'])[1:-1]}): "
                    f"{skill['message']}"
                )
            if step["status"] == "plan_error":
                print(f"error: {step['message']}", file=sys.stderr)
                return EXIT_BAD_INPUT
            if step["status"] != "ok":
                print(f"[program {step['error_class']}] line {step['line']}: {step['message']}")
        for line in result.expect_details:
            print(f"[expect] {line}")
    finally:
        episode.close()
    if cfg.expect is None:
        status, verdict = EXIT_UNVERIFIED, "unverified: no --expect predicate was given"
    elif result.expect_holds:
        status, verdict = EXIT_OK, "success: the expected predicate holds"
    else:
        status, verdict = EXIT_FAILED, "failure: the expected predicate does not hold"
    from corrigible.tracing import to_jsonable

    payload = to_jsonable({"result": verdict, "exit_status": status, **result.to_dict()})
    print(json.dumps(payload))
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(payload, indent=2))
    return status


def register(app: typer.Typer) -> None:
    """Adds the `run` verb."""

    @app.command("run")
    def run_cmd(
        instruction: str = typer.Argument(..., help='e.g. "put the red block in the blue bowl"'),
        sim: str = typer.Option("mujoco", "--sim", help="mujoco | pybullet"),
        seed: int = typer.Option(0, help="layout seed"),
        expect: str | None = typer.Option(
            None, help='success predicate, e.g. "in(red block, blue bowl)"'
        ),
        out: Path | None = typer.Option(None, help="write the result JSON here"),
        trace: Path | None = typer.Option(None, help="write the JSONL trace here"),
        planner: str = typer.Option(
            "grammar",
            help="grammar | openai:<model> | local:<path> | local:bundled | replay:<file>",
        ),
        perception: str = typer.Option("camera", help="camera | privileged"),
    ) -> None:
        """Run one instruction in simulation; exit 0 only if --expect holds."""
        if sim not in ("mujoco", "pybullet"):
            print(f"error: --sim must be mujoco or pybullet, got {sim!r}", file=sys.stderr)
            raise typer.Exit(EXIT_BAD_INPUT)
        if perception not in ("camera", "privileged"):
            print(
                f"error: --perception must be camera or privileged, got {perception!r}",
                file=sys.stderr,
            )
            raise typer.Exit(EXIT_BAD_INPUT)
        cfg = RunConfig(
            instruction=instruction,
            sim=sim,
            seed=seed,
            expect=expect,
            out=out,
            trace=trace,
            planner=planner,
            perception=perception,
        )
        raise typer.Exit(run(cfg))
