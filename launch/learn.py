"""`corrigible learn`: an alias of `corrigible demo` (the corrections suite), kept for scripts.

Example:
    corrigible learn --quick --out runs/learn.json

Same run, table, JSON (launch/README.md#demo) and plot as `corrigible demo`; only the default
output path differs (runs/learn.json).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, model_validator

from corrigible.boundary import escape
from corrigible.errors import ConfigError
from corrigible.launch.demo import DemoConfig, _default_workers, run_corrections
from corrigible.launch.schema import VerbConfig, choices
from corrigible.sim_envs.backends.registry import BACKENDS


class LearnConfig(VerbConfig):
    """What `learn` runs: the corrections-suite part of `DemoConfig` (`corrigible schema learn`).

    Checked by building the equivalent `DemoConfig`, so both verbs refuse the same values with
    the same messages.
    """

    scenarios: Path | None = None  # directory of scenario YAML files; None = built-in
    sim: str = Field("mujoco", json_schema_extra=choices(BACKENDS))  # physics engine
    rounds: int | None = None  # rounds per scenario (>= 1); None = all in the file
    out: Path = Path("runs/learn.json")  # results JSON; the plot goes next to it (.png)
    full: bool = False  # every task of every built-in scenario (default: the demo's tour)
    quick: bool = False  # built-in: the tour (the default); a folder: 2 rounds x 2 tasks
    seed: int = 0  # corrector phrasing seed (same in every condition)
    workers: int = 1  # worker processes (>= 1)

    @model_validator(mode="after")
    def _valid_demo(self) -> LearnConfig:
        self.to_demo()  # ConfigError naming the field, the value and the fix
        return self

    def to_demo(self) -> DemoConfig:
        """The equivalent demo configuration (validates the values)."""
        return DemoConfig(
            scenarios=self.scenarios,
            sim=self.sim,
            rounds=self.rounds,
            out=self.out,
            full=self.full,
            quick=self.quick,
            seed=self.seed,
            workers=self.workers,
        )


def run(cfg: LearnConfig) -> dict[str, Any]:
    """Runs the corrections suite; returns (and writes) the results."""
    return run_corrections(cfg.to_demo())


def register(app: typer.Typer) -> None:
    """Adds the `learn` verb."""

    @app.command("learn")
    def learn(
        scenarios: Path | None = typer.Option(None, help="directory of scenario YAML files"),
        sim: str = typer.Option("mujoco", help="physics engine: mujoco | pybullet"),
        rounds: int | None = typer.Option(None, help="rounds per scenario (default: all)"),
        out: Path = typer.Option(Path("runs/learn.json"), help="results JSON (+ .png plot)"),
        full: bool = typer.Option(False, help="every task of every built-in scenario"),
        quick: bool = typer.Option(False, help="built-in: the tour; a folder: 2 rounds x 2 tasks"),
        workers: int = typer.Option(_default_workers(), min=1, help="worker processes"),
    ) -> None:
        """Alias of `corrigible demo` (corrections suite), writing runs/learn.json."""
        try:
            cfg = LearnConfig(
                scenarios=scenarios,
                sim=sim,
                rounds=rounds,
                out=out,
                full=full,
                quick=quick,
                workers=workers,
            )
            run(cfg)
        except ConfigError as exc:
            print(f"error: {escape(exc)}", file=sys.stderr)
            raise typer.Exit(2) from exc
