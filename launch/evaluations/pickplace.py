"""The pick-and-place suite: "put the <colour> block in the <colour> bowl" on seeded layouts.

Case i picks block colour `PALETTE[i % 10]` and bowl colour `PALETTE[(3 i + 1) % 10]` (never
the same), so 20 cases cover every colour as a block and as a bowl. Success is judged by the
predicate `in(<block>, <bowl>)` on privileged state, independently of how the instruction was
parsed. `corrigible bench pickplace` prints one JSON row per engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from corrigible.session import EpisodeResult, Session, SessionConfig
from corrigible.sim_envs.backends.registry import BACKENDS
from corrigible.sim_envs.palette import COLORS

PALETTE = list(COLORS)


@dataclass(frozen=True)
class PickPlaceCase:
    """One seeded pick-and-place task."""

    seed: int
    block: str  # block colour
    bowl: str  # bowl colour

    @property
    def instruction(self) -> str:
        """The instruction given to the robot."""
        return f"put the {self.block} block in the {self.bowl} bowl"

    @property
    def expect(self) -> str:
        """The success predicate, written independently of the instruction parser."""
        return f"in({self.block} block, {self.bowl} bowl)"


def pickplace_cases(n: int, first_seed: int = 0) -> list[PickPlaceCase]:
    """`n` cases; the first 10 cover every colour as block, 20 as block and bowl."""
    cases = []
    for i in range(n):
        block = PALETTE[i % len(PALETTE)]
        bowl = PALETTE[(3 * i + 1) % len(PALETTE)]
        if bowl == block:
            bowl = PALETTE[(3 * i + 2) % len(PALETTE)]
        cases.append(PickPlaceCase(seed=first_seed + i, block=block, bowl=bowl))
    return cases


def run_case(engine: str, case: PickPlaceCase) -> EpisodeResult:
    """Runs one case on one engine."""
    with Session(SessionConfig(engine=engine, seed=case.seed)) as session:
        return session.run(case.instruction, expect=case.expect)


def run_bench(
    quick: bool = False, engines: tuple[str, ...] = tuple(BACKENDS.names())
) -> Iterator[dict[str, Any]]:
    """Success rate per engine over 20 seeded layouts (3 when quick)."""
    cases = pickplace_cases(3 if quick else 20)
    for engine in engines:
        results = [run_case(engine, case) for case in cases]
        failures = [
            {"seed": c.seed, "instruction": c.instruction, "details": r.expect_details}
            for c, r in zip(cases, results, strict=True)
            if not r.expect_holds
        ]
        yield {
            "benchmark": "pickplace",
            "backend": engine,
            "episodes": len(cases),
            "successes": sum(bool(r.expect_holds) for r in results),
            "success_rate": sum(bool(r.expect_holds) for r in results) / len(cases),
            "block_colors": sorted({c.block for c in cases}),
            "bowl_colors": sorted({c.bowl for c in cases}),
            "mean_wall_s": sum(r.wall_s for r in results) / len(results),
            "failures": failures,
        }
