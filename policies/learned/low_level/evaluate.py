"""Success of the learned vs the scripted low level per skill, on held-out layouts, per engine.

Layout seeds start at `HELD_OUT_SEED_BASE`, a range collection refuses, so no evaluated layout
was trained on. For each layout a block and a bowl are drawn from the layout seed; `pick` is
run from the home pose, scripted and learned, each on a fresh reset of the layout; `place` is
run after a scripted pick (the same start for both), scripted and learned. Success is judged
from the simulator's state with the suites' predicates: a pick holds when the block is
between both fingers and has risen at least `PICK_RISE_M`; a place holds when the suites'
`in(block, bowl)` predicate does. The skills' own verdicts are recorded beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import CorrigibleError
from corrigible.policies.learned.low_level.config_low_level import HELD_OUT_SEED_BASE
from corrigible.policies.learned.low_level.low_level import LowLevelPolicy

PICK_RISE_M = 0.05  # m, how far a picked block must have risen (the skills lift 15 cm)


def _picked(env: Any, obj: str, z0: float) -> bool:
    """From the simulator: `obj` is between both fingers and has risen `PICK_RISE_M`."""
    held = env.arm.holding() == obj
    return bool(held and float(env.backend.object_poses()[obj][0][2]) - z0 >= PICK_RISE_M)


def _placed(env: Any, obj: str, bowl: str) -> bool:
    """From the simulator: the suites' predicate `in(obj, bowl)`."""
    from corrigible.sim_envs.predicates import WorldState, parse_predicate

    predicate = parse_predicate(f"in({obj}, {bowl})", env.scene)
    holds, _ = predicate.evaluate(WorldState.from_info(env.scene, env._info()))
    return bool(holds)


def _library(env: Any, policy: LowLevelPolicy | None, perception: str) -> Any:
    from corrigible.policies.learned.low_level.skills import LearnedSkillLibrary
    from corrigible.policies.perception import CameraLocator, PrivilegedLocator
    from corrigible.policies.skills import SkillLibrary

    locator = (
        CameraLocator(env.backend, env.camera)
        if perception == "camera"
        else PrivilegedLocator(env.backend)
    )
    lib = SkillLibrary(env, locator=locator)
    return lib if policy is None else LearnedSkillLibrary(lib, policy)


def _attempt(fn: Callable[[], Any]) -> tuple[bool, str]:
    """Runs a skill; a refusal (safety, motion) is a failure with its message."""
    try:
        result = fn()
    except CorrigibleError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return bool(result.success), result.message


def evaluate(
    checkpoint: Path,
    engines: tuple[str, ...] = ("mujoco", "pybullet"),
    layouts: int = 20,
    *,
    perception: str = "camera",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Measures pick and place success, scripted vs learned, on `layouts` held-out layouts.

    Args:
        checkpoint: the learned low level.
        engines: physics engines to evaluate in.
        layouts: held-out layouts per engine.
        perception: where the scripted skills aim ("camera", as programs do, or "privileged").
        progress: called as (engine, layouts done, layouts) after each layout.

    Returns:
        {"layouts", "checkpoint", "perception", "engines": {engine: {skill: {...}}}} where each
        skill has `scripted` and `learned` success rates, the counts, and `learned_vs_scripted`
        (the ratio the acceptance asks to be at least 0.8).
    """
    from corrigible.sim_envs.tabletop_env import TabletopEnv

    policy = LowLevelPolicy.load(checkpoint)
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "layouts": layouts,
        "layout_seeds": [HELD_OUT_SEED_BASE, HELD_OUT_SEED_BASE + layouts - 1],
        "perception": perception,
        "engines": {},
    }
    for engine in dict.fromkeys(engines):  # once each, in order ("--sim" may weight them)
        wins = {(s, k): 0 for s in ("pick", "place") for k in ("scripted", "learned")}
        tried = {"pick": 0, "place": 0}
        failures: list[dict[str, Any]] = []
        env = TabletopEnv(engine, obs_mode="state")
        try:
            for i in range(layouts):
                seed = HELD_OUT_SEED_BASE + i
                env.reset(seed=seed)
                rng = np.random.default_rng(seed)
                blocks = [o.name for o in env.scene.objects if o.kind == "block"]
                bowls = [o.name for o in env.scene.objects if o.kind == "bowl"]
                obj = blocks[int(rng.integers(len(blocks)))]
                bowl = bowls[int(rng.integers(len(bowls)))]
                tried["pick"] += 1
                for which, pol in (("scripted", None), ("learned", policy)):
                    env.reset(seed=seed)
                    lib = _library(env, pol, perception)
                    z0 = float(env.backend.object_poses()[obj][0][2])
                    _, message = _attempt(lambda lib=lib, obj=obj: lib.pick(obj))
                    ok = _picked(env, obj, z0)
                    wins["pick", which] += ok
                    if not ok:
                        failures.append(
                            {"seed": seed, "skill": "pick", "low_level": which, "why": message}
                        )
                outcomes: dict[str, tuple[bool, str]] = {}
                for which, pol in (("scripted", None), ("learned", policy)):
                    env.reset(seed=seed)
                    lib = _library(env, None, perception)
                    z0 = float(env.backend.object_poses()[obj][0][2])
                    _attempt(lambda lib=lib, obj=obj: lib.pick(obj))
                    if not _picked(env, obj, z0):
                        break  # the scripted set-up failed: this layout does not count for place
                    lib = _library(env, pol, perception) if pol is not None else lib
                    _, message = _attempt(lambda lib=lib, obj=obj, bowl=bowl: lib.place(obj, bowl))
                    outcomes[which] = (_placed(env, obj, bowl), message)
                if len(outcomes) == 2:
                    tried["place"] += 1
                    for which, (ok, message) in outcomes.items():
                        wins["place", which] += ok
                        if not ok:
                            failures.append(
                                {"seed": seed, "skill": "place", "low_level": which, "why": message}
                            )
                if progress is not None:
                    progress(engine, i + 1, layouts)
        finally:
            env.close()
        skills: dict[str, Any] = {}
        for skill in ("pick", "place"):
            n = tried[skill]
            scripted = wins[skill, "scripted"] / n if n else float("nan")
            learned = wins[skill, "learned"] / n if n else float("nan")
            skills[skill] = {
                "attempts": n,
                "scripted_successes": wins[skill, "scripted"],
                "learned_successes": wins[skill, "learned"],
                "scripted": round(scripted, 3),
                "learned": round(learned, 3),
                "learned_vs_scripted": round(learned / scripted, 3) if scripted else None,
            }
        report["engines"][engine] = {**skills, "failures": failures}
    return report
