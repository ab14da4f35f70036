"""Recording, correcting and evaluating episodes of the pack family for the high level.

`record_demos` runs the scripted planner (the base data), `collect_corrections` runs a high
level with the simulated person correcting it (the fine-tuning data), and `evaluate` runs a
high level on new seeds twice: with no corrections (success) and with the person watching (the
corrections it needs), each episode judged by the simulator's state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from corrigible.policies.learned.high_level.config_high_level import InstructorConfig
from corrigible.policies.learned.high_level.episodes import (
    EpisodeRecord,
    HLDataset,
    SimulatedInstructor,
    run_episode,
    scripted_chooser,
)
from corrigible.policies.learned.high_level.high_level import HighLevelPolicy
from corrigible.policies.learned.high_level.task_family import (
    ORDERS,
    SEEN_ORDERS,
    make_env,
    sample_task,
)

Tick = Callable[[EpisodeRecord], None]


def record_demos(
    seeds: Sequence[int], cfg: InstructorConfig, *, engine: str = "mujoco", tick: Tick | None = None
) -> HLDataset:
    """The scripted planner's episodes on `seeds`, tasks drawn from the seen orders only."""
    records = []
    env = make_env(engine)
    try:
        for seed in seeds:
            task = sample_task(seed, SEEN_ORDERS)
            rec = run_episode(
                env,
                task,
                seed,
                scripted_chooser(task),
                cfg=cfg,
                source="demo",
                episode=f"demo-seed{seed}",
            )
            records.append(rec)
            if tick is not None:
                tick(rec)
    finally:
        env.close()
    return HLDataset.from_records(records, cfg)


def collect_corrections(
    policy: HighLevelPolicy,
    seeds: Sequence[int],
    *,
    engine: str = "mujoco",
    tick: Tick | None = None,
) -> HLDataset:
    """Episodes of `policy` with the person correcting it, tasks from every order."""
    records = []
    person = SimulatedInstructor(policy.text, seed=seeds[0] if seeds else 0)
    env = make_env(engine)
    try:
        for seed in seeds:
            task = sample_task(seed, ORDERS)
            rec = run_episode(
                env,
                task,
                seed,
                policy,
                cfg=policy.cfg,
                instructor=person,
                episode=f"corrected-seed{seed}",
            )
            records.append(rec)
            if tick is not None:
                tick(rec)
    finally:
        env.close()
    return HLDataset.from_records(records, policy.cfg)


def evaluate(
    policy: HighLevelPolicy,
    seeds: Sequence[int],
    *,
    engine: str = "mujoco",
    tick: Tick | None = None,
) -> dict[str, object]:
    """Success with no corrections, and corrections needed with the person watching.

    Returns:
        JSON-ready figures: success rate (all, seen orders, unseen orders), corrections per
        episode, the success rate with corrections, and one line per episode.
    """
    free, watched = [], []
    person = SimulatedInstructor(policy.text, seed=seeds[0] if seeds else 0)
    env = make_env(engine)
    try:
        for seed in seeds:
            task = sample_task(seed, ORDERS)
            for runs, instructor in ((free, None), (watched, person)):
                rec = run_episode(
                    env,
                    task,
                    seed,
                    policy,
                    cfg=policy.cfg,
                    instructor=instructor,
                    episode=f"eval-seed{seed}",
                )
                runs.append(rec)
                if tick is not None:
                    tick(rec)
    finally:
        env.close()

    def rate(recs: list[EpisodeRecord]) -> float | None:
        return round(sum(r.success for r in recs) / len(recs), 4) if recs else None

    n = len(free)
    return {
        "episodes": n,
        "engine": engine,
        "seeds": [min(seeds), max(seeds)] if n else [],
        "success": rate(free),
        "success_seen_orders": rate([r for r in free if r.task.is_seen]),
        "success_unseen_orders": rate([r for r in free if not r.task.is_seen]),
        "corrections_per_episode": round(sum(len(r.corrections) for r in watched) / n, 4)
        if n
        else None,
        "success_with_corrections": rate(watched),
        "per_episode": [
            {
                "seed": f.seed,
                "task": f.task.text,
                "success": f.success,
                "instructions": [s.label for s in f.samples],
                "corrections_needed": len(w.corrections),
            }
            for f, w in zip(free, watched, strict=True)
        ],
    }
