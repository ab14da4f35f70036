r"""`corrigible run "<instruction>"`: one episode in simulation, its trace and its verified result.

Example:
    corrigible run "put the red block in the blue bowl" \
        --expect "in(red block, blue bowl)" --sim mujoco

Corrections, typed (the same `Correction` a console or speech will send later):
    corrigible run "put the red block in the red bowl" --correct "no, the gray bowl" \
        --expect "in(red block, gray bowl)" --kb runs/kb

`--correct TEXT` (repeatable) is taken at the next point where a correction can act: before the
next skill, or when one fails; `--interactive` reads lines from stdin while the episode runs.
Each gets a one-line reply saying what it changed, or why it changed nothing. `--kb DIR`
retrieves what earlier runs learned before each skill and distils this run's corrections into
it at the end. Without these options the run is exactly the plain one.

Exit status: 0 when `--expect` holds at the end, 1 when it does not, 2 for bad input (an
instruction, object or predicate that cannot be understood, an unusable option or knowledge
base), 3 for a clean run without `--expect` (its result is unverified). A run the person
stopped ("stop") is judged the same way.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from corrigible.boundary import check_output_path, escape
from corrigible.errors import ConfigError
from corrigible.launch.schema import VerbConfig
from corrigible.sim_envs.backends.registry import BACKENDS

if TYPE_CHECKING:
    from corrigible.session import EpisodeResult, Session

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNVERIFIED = 0, 1, 2, 3


class RunConfig(VerbConfig):
    """One episode (`corrigible schema run` publishes this as JSON Schema)."""

    instruction: str  # what to do, in words
    sim: str = "mujoco"  # physics engine: one of BACKENDS
    seed: int = 0  # layout seed
    expect: str | None = None  # predicate that defines success, e.g. "in(red block, blue bowl)"
    planner: str = "grammar"  # grammar | openai:<model> | local:<path> | local:bundled | replay:
    perception: str = "camera"  # camera | privileged
    low_level: str = "scripted"  # scripted | learned:<checkpoint> (who runs pick and place)
    out: Path | None = None  # results JSON (schema: launch/README.md#run)
    trace: Path | None = None  # JSONL trace; default runs/run-<time>/trace.jsonl
    corrections: tuple[str, ...] = ()  # typed corrections, one per correction point, in order
    interactive: bool = False  # also read corrections from stdin while the episode runs
    correction_timeout_s: float = 60.0  # s a failed skill waits for a typed line (interactive)
    kb: Path | None = None  # knowledge base directory: retrieval before skills, learning after
    memory: str | None = None  # none | text | text+visual retrieval; default text+visual w/ kb

    @property
    def takes_corrections(self) -> bool:
        """Whether the correction loop runs at all (else the run is the plain one)."""
        return bool(self.corrections) or self.interactive or self.kb is not None


def _check_options(cfg: RunConfig) -> str | None:
    """The first unusable option, as an error message (None: all usable)."""
    from corrigible.corrections.retrieval import MEMORY_MODES

    if cfg.expect is not None and not cfg.expect.strip():
        return "--expect is empty; write e.g. 'in(red block, blue bowl)'"
    if cfg.seed < 0:
        return f"--seed must be >= 0, got {cfg.seed}"
    if cfg.low_level.strip() != "scripted":
        from corrigible.policies.learned.low_level.skills import parse_low_level

        try:
            _, checkpoint = parse_low_level(cfg.low_level)
        except ConfigError as exc:
            return str(exc)
        if checkpoint is not None and not checkpoint.is_file():
            return f"--low-level: no checkpoint file at {checkpoint}"
    if cfg.memory is not None:
        if cfg.kb is None:
            return "--memory needs --kb DIR (the knowledge base to retrieve from)"
        if cfg.memory not in MEMORY_MODES:
            return f"--memory must be one of {', '.join(MEMORY_MODES)}, got {cfg.memory!r}"
    if not 0 < cfg.correction_timeout_s < float("inf"):
        return (
            "--correction-timeout must be a finite number of seconds > 0, got "
            f"{cfg.correction_timeout_s:g}"
        )
    if cfg.kb is not None and cfg.kb.exists() and not cfg.kb.is_dir():
        return f"--kb {cfg.kb} is a file; give a directory (it is created if missing)"
    for option, path in (("--out", cfg.out), ("--trace", cfg.trace)):
        if path is not None:
            try:
                check_output_path(path, option=option)
            except ConfigError as exc:
                return str(exc)
    return None


def _report_corrections(session: Session, result: EpisodeResult) -> list[dict[str, Any]]:
    """Prints the stop, the counts, what was recalled and learned; returns what was learned.

    Learning is the demo's: the applied corrections only, skill parameters only when the
    expected predicate holds (a run without `--expect` is unverified, so it teaches
    preferences but no parameters), and nothing in memory mode "none".
    """
    if session.loop is not None and session.loop.stopped is not None:
        _say(f"# {session.loop.stopped}; the program ended at that skill boundary")
    log = session.typed.log if session.typed is not None else []
    counts = {s: 0 for s in ("applied", "control", "refused", "unused")}
    for entry in log:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    if log:
        _say("# corrections: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for use in session.memory.knowledge_used if session.memory is not None else []:
        _say(f"# recalled for {use['skill']} the {use['obj']} ({use['mode']}): {use['text']}")
    if session.config.kb is None or session.memory_mode == "none":
        return []
    written = session.learn(task_succeeded=bool(result.expect_holds))
    for d in written:
        again = f" (replaces {d.superseded})" if d.superseded else ""
        _say(f"# learned: {d.kind} {d.entry_id}: {d.text}{again}")
    if not written:
        kept = "" if result.expect_holds else " (skill parameters need --expect to hold)"
        print("# learned: nothing new" + kept)
    return [
        {"entry_id": d.entry_id, "kind": d.kind, "text": d.text, "superseded": d.superseded}
        for d in written
    ]


def _say(text: str, *, err: bool = False) -> None:
    """Prints one line with whatever came from outside (text, names, messages) escaped."""
    print(escape(text), file=sys.stderr if err else sys.stdout, flush=True)


def _print_steps(cfg: RunConfig, result: EpisodeResult) -> str | None:
    """Prints each instruction's program and skills; returns a plan error's message."""
    for step in result.steps:
        _say(f"# {cfg.planner} planner, family {step['family']}: {step['instruction']}")
        program = step["program"] or ""
        # split at "\n" only: each line is escaped whole, so no other character breaks it
        for line in program.removesuffix("\n").split("\n") if program else []:
            _say(f"    {line}")
        for skill in step["skills"]:
            mark = "ok  " if skill["success"] else "FAIL"
            _say(
                f"[{mark}] {skill['skill']}({json.dumps(skill['args'])[1:-1]}): {skill['message']}"
            )
        for line in step.get("said") or []:
            _say(f"[say] {line}")
        if step["status"] == "plan_error":
            return str(step["message"])
        if step["status"] != "ok":
            _say(f"[program {step['error_class']}] line {step['line']}: {step['message']}")
    return None


def run(cfg: RunConfig) -> int:
    """Runs the episode, prints the trace and result, and returns the exit status."""
    from corrigible.errors import CorrigibleError
    from corrigible.session import Session, SessionConfig

    problem = _check_options(cfg)
    if problem is not None:
        _say(f"error: {problem}", err=True)
        return EXIT_BAD_INPUT
    stamp = time.strftime("%Y%m%d-%H%M%S")
    trace = cfg.trace or Path("runs") / f"run-{stamp}" / "trace.jsonl"
    try:
        session = Session(
            SessionConfig(
                engine=cfg.sim,
                seed=cfg.seed,
                planner=cfg.planner,
                perception=cfg.perception,  # type: ignore[arg-type]  # checked by the CLI
                low_level=cfg.low_level,
                trace=trace,
                episode=f"run-{stamp}-seed{cfg.seed}",
                kb=cfg.kb,
                memory=cfg.memory,  # type: ignore[arg-type]  # checked above
                corrections=list(cfg.corrections),
                interactive=cfg.interactive,
                correction_timeout_s=cfg.correction_timeout_s,
            ),
            on_reply=_say,
        )
    except (CorrigibleError, ValueError, KeyError) as exc:
        _say(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    with session:
        try:
            _ = session.kb  # opens --kb now, so that a bad one is reported as such
        except (CorrigibleError, OSError) as exc:
            _say(f"error: cannot open the knowledge base --kb {cfg.kb}: {exc}", err=True)
            return EXIT_BAD_INPUT
        try:
            session.reset(mention=[cfg.instruction, cfg.expect])
            session.parse_expect(cfg.expect)
        except (CorrigibleError, ValueError, KeyError) as exc:
            _say(f"error: {exc}", err=True)
            return EXIT_BAD_INPUT
        if cfg.interactive and session.typed is not None:
            print(
                "# interactive: type a correction and press Enter; it is taken before the next "
                "skill, or when one fails (the run then waits up to "
                f"{cfg.correction_timeout_s:g} s). 'stop' ends the run, 'pause'/'resume' "
                "hold it; Ctrl-D ends input.",
                file=sys.stderr,
                flush=True,
            )
            session.typed.read_from(sys.stdin)
        assert session.env is not None
        _say(
            f"# {cfg.sim}, layout seed {cfg.seed}: "
            f"{', '.join(o.name for o in session.env.scene.objects)}"
        )
        try:
            result = session.run(cfg.instruction, expect=cfg.expect)
        except CorrigibleError as exc:
            _say(f"error: {exc}", err=True)
            return EXIT_BAD_INPUT
        plan_error = _print_steps(cfg, result)
        if plan_error is not None:
            if session.typed is not None:
                session.typed.finish()  # every typed line still gets its reply
            _say(f"error: {plan_error}", err=True)
            return EXIT_BAD_INPUT
        for line in result.expect_details:
            _say(f"[expect] {line}")
        extra: dict[str, Any] = {}
        if session.takes_corrections:
            if session.typed is not None:
                session.typed.finish()
            learned = _report_corrections(session, result)
            extra = {
                "corrections": session.typed.log if session.typed is not None else [],
                "stopped": session.loop.stopped if session.loop is not None else None,
                "kb": None if cfg.kb is None else str(cfg.kb),
                "memory": session.memory_mode,
                "knowledge_used": session.memory.knowledge_used if session.memory else [],
                "learned": learned,
            }
    if cfg.expect is None:
        status, verdict = EXIT_UNVERIFIED, "unverified: no --expect predicate was given"
    elif result.expect_holds:
        status, verdict = EXIT_OK, "success: the expected predicate holds"
    else:
        status, verdict = EXIT_FAILED, "failure: the expected predicate does not hold"
    from corrigible.tracing import to_jsonable

    payload = to_jsonable({"result": verdict, "exit_status": status, **result.to_dict(), **extra})
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
        low_level: str = typer.Option(
            "scripted", "--low-level", help="scripted | learned:<checkpoint> (pick and place)"
        ),
        correct: list[str] | None = typer.Option(
            None,
            "--correct",
            help="a typed correction, e.g. 'no, the blue bowl'; repeatable, each taken at the "
            "next point where it can act (before the next skill, or when one fails)",
        ),
        interactive: bool = typer.Option(
            False, "--interactive", help="read corrections from stdin while the episode runs"
        ),
        correction_timeout: float = typer.Option(
            60.0,
            "--correction-timeout",
            help="seconds a failed skill waits for a typed correction (--interactive)",
        ),
        kb: Path | None = typer.Option(
            None,
            "--kb",
            help="knowledge base directory: retrieve before skills, learn from corrections",
        ),
        memory: str | None = typer.Option(
            None, "--memory", help="none | text | text+visual (default with --kb: text+visual)"
        ),
    ) -> None:
        """Run one instruction in simulation; exit 0 only if --expect holds."""
        if sim not in BACKENDS:
            engines = " or ".join(BACKENDS.names())
            _say(f"error: --sim must be {engines}, got {sim!r}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        if perception not in ("camera", "privileged"):
            _say(f"error: --perception must be camera or privileged, got {perception!r}", err=True)
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
            low_level=low_level,
            corrections=tuple(correct or ()),
            interactive=interactive,
            correction_timeout_s=correction_timeout,
            kb=kb,
            memory=memory,
        )
        raise typer.Exit(run(cfg))
