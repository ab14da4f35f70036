"""One episode from an instruction: lay out a scene, plan, run the program, judge the result.

The scene holds the named objects; the result is judged with an independently written predicate.

Shared by `corrigible run`, `corrigible demo`, `corrigible eval` and the benchmarks, so that all
report the same thing the same way.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corrigible.policies.controller import HierarchicalController, StepOutcome
from corrigible.policies.planners.base import Planner
from corrigible.policies.planners.registry import make_planner
from corrigible.policies.robot_api import RobotAPI
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
    planner: str
    perception: str
    steps: list[dict[str, Any]] = field(default_factory=list)
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
    """Builds the env for an instruction; bad input (objects, predicate) raises before motion."""

    def __init__(
        self,
        instruction: str | list[str],
        *,
        engine: str = "mujoco",
        seed: int = 0,
        expect: str | None = None,
        trace_path: Path | None = None,
        layout: LayoutConfig | None = None,
        planner: Planner | str = "grammar",
        perception: str = "camera",
    ) -> None:
        self.instructions = [instruction] if isinstance(instruction, str) else list(instruction)
        self.engine = engine
        self.seed = seed
        layout = layout or LayoutConfig(
            required=mentioned_objects(*self.instructions, expect or "")
        )
        self.env = TabletopEnv(engine, obs_mode="state", layout=layout, trace_path=trace_path)
        self.env.reset(seed=seed)
        self.predicate: Predicate | None = (
            parse_predicate(expect, self.env.scene) if expect else None
        )
        self.planner = make_planner(planner) if isinstance(planner, str) else planner
        self.api = RobotAPI(self.env, perception=perception)
        self.controller = HierarchicalController(self.api, self.planner)
        self.perception = perception
        self.trace_path = trace_path

    def run(self) -> EpisodeResult:
        """Runs every instruction in order (stopping at the first failure) and judges the end."""
        t0, sim0 = time.perf_counter(), self.env.backend.time
        outcomes: list[StepOutcome] = []
        for instruction in self.instructions:
            outcome = self.controller.run(instruction)
            outcomes.append(outcome)
            if outcome.status != "ok":
                break
        self.env.arm.wait(0.3)
        out = EpisodeResult(
            instruction=" / ".join(self.instructions),
            engine=self.engine,
            seed=self.seed,
            planner=self.planner.name,
            perception=self.perception,
            steps=[o.to_dict() for o in outcomes],
            executed_ok=all(o.status == "ok" for o in outcomes),
            expect=self.predicate.text if self.predicate else None,
            wall_s=time.perf_counter() - t0,
            sim_s=self.env.backend.time - sim0,
            trace_path=str(self.trace_path) if self.trace_path else None,
        )
        if self.predicate is not None:
            holds, details = self.predicate.evaluate(
                WorldState.from_info(self.env.scene, self.env._info())
            )
            out.expect_holds, out.expect_details = holds, details
        return out

    def close(self) -> None:
        """Releases the simulator and flushes the trace."""
        self.env.close()
