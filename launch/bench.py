"""`corrigible bench NAME`: speed and quality benchmarks, one JSON object per line.

Each benchmark lives in `launch/benchmarks/` (or `launch/evaluations/`), apart from the library
code it measures, and is looked up here by name, so this module only parses and prints.

Example:
    corrigible bench sim
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, field_validator

from corrigible.errors import UnknownNameError
from corrigible.launch.schema import VerbConfig, choices
from corrigible.registry import Registry

# name -> function, imported when run; it takes `quick: bool` and yields JSON-able dict rows.
BENCHMARKS: Registry[Callable[..., Iterable[dict[str, Any]]]] = Registry("benchmark")
BENCHMARKS.register("sim", "corrigible.launch.benchmarks.sim_throughput:run_bench")
BENCHMARKS.register("pickplace", "corrigible.launch.evaluations.pickplace:run_bench")
BENCHMARKS.register("perception", "corrigible.launch.benchmarks.perception:run_bench")
BENCHMARKS.register("sandbox", "corrigible.launch.benchmarks.sandbox:run_bench")
BENCHMARKS.register("kb", "corrigible.launch.benchmarks.knowledge_base:run_bench")
BENCHMARKS.register("events", "corrigible.launch.benchmarks.event_emulator:run_bench")
BENCHMARKS.register("scale", "corrigible.launch.benchmarks.scale:run_bench")
BENCHMARKS.register("speech", "corrigible.launch.benchmarks.speech:run_bench")
BENCHMARKS.register("bridge", "corrigible.launch.benchmarks.bridge:run_bench")
BENCHMARKS.register("llm", "corrigible.launch.benchmarks.llm:run_bench")
BENCHMARKS.register("latency", "corrigible.launch.benchmarks.correction_latency:run_bench")


class BenchConfig(VerbConfig):
    """Which benchmark to run and where to write its rows (`corrigible schema bench`)."""

    name: str = Field(json_schema_extra=choices(BENCHMARKS))  # benchmark, a key of BENCHMARKS
    quick: bool = False  # smaller sizes, for smoke tests
    out: Path | None = None  # JSON file receiving {"benchmark": name, "rows": [...]} too

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        BENCHMARKS.canonical(value)  # UnknownNameError with a "did you mean", no import
        return value


def run(cfg: BenchConfig) -> list[dict[str, Any]]:
    """Runs one benchmark, printing each row as a JSON line as soon as it is measured."""
    rows: list[dict[str, Any]] = []
    for row in BENCHMARKS.get(cfg.name)(quick=cfg.quick):
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
        name: str = typer.Argument(..., help=f"one of: {BENCHMARKS.describe()}"),
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
