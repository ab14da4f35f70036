"""`corrigible bench NAME`: speed and quality benchmarks, one JSON object per line.

Each benchmark lives beside the code it measures and is looked up here by name, so this module
only parses and prints.

Example:
    corrigible bench sim
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from corrigible.errors import UnknownNameError, did_you_mean

# name -> "module:function"; the function takes `quick: bool` and yields JSON-able dict rows.
BENCHMARKS: dict[str, str] = {
    "sim": "corrigible.sim_envs.bench:run_bench",
    "pickplace": "corrigible.policies.eval_pickplace:run_bench",
    "perception": "corrigible.policies.bench_perception:run_bench",
    "sandbox": "corrigible.policies.sandbox.hostile_report:run_bench",
    "kb": "corrigible.memory.bench:run_bench",
    "events": "corrigible.sim_envs.event_camera.bench:run_bench",
}


@dataclass(kw_only=True)
class BenchConfig:
    """Which benchmark to run and where to write its rows."""

    name: str  # a key of BENCHMARKS
    quick: bool = False  # smaller sizes, for smoke tests
    out: Path | None = None  # optional JSON file receiving {"benchmark": name, "rows": [...]}

    def __post_init__(self) -> None:
        if self.name not in BENCHMARKS:
            raise UnknownNameError(
                f"unknown benchmark {self.name!r}; choose one of {sorted(BENCHMARKS)}."
                + did_you_mean(self.name, BENCHMARKS)
            )


def _resolve(name: str) -> Callable[..., Iterable[dict[str, Any]]]:
    module_name, func_name = BENCHMARKS[name].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def run(cfg: BenchConfig) -> list[dict[str, Any]]:
    """Runs one benchmark, printing each row as a JSON line as soon as it is measured."""
    rows: list[dict[str, Any]] = []
    for row in _resolve(cfg.name)(quick=cfg.quick):
        rows.append(row)
        print(json.dumps(row), flush=True)
    if cfg.out is not None:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps({"benchmark": cfg.name, "rows": rows}, indent=2))
    return rows


def register(app: typer.Typer) -> None:
    """Adds the `bench` verb."""

    @app.command("bench")
    def bench(
        name: str = typer.Argument(..., help=f"one of: {', '.join(BENCHMARKS)}"),
        quick: bool = typer.Option(False, help="smaller sizes (smoke test)"),
        out: Path | None = typer.Option(None, help="also write the rows to this JSON file"),
    ) -> None:
        """Run a benchmark and print one JSON object per line."""
        try:
            cfg = BenchConfig(name=name, quick=quick, out=out)
        except UnknownNameError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        run(cfg)
