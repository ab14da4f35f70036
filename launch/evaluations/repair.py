"""Repair evaluation (`tabletop-faults`) and running a program file with monitoring and repair.

Example (offline defaults: perception monitor, grammar planner, offline repairer):
    corrigible eval --suite tabletop-faults --sim mujoco --seeds 4 --out runs/faults.json
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from corrigible.errors import ConfigError
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
    planner: str = "grammar"  # grammar | openai:<model> | local:<path> | replay:<file>
    perception: Literal["camera", "privileged"] = "camera"  # where programs see objects
    out: Path = Path("runs/repair-eval")  # traces go here (and JSON and PNG, unless `report`)
    report: Path | None = None  # results JSON (the PNG beside it); None: out/repair-eval.json

    @field_validator("engines")
    @classmethod
    def _known_engines(cls, value: list[str]) -> list[str]:
        from corrigible.sim_envs.backends.registry import BACKENDS

        if not value:
            raise ConfigError("engines is empty; give mujoco and/or pybullet")
        return [BACKENDS.canonical(v) for v in value]

    @field_validator("repair")
    @classmethod
    def _settings(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value]
        if (
            not cleaned
            or any(v not in ("on", "off") for v in cleaned)
            or len(set(cleaned)) < len(cleaned)
        ):
            raise ConfigError(
                f"--repair must be on, off or on,off (each once), got {','.join(value)!r}"
            )
        return cleaned

    @field_validator("monitor")
    @classmethod
    def _known_monitor(cls, value: str) -> str:
        from corrigible.corrections.repair.monitors import make_monitor

        make_monitor(value)  # UnknownNameError / ConfigError with the fix, before any physics
        return value

    def report_path(self) -> Path:
        """Where the results JSON goes (the PNG has the same name, suffix .png)."""
        return self.report if self.report is not None else self.out / "repair-eval.json"


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
    planner: str = "grammar",
    perception: str = "camera",
) -> dict[str, Any]:
    """One monitored episode, with or without repair; judged by the oracle at the end.

    Returns:
        A JSON-friendly dict: success (oracle), status, iterations, failures, attempts,
        injected fault and its expected class, per-checkpoint monitor-vs-oracle atoms, wall time.
    """
    from corrigible.corrections.repair.faults import EXPECTED_CLASS
    from corrigible.corrections.repair.monitors import oracle_atoms
    from corrigible.corrections.repair.remember import remember_repairs
    from corrigible.corrections.repair.session_link import RepairSettings, attach_repair
    from corrigible.policies.middleware import SkillTracer
    from corrigible.policies.sandbox import SandboxLimits
    from corrigible.session import Session, SessionConfig

    t0 = time.perf_counter()
    # A bad monitor or repairer spec is refused before any simulator starts.
    settings = RepairSettings(
        monitor=monitor, repair=repair, repairer=repairer, max_iterations=max_iterations
    )
    _check_expect(expect, seed, instruction)
    config = SessionConfig(
        engine=engine,
        seed=seed,
        trace=trace,
        episode=episode,
        planner=planner,
        perception=perception,  # type: ignore[arg-type]
    )
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
            api.use(memory, before=SkillTracer)  # outside the repair's links: they win
        link = attach_repair(session, settings, fault=fault)
        injector = link.injector
        report = link.run(instruction, expect=expect, program=program)
        holds, details = session.parse_expect(expect).evaluate(  # type: ignore[union-attr]
            env.world_state()
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
        link.close()
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


def _setting_row(eps: list[dict[str, Any]]) -> dict[str, Any]:
    """Success and repair iterations of a group of episodes."""
    ok = [e for e in eps if e["success"]]
    return {
        "episodes": len(eps),
        "successes": len(ok),
        "success": round(len(ok) / len(eps), 3),
        "mean_iterations": round(sum(e["iterations"] for e in eps) / len(eps), 3),
        # HyCodePolicy's iterations-to-success: repairs the successful episodes needed
        "mean_iterations_to_success": (
            round(sum(e["iterations"] for e in ok) / len(ok), 3) if ok else None
        ),
        "iterations_per_episode": [e["iterations"] for e in eps],
    }


def summarise(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Success per setting (and engine), iterations, class histogram and accuracy, agreement.

    Class accuracy is over the episodes whose injected fault acted and that recorded a
    failure (the first record's class against the fault's expected class);
    `faults_unnoticed` counts those whose fault acted but no failure was recorded, so the
    accuracy cannot hide faults nobody saw.
    """
    rows: dict[str, Any] = {}
    for setting in sorted({("on" if e["repair"] else "off") for e in episodes}):
        eps = [e for e in episodes if ("on" if e["repair"] else "off") == setting]
        by_engine = defaultdict(list)
        for e in eps:
            by_engine[e["engine"]].append(e)
        rows[setting] = _setting_row(eps) | {
            "success_by_engine": {
                k: round(sum(e["success"] for e in v) / len(v), 3) for k, v in by_engine.items()
            },
            "by_engine": {k: _setting_row(v) for k, v in by_engine.items()},
        }
    gain: dict[str, Any] = {}
    if {"on", "off"} <= rows.keys():
        on, off = rows["on"], rows["off"]
        gain = {
            "all": round(100 * (on["success"] - off["success"]), 1),
            **{
                k: round(100 * (v["success"] - off["by_engine"][k]["success"]), 1)
                for k, v in on["by_engine"].items()
                if k in off["by_engine"]
            },
        }
    acted = [e for e in episodes if e["fault_struck"]]
    struck = [e for e in acted if e["failures"]]
    first = [(e["expected_class"], e["failures"][0]["failure_class"]) for e in struck]
    by_engine_acc: dict[str, list[bool]] = defaultdict(list)
    for e in struck:
        by_engine_acc[e["engine"]].append(e["expected_class"] == e["failures"][0]["failure_class"])
    histogram = Counter(f["failure_class"] for e in episodes for f in e["failures"])
    histogram_by_setting = {
        setting: dict(
            Counter(
                f["failure_class"]
                for e in episodes
                if ("on" if e["repair"] else "off") == setting
                for f in e["failures"]
            )
        )
        for setting in rows
    }
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
        "success_gain_points": gain,
        "failure_classes": dict(histogram),
        "failure_classes_by_setting": histogram_by_setting,
        "class_accuracy": round(sum(a == b for a, b in first) / len(first), 3) if first else None,
        "class_accuracy_by_engine": {
            k: round(sum(v) / len(v), 3) for k, v in by_engine_acc.items()
        },
        "faults_acted": len(acted),
        "faults_unnoticed": len(acted) - len(struck),
        "class_confusion": [list(p) for p in first],
        "monitor_agreement": {
            k: {"agree": c[0], "checks": c[1], "abstained": c[2], "rate": round(c[0] / c[1], 3)}
            for k, c in agree.items()
            if c[1]
        },
        "monitor_agreement_all": round(total[0] / total[1], 3) if total[1] else None,
    }


