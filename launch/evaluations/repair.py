"""Repair evaluation (`tabletop-faults`) and running a program file with monitoring and repair.

Example (offline defaults: perception monitor, grammar planner, offline repairer):
    python -m corrigible.launch.evaluations.repair eval --seeds 4 --engines mujoco
    python -m corrigible.launch.evaluations.repair repair prog.py \
        --instruction "put the red block in the blue bowl" --expect "in(red block, blue bowl)"
    python -m corrigible.launch.evaluations.repair memory --seeds 2 --engine mujoco

`eval` runs the suite twice per seed and engine, repair on and off, each episode with one
injected fault (the fault file, `corrections/repair/README.md`; default: the four built-in
faults in turn). It prints and writes (JSON and a PNG) success with repair on and off by the
oracle, mean repair iterations per episode and to success, the failure-class histogram,
failure-class accuracy against the injected fault, and how often the monitor agrees with the
oracle per predicate kind. `repair` runs a (possibly buggy) program file in the scene `corrigible
run` lays out for the same instruction and seed, and prints one JSON object: final status,
whether the expectation holds (oracle), failure records, attempts and the patched program.
`memory` runs each fault twice per seed with one knowledge base: the first occurrence is
repaired and remembered, the second should need no repair.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pydantic import Field

from corrigible.launch.schema import VerbConfig

_CASES = (  # (instruction, expectation): subgoals a fault can strike, on every engine
    ("put the red block in the blue bowl", "in(red block, blue bowl)"),
    ("put the green block on the yellow block", "on(green block, yellow block)"),
    ("put the orange block in the purple bowl", "in(orange block, purple bowl)"),
    ("put the cyan block in the pink bowl", "in(cyan block, pink bowl)"),
)
_DEFAULT_FAULTS = {
    "faults": [
        {"kind": "grasp_slip"},
        {"kind": "wrong_object"},
        {"kind": "wrong_target"},
        {"kind": "placement_offset"},
    ],
    "pick": "cycle",
}


class RepairEvalConfig(VerbConfig):
    """The `tabletop-faults` suite (`corrigible eval --suite tabletop-faults`)."""

    seeds: int = Field(4, ge=1)  # episodes per engine and repair setting
    first_seed: int = Field(0, ge=0)  # layout seed of episode 0
    engines: list[str] = Field(default_factory=lambda: ["mujoco", "pybullet"])  # engines
    repair: list[str] = Field(default_factory=lambda: ["on", "off"])  # settings compared
    monitor: str = "perception"  # perception | oracle | vlm:<model>
    faults: Path | None = None  # fault file; None: the four built-in faults in turn
    max_iterations: int = Field(3, ge=0)  # repairs per episode
    out: Path = Path("runs/repair-eval")  # JSON, PNG and traces go here


class RepairRunConfig(VerbConfig):
    """One program file, monitored and repaired (`corrigible repair`)."""

    file: Path  # the program, written against the robot API
    instruction: str  # what the program is meant to do (re-planning starts from it)
    expect: str  # the success predicate
    sim: str = "mujoco"  # physics engine
    seed: int = Field(0, ge=0)  # layout seed (the scene `corrigible run` lays out)
    monitor: str = "perception"  # perception | oracle | vlm:<model>
    repairer: str = "offline"  # offline | an LLM spec (openai:<model>, local:..., replay:...)
    max_iterations: int = Field(3, ge=0)  # repairs before giving up
    trace: Path | None = None  # JSONL trace; checkpoint images go next to it


def run_episode(
    *,
    engine: str,
    seed: int,
    instruction: str,
    expect: str,
    monitor: str = "perception",
    fault: Any = None,
    repair: bool = True,
    program: str | None = None,
    repairer: str = "offline",
    max_iterations: int = 3,
    kb: Any = None,
    trace: Path | None = None,
    episode: str | None = None,
    wall_time_s: float = 300.0,
) -> dict[str, Any]:
    """One monitored episode, with or without repair; judged by the oracle at the end.

    Returns:
        A JSON-friendly dict: success (oracle), status, iterations, failures, attempts,
        injected fault and its expected class, per-checkpoint monitor-vs-oracle atoms, wall time.
    """
    from corrigible.corrections.repair.faults import EXPECTED_CLASS, FaultInjector
    from corrigible.corrections.repair.loop import (
        LLMRepairer,
        OfflineRepairer,
        RepairLoop,
        RepairOverrides,
    )
    from corrigible.corrections.repair.monitors import make_monitor, oracle_atoms
    from corrigible.corrections.repair.remember import remember_repairs
    from corrigible.policies.middleware import SkillTracer
    from corrigible.policies.sandbox import SandboxLimits
    from corrigible.session import Session, SessionConfig
    from corrigible.sim_envs.predicates import WorldState

    t0 = time.perf_counter()
    judge = make_monitor(monitor)  # a bad spec is refused before any simulator starts
    _check_expect(expect, seed, instruction)
    config = SessionConfig(engine=engine, seed=seed, trace=trace, episode=episode)
    with Session(config) as session:
        session.reset(mention=[instruction, expect])
        assert session.api is not None and session.controller is not None
        assert session.env is not None
        api, env = session.api, session.env
        # Skills run in this process: their wall time grows with the machine's load, which
        # must not read as a program that never ends (its CPU time stays limited).
        session.controller.limits = SandboxLimits(
            wall_time_s=wall_time_s, cpu_time_s=10.0, max_api_calls=500
        )
        memory = None
        if kb is not None:
            from corrigible.corrections.retrieval import MemoryLookup, Retriever

            memory = MemoryLookup(api, Retriever(kb, "text+visual"))
            api.use(memory, before=SkillTracer)
        overrides = RepairOverrides()
        api.use(overrides, before=SkillTracer)
        injector = None
        if fault is not None:
            names = [o.name for o in env.scene.objects]
            injector = FaultInjector(fault, names, env.arm, env.trace.emit)
            api.use(injector, before=SkillTracer)
        if repairer == "offline":
            chosen: Any = OfflineRepairer()
        else:
            from corrigible.policies.llm.registry import make_llm

            chosen = LLMRepairer(make_llm(repairer))
        loop = RepairLoop(
            session.controller,
            judge,
            overrides,
            repairer=chosen,
            max_iterations=max_iterations if repair else 0,
        )
        report = loop.run(instruction, expect=expect, program=program)
        holds, details = session.parse_expect(expect).evaluate(  # type: ignore[union-attr]
            WorldState.from_info(env.scene, env._info())
        )
        checks = []
        for verdict in session.controller.verdicts:
            if verdict.get("holds") is None and not verdict.get("atoms"):
                continue
            state = Path(str(verdict.get("rgb", ""))).with_name(
                Path(str(verdict.get("rgb", ""))).name.replace("_rgb.png", "_state.json")
            )
            truth = oracle_atoms(env.scene, verdict["expect"], state) if state.is_file() else []
            checks.append(
                {
                    "expect": verdict["expect"],
                    "monitor": verdict.get("atoms", []),
                    "oracle": truth,
                }
            )
        learned = []
        if kb is not None and repair:
            sizes = {o.name: o.size_class for o in env.scene.objects}
            learned = [
                {"entry_id": d.entry_id, "text": d.text}
                for d in remember_repairs(
                    kb,
                    report,
                    episode=session.episode,
                    sizes=sizes,
                    visuals=memory.visuals if memory is not None else None,
                )
            ]
        if injector is not None:
            injector.close()
        env.trace.flush()
    out = report.to_dict()
    out.update(
        engine=engine,
        seed=seed,
        instruction=instruction,
        expect=expect,
        repair=repair,
        monitor=monitor,
        success=bool(holds),
        expect_details=details,
        fault=None if fault is None else fault.kind,
        fault_struck=0 if injector is None else injector.struck,
        expected_class=None if fault is None else EXPECTED_CLASS[fault.kind],
        checkpoints=checks,
        learned=learned,
        wall_s=round(time.perf_counter() - t0, 2),
    )
    return out


def _check_expect(expect: str, seed: int, instruction: str) -> None:
    """Parses `expect` against the seed's layout (no physics): a bad predicate fails fast.

    Raises:
        ParseError, UnknownNameError, UnknownObjectError: as `parse_predicate`.
    """
    from corrigible.policies.language import mentioned_objects
    from corrigible.sim_envs.layout import LayoutConfig, sample_layout
    from corrigible.sim_envs.predicates import parse_predicate

    if not expect.strip():
        from corrigible.errors import ConfigError

        raise ConfigError("the expected predicate is empty; write e.g. 'in(red block, blue bowl)'")
    scene = sample_layout(seed, LayoutConfig(required=mentioned_objects(instruction, expect)))
    parse_predicate(expect, scene)


def summarise(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Success per setting, iterations, class histogram and accuracy, monitor agreement."""
    rows: dict[str, Any] = {}
    for setting in sorted({("on" if e["repair"] else "off") for e in episodes}):
        eps = [e for e in episodes if ("on" if e["repair"] else "off") == setting]
        by_engine = defaultdict(list)
        for e in eps:
            by_engine[e["engine"]].append(e["success"])
        ok = [e for e in eps if e["success"]]
        rows[setting] = {
            "episodes": len(eps),
            "success": round(sum(e["success"] for e in eps) / len(eps), 3),
            "success_by_engine": {k: round(sum(v) / len(v), 3) for k, v in by_engine.items()},
            "mean_iterations": round(sum(e["iterations"] for e in eps) / len(eps), 3),
            "mean_iterations_to_success": (
                round(sum(e["iterations"] for e in ok) / len(ok), 3) if ok else None
            ),
            "iterations_per_episode": [e["iterations"] for e in eps],
        }
    struck = [e for e in episodes if e["fault_struck"] and e["failures"]]
    first = [(e["expected_class"], e["failures"][0]["failure_class"]) for e in struck]
    histogram = Counter(f["failure_class"] for e in episodes for f in e["failures"])
    agree: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # agree, total, abstained
    for e in episodes:
        for check in e["checkpoints"]:
            truth = {a["atom"]: a["holds"] for a in check["oracle"]}
            for atom in check["monitor"]:
                if atom["atom"] not in truth:
                    continue
                cell = agree[atom["kind"]]
                cell[1] += 1
                if atom["holds"] is None:
                    cell[2] += 1
                elif atom["holds"] == truth[atom["atom"]]:
                    cell[0] += 1
    total = [sum(c[i] for c in agree.values()) for i in range(3)]
    return {
        "settings": rows,
        "failure_classes": dict(histogram),
        "class_accuracy": round(sum(a == b for a, b in first) / len(first), 3) if first else None,
        "class_confusion": [list(p) for p in first],
        "monitor_agreement": {
            k: {"agree": c[0], "checks": c[1], "abstained": c[2], "rate": round(c[0] / c[1], 3)}
            for k, c in agree.items()
            if c[1]
        },
        "monitor_agreement_all": round(total[0] / total[1], 3) if total[1] else None,
    }


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    settings = summary["settings"]
    a.bar(list(settings), [settings[s]["success"] for s in settings], color=["tab:green", "gray"])
    a.set_ylim(0, 1)
    a.set_title("success (oracle)")
    a.set_xlabel("repair")
    classes = summary["failure_classes"]
    b.barh(list(classes), list(classes.values()))
    b.set_title("failure classes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate(cfg: RepairEvalConfig) -> dict[str, Any]:
    """Runs the suite; writes `repair-eval.json` and `repair-eval.png` under `cfg.out`."""
    from corrigible.corrections.repair.faults import FaultFile

    faults = FaultFile.load(cfg.faults) if cfg.faults else FaultFile.model_validate(_DEFAULT_FAULTS)
    cfg.out.mkdir(parents=True, exist_ok=True)
    episodes = []
    t0 = time.perf_counter()
    for engine in cfg.engines:
        for i in range(cfg.seeds):
            seed = cfg.first_seed + i
            instruction, expect = _CASES[i % len(_CASES)]
            fault = faults.draw(i, seed)
            for setting in cfg.repair:
                trace = cfg.out / f"{engine}-s{seed}-repair-{setting}" / "trace.jsonl"
                episode = run_episode(
                    engine=engine,
                    seed=seed,
                    instruction=instruction,
                    expect=expect,
                    monitor=cfg.monitor,
                    fault=fault,
                    repair=setting == "on",
                    max_iterations=cfg.max_iterations,
                    trace=trace,
                    episode=f"{engine}-s{seed}-{setting}",
                )
                episodes.append(episode)
                print(
                    json.dumps(
                        {
                            k: episode[k]
                            for k in (
                                "engine",
                                "seed",
                                "repair",
                                "fault",
                                "success",
                                "iterations",
                                "status",
                                "wall_s",
                            )
                        }
                        | {"classes": [f["failure_class"] for f in episode["failures"]]}
                    ),
                    flush=True,
                )
    summary = summarise(episodes)
    summary.update(
        monitor=cfg.monitor,
        engines=cfg.engines,
        seeds=cfg.seeds,
        wall_s=round(time.perf_counter() - t0, 1),
    )
    (cfg.out / "repair-eval.json").write_text(
        json.dumps({"summary": summary, "episodes": episodes}, indent=1, default=str)
    )
    _plot(summary, cfg.out / "repair-eval.png")
    return summary


_AGREEMENT_CASES = (  # families whose checkpoints cover every predicate kind the grammar writes
    ("put the red block in the blue bowl", "in(red block, blue bowl)"),
    ("put the green block on the yellow block", "on(green block, yellow block)"),
    ("stack all the blocks", "stacked(all blocks)"),
    ("put all the blocks in the matching bowls", "in(red block, red bowl)"),
    ("put the blocks in a horizontal line", "line(all blocks, horizontal)"),
    ("move the red block to the top left corner", "at(red block, top left corner)"),
)


def evaluate_agreement(*, engine: str, seeds: int, out: Path, first_seed: int = 0) -> dict:
    """How often the monitor agrees with the oracle, per predicate kind, with no fault.

    Every checkpoint of the grammar's programs (and the final look) is judged by the monitor
    and, on the snapshot saved with it, by the oracle.
    """
    episodes = []
    for i in range(seeds):
        for instruction, expect in _AGREEMENT_CASES:
            episode = run_episode(
                engine=engine,
                seed=first_seed + i,
                instruction=instruction,
                expect=expect,
                repair=False,
                trace=out / f"{engine}-s{first_seed + i}-{len(episodes)}" / "trace.jsonl",
            )
            episodes.append(episode)
            print(
                json.dumps(
                    {
                        "instruction": instruction,
                        "seed": first_seed + i,
                        "success": episode["success"],
                        "checks": len(episode["checkpoints"]),
                    }
                ),
                flush=True,
            )
    summary = summarise(episodes)
    keep = {k: summary[k] for k in ("monitor_agreement", "monitor_agreement_all")}
    (out / "repair-agreement.json").write_text(
        json.dumps({"summary": keep, "episodes": episodes}, default=str)
    )
    return keep


def evaluate_memory(
    *, engine: str, seeds: int, faults: tuple[str, ...], out: Path, first_seed: int = 0
) -> dict[str, Any]:
    """A repair remembered: the same fault twice per seed with one knowledge base.

    Returns:
        Per fault: success and repair iterations of the first and of the second occurrence.
    """
    from corrigible.corrections.repair.faults import Fault
    from corrigible.memory import KnowledgeBase

    rows = []
    for kind in faults:
        for i in range(seeds):
            seed = first_seed + i
            instruction, expect = _CASES[i % len(_CASES)]
            with KnowledgeBase.open(out / f"kb-{kind}-{seed}") as kb:
                pair = [
                    run_episode(
                        engine=engine,
                        seed=seed,
                        instruction=instruction,
                        expect=expect,
                        fault=Fault(kind=kind),  # type: ignore[arg-type]
                        kb=kb,
                        trace=out / f"{engine}-{kind}-s{seed}-{n}" / "trace.jsonl",
                        episode=f"{kind}-s{seed}-{n}",
                    )
                    for n in (1, 2)
                ]
            rows.append(
                {
                    "fault": kind,
                    "seed": seed,
                    "success": [e["success"] for e in pair],
                    "iterations": [e["iterations"] for e in pair],
                    "learned": [x["text"] for x in pair[0]["learned"]],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    summary = {
        kind: {
            "first_mean_iterations": _mean(
                [r["iterations"][0] for r in rows if r["fault"] == kind]
            ),
            "second_mean_iterations": _mean(
                [r["iterations"][1] for r in rows if r["fault"] == kind]
            ),
            "second_success": _mean([r["success"][1] for r in rows if r["fault"] == kind]),
        }
        for kind in faults
    }
    (out / "repair-memory.json").write_text(json.dumps({"summary": summary, "rows": rows}))
    return summary


def _mean(values: list[Any]) -> float:
    return round(sum(float(v) for v in values) / len(values), 3) if values else 0.0


def repair_file(cfg: RepairRunConfig) -> dict[str, Any]:
    """Runs a program file with monitoring and repair (what `corrigible repair` prints)."""
    from corrigible.boundary import escape  # noqa: F401  (messages are printed as JSON)

    source = cfg.file.read_text(encoding="utf-8")
    return run_episode(
        engine=cfg.sim,
        seed=cfg.seed,
        instruction=cfg.instruction,
        expect=cfg.expect,
        monitor=cfg.monitor,
        program=source,
        repairer=cfg.repairer,
        max_iterations=cfg.max_iterations,
        trace=cfg.trace,
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: `eval [--seeds N] [--engines a,b] [--monitor M] [--faults F] [--out DIR]`.

    Or `repair FILE --instruction T --expect P [--sim E] [--seed N] [--monitor M]
    [--repairer R]`; returns the exit status.
    """
    import argparse

    from corrigible.errors import CorrigibleError

    parser = argparse.ArgumentParser(prog="corrigible-repair")
    sub = parser.add_subparsers(dest="verb", required=True)
    ev = sub.add_parser("eval")
    ev.add_argument("--seeds", type=int, default=4)
    ev.add_argument("--first-seed", type=int, default=0)
    ev.add_argument("--engines", default="mujoco,pybullet")
    ev.add_argument("--repair", default="on,off")
    ev.add_argument("--monitor", default="perception")
    ev.add_argument("--faults", type=Path, default=None)
    ev.add_argument("--max-iterations", type=int, default=3)
    ev.add_argument("--out", type=Path, default=Path("runs/repair-eval"))
    agr = sub.add_parser("agreement")
    agr.add_argument("--engine", default="mujoco")
    agr.add_argument("--seeds", type=int, default=2)
    agr.add_argument("--out", type=Path, default=Path("runs/repair-agreement"))
    mem = sub.add_parser("memory")
    mem.add_argument("--engine", default="mujoco")
    mem.add_argument("--seeds", type=int, default=2)
    mem.add_argument("--faults", default="grasp_slip,placement_offset")
    mem.add_argument("--out", type=Path, default=Path("runs/repair-memory"))
    rp = sub.add_parser("repair")
    rp.add_argument("file", type=Path)
    rp.add_argument("--instruction", required=True)
    rp.add_argument("--expect", required=True)
    rp.add_argument("--sim", default="mujoco")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--monitor", default="perception")
    rp.add_argument("--repairer", default="offline")
    rp.add_argument("--max-iterations", type=int, default=3)
    rp.add_argument("--trace", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.verb == "eval":
            summary = evaluate(
                RepairEvalConfig(
                    seeds=args.seeds,
                    first_seed=args.first_seed,
                    engines=args.engines.split(","),
                    repair=args.repair.split(","),
                    monitor=args.monitor,
                    faults=args.faults,
                    max_iterations=args.max_iterations,
                    out=args.out,
                )
            )
            print(json.dumps(summary, indent=1))
            return 0
        if args.verb == "agreement":
            args.out.mkdir(parents=True, exist_ok=True)
            summary = evaluate_agreement(engine=args.engine, seeds=args.seeds, out=args.out)
            print(json.dumps(summary, indent=1))
            return 0
        if args.verb == "memory":
            args.out.mkdir(parents=True, exist_ok=True)
            summary = evaluate_memory(
                engine=args.engine,
                seeds=args.seeds,
                faults=tuple(args.faults.split(",")),
                out=args.out,
            )
            print(json.dumps(summary, indent=1))
            return 0
        if not args.file.is_file():
            print(json.dumps({"status": "usage", "error": f"no such file: {args.file}"}))
            return 2
        result = repair_file(
            RepairRunConfig(
                file=args.file,
                instruction=args.instruction,
                expect=args.expect,
                sim=args.sim,
                seed=args.seed,
                monitor=args.monitor,
                repairer=args.repairer,
                max_iterations=args.max_iterations,
                trace=args.trace,
            )
        )
    except CorrigibleError as exc:
        print(json.dumps({"status": "error", "error": f"{type(exc).__name__}: {exc}"}))
        return 2
    keep = (
        "status",
        "success",
        "expect_details",
        "failures",
        "attempts",
        "program",
        "monitor_error",
        "iterations",
    )
    print(json.dumps({k: result[k] for k in keep}, default=str))
    return 0 if result["success"] else 1


if __name__ == "__main__":
    sys.exit(main())


def register(app: Any) -> None:
    """Adds `corrigible repair FILE ...` (the lead registers this module in launch/cli.py)."""
    import typer

    @app.command("repair")
    def repair_cmd(
        file: Path = typer.Argument(..., help="the program file (robot API Python)"),
        instruction: str = typer.Option(..., help="what the program is meant to do"),
        expect: str = typer.Option(..., help="success predicate, e.g. 'in(red block, blue bowl)'"),
        sim: str = typer.Option("mujoco", help="physics engine"),
        seed: int = typer.Option(0, help="layout seed"),
        monitor: str = typer.Option("perception", help="perception | oracle | vlm:<model>"),
        repairer: str = typer.Option("offline", help="offline | an LLM spec"),
        max_iterations: int = typer.Option(3, help="repairs before giving up"),
        trace: Path | None = typer.Option(None, help="JSONL trace; images go next to it"),
    ) -> None:
        """Run a (possibly buggy) program with checkpoint monitoring and automatic repair."""
        argv = [
            "repair",
            str(file),
            "--instruction",
            instruction,
            "--expect",
            expect,
            "--sim",
            sim,
            "--seed",
            str(seed),
            "--monitor",
            monitor,
            "--repairer",
            repairer,
            "--max-iterations",
            str(max_iterations),
        ]
        if trace is not None:
            argv += ["--trace", str(trace)]
        raise typer.Exit(main(argv))
