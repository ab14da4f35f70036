"""One episode from an instruction: lay out a scene that has the named objects, run the skills,
judge the result with an independently written predicate.

Shared by `corrigible run`, `corrigible demo` and the pick-and-place benchmark so that all three
report the same thing the same way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corrigible.policies.language import SkillCall, parse_skill_command
from corrigible.policies.skills import SkillLibrary, SkillResult
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.palette import COLOR_SYNONYMS, COLORS
from corrigible.sim_envs.predicates import Predicate, WorldState, parse_predicate
from corrigible.sim_envs.tabletop_env import TabletopEnv

_KIND_WORDS = {"block": "block", "cube": "block", "cylinder": "cylinder", "bowl": "bowl"}
_MENTION = re.compile(r"\b([a-z]+)\s+(blocks?|cubes?|cylinders?|bowls?)\b")


def mentioned_objects(*texts: str) -> list[ObjectRequest]:
    """Objects named as "<colour> <kind>" in any of the texts, so the layout can include them."""
    seen: dict[tuple[str, str], ObjectRequest] = {}
    for text in texts:
        for color, noun in _MENTION.findall((text or "").lower()):
            color = COLOR_SYNONYMS.get(color, color)
            kind = _KIND_WORDS[noun.rstrip("s")]
            if color in COLORS and (kind, color) not in seen:
                seen[(kind, color)] = ObjectRequest(kind=kind, color=color)
    return list(seen.values())


@dataclass(kw_only=True)
class EpisodeResult:
    """What happened in one episode, for printing and for results files."""

    instruction: str
    engine: str
    seed: int
    calls: list[str]
    skills: list[dict[str, Any]] = field(default_factory=list)
    executed_ok: bool = False
    expect: str | None = None
    expect_holds: bool | None = None
    expect_details: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    sim_s: float = 0.0
    trace_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


class Episode:
    """Builds the env for an instruction and runs it; parse errors surface before any motion."""

    def __init__(
        self,
        instruction: str,
        *,
        engine: str = "mujoco",
        seed: int = 0,
        expect: str | None = None,
        trace_path: Path | None = None,
        layout: LayoutConfig | None = None,
    ) -> None:
        self.instruction = instruction
        self.engine = engine
        self.seed = seed
        layout = layout or LayoutConfig(required=mentioned_objects(instruction, expect or ""))
        self.env = TabletopEnv(engine, obs_mode="state", layout=layout, trace_path=trace_path)
        self.env.reset(seed=seed)
        self.skills = SkillLibrary(self.env)
        names = self.skills.object_names()
        self.calls: list[SkillCall] = parse_skill_command(instruction, names)
        self.predicate: Predicate | None = parse_predicate(expect, self.env.scene) if expect else None
        self.trace_path = trace_path

    def _plan(self) -> list[SkillCall]:
        """Adds preconditions the skills cannot do without (an open drawer to put things in)."""
        plan: list[SkillCall] = []
        for call in self.calls:
            target = call.args.get("target", "")
            if call.skill in ("put_first_on_second", "place") and self.env.scene.object_kind(target) == "drawer":
                plan.append(SkillCall("open_drawer", {"drawer": target}))
            plan.append(call)
        return plan

    def run(self) -> EpisodeResult:
        """Executes the plan and evaluates the expectation."""
        t0, sim0 = time.perf_counter(), self.env.backend.time
        results: list[SkillResult] = []
        ok = True
        for call in self._plan():
            result = getattr(self.skills, call.skill)(**call.args)
            results.append(result)
            if not result.success:
                ok = False
                break
        self.env.arm.wait(0.3)
        out = EpisodeResult(
            instruction=self.instruction,
            engine=self.engine,
            seed=self.seed,
            calls=[str(c) for c in self._plan()],
            skills=[_summary(r) for r in results],
            executed_ok=ok,
            expect=self.predicate.text if self.predicate else None,
            wall_s=time.perf_counter() - t0,
            sim_s=self.env.backend.time - sim0,
            trace_path=str(self.trace_path) if self.trace_path else None,
        )
        if self.predicate is not None:
            info = self.env._info()
            holds, details = self.predicate.evaluate(WorldState.from_info(self.env.scene, info))
            out.expect_holds, out.expect_details = holds, details
        return out

    def close(self) -> None:
        """Releases the simulator and flushes the trace."""
        self.env.close()


def _summary(r: SkillResult) -> dict[str, Any]:
    return {
        "skill": r.skill,
        "args": r.args,
        "success": r.success,
        "message": r.message,
        "duration_s": round(r.duration_s, 3),
        "wall_s": round(r.wall_s, 3),
    }