def _plot(summary: dict[str, Any], path: Path) -> None:
    """Success with repair on/off per engine, and the failure-class histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    settings = summary["settings"]
    engines = sorted({k for row in settings.values() for k in row["by_engine"]})
    width = 0.8 / max(len(settings), 1)
    for n, (setting, row) in enumerate(sorted(settings.items(), reverse=True)):
        xs = [i + n * width for i in range(len(engines))]
        rates = [row["by_engine"].get(k, {}).get("success", 0.0) for k in engines]
        bars = a.bar(
            xs,
            rates,
            width,
            label=f"repair {setting}",
            color="tab:green" if setting == "on" else "gray",
        )
        a.bar_label(bars, labels=[f"{r:.0%}" for r in rates], fontsize=8)
    a.set_xticks([i + width * (len(settings) - 1) / 2 for i in range(len(engines))], engines)
    a.set_ylim(0, 1.1)
    a.set_ylabel("success (oracle)")
    a.set_title("tabletop-faults: success")
    a.legend(loc="lower right", fontsize=8)
    classes = summary["failure_classes"]
    b.barh(list(classes), list(classes.values()), color="tab:red")
    b.set_title("failure classes (every record)")
    b.set_xlabel("records")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _episode_line(episode: dict[str, Any]) -> None:
    """The module CLI's progress: one JSON line per episode."""
    keep = ("engine", "seed", "repair", "fault", "success", "iterations", "status", "wall_s")
    line = {k: episode[k] for k in keep}
    line["classes"] = [f["failure_class"] for f in episode["failures"]]
    print(json.dumps(line), flush=True)


def evaluate(
    cfg: RepairEvalConfig, on_episode: Callable[[dict[str, Any]], None] | None = _episode_line
) -> dict[str, Any]:
    """Runs the suite; writes the results JSON and a PNG beside it (`cfg.report_path()`).

    Args:
        cfg: what to run.
        on_episode: called with each episode's record as it finishes (progress).

    Returns:
        The summary (`summarise`, plus monitor, engines, seeds, wall time and the file paths).
    """
    from corrigible.corrections.repair.faults import FaultFile

    faults = FaultFile.load(cfg.faults) if cfg.faults else FaultFile.model_validate(_DEFAULT_FAULTS)
    report = cfg.report_path()
    cfg.out.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
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
                    planner=cfg.planner,
                    perception=cfg.perception,
                )
                episodes.append(episode)
                if on_episode is not None:
                    on_episode(episode)
    summary = summarise(episodes)
    summary.update(
        suite="tabletop-faults",
        monitor=cfg.monitor,
        planner=cfg.planner,
        perception=cfg.perception,
        engines=cfg.engines,
        seeds=cfg.seeds,
        first_seed=cfg.first_seed,
        max_iterations=cfg.max_iterations,
        wall_s=round(time.perf_counter() - t0, 1),
        json=str(report),
        png=str(report.with_suffix(".png")),
    )
    report.write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=1, default=str))
    _plot(summary, report.with_suffix(".png"))
    return summary


def print_summary(summary: dict[str, Any], console: Any) -> None:
    """Prints success, repair iterations per episode and the failure-class histogram."""
    from rich.table import Table

    from corrigible.launch.progress import plain

    table = Table(
        title=plain(
            f"tabletop-faults: success with repair on/off ({summary.get('monitor')} monitor, "
            f"{summary.get('seeds')} seeds, oracle judges)"
        )
    )
    for col in ("engine", "repair", "success", "mean iter.", "iter. to success", "iter./episode"):
        table.add_column(col)
    for setting, row in sorted(summary["settings"].items(), reverse=True):
        for engine, cell in sorted(row["by_engine"].items()):
            to_success = cell["mean_iterations_to_success"]
            table.add_row(
                engine,
                setting,
                f"{cell['successes']}/{cell['episodes']} ({cell['success']:.0%})",
                f"{cell['mean_iterations']:.2f}",
                "-" if to_success is None else f"{to_success:.2f}",
                " ".join(str(n) for n in cell["iterations_per_episode"]),
            )
    console.print(table)
    gain = summary.get("success_gain_points") or {}
    if gain:
        console.print(
            "repair on - off: " + ", ".join(f"{k} {v:+.1f} points" for k, v in gain.items())
        )
    classes = summary["failure_classes"]
    console.print("failure classes (every record, both settings):")
    widest = max((len(k) for k in classes), default=0)
    top = max(classes.values(), default=1)
    for name, count in sorted(classes.items(), key=lambda kv: (-kv[1], kv[0])):
        bar = "#" * max(1, round(30 * count / top))
        console.print(plain(f"  {name:<{widest}} {count:>4} {bar}"))
    accuracy = summary["class_accuracy"]
    console.print(
        "failure class right for injected faults: "
        + ("-" if accuracy is None else f"{accuracy:.1%}")
        + f" ({summary['faults_acted'] - summary['faults_unnoticed']} localised, "
        f"{summary['faults_unnoticed']} unnoticed)"
    )
    agreement = summary["monitor_agreement"]
    if agreement:
        console.print(
            "monitor agrees with oracle: "
            + ", ".join(f"{k} {v['agree']}/{v['checks']}" for k, v in sorted(agreement.items()))
        )
    console.print(plain(f"wrote {summary['json']} and {summary['png']}"))


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
    agr.add_argument("--first-seed", type=int, default=0)
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
            summary = evaluate_agreement(
                engine=args.engine, seeds=args.seeds, out=args.out, first_seed=args.first_seed
            )
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
