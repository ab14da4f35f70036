"""`corrigible exec FILE`: run a (possibly hostile) program file in the sandbox against the sim.

Example:
    corrigible exec my_program.py --sim mujoco

Prints one JSON object: {status, error_class, line, message, output, api_calls, lines, ...}
(schema in policies/sandbox/README.md), strict JSON (no NaN or Infinity tokens) of at most
`RESULT_JSON_MAX_BYTES` (64 KiB; longer sections are cut and `truncated` is true). Exit status
0 when the program ran to completion, 1 when it ended in an error of any class, 2 when the file
or options are unusable.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer
from pydantic import Field, model_validator

from corrigible.errors import ConfigError
from corrigible.launch.schema import VerbConfig, choices
from corrigible.policies.sandbox.config_sandbox import MAX_TIME_S
from corrigible.sim_envs.backends.registry import BACKENDS

_PERCEPTION = ("camera", "privileged")


class ExecConfig(VerbConfig):
    """One program run (`corrigible schema exec`)."""

    file: Path  # the program, a Python file written against the robot API
    sim: str = Field("mujoco", json_schema_extra=choices(BACKENDS))  # physics engine
    seed: int = Field(0, ge=0)  # layout seed
    perception: str = Field("camera", json_schema_extra=choices(_PERCEPTION))  # object source
    wall_time_s: float = Field(  # s, whole run, robot API calls included
        60.0, json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_TIME_S}
    )
    cpu_time_s: float = Field(  # s, program CPU
        10.0, json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_TIME_S}
    )

    @model_validator(mode="after")
    def _usable(self) -> ExecConfig:
        """Every unusable option at once, in one message (the CLI prints it as `usage`)."""
        problems = []
        if self.sim not in BACKENDS:
            problems.append(f"--sim must be {' or '.join(BACKENDS)}, got {self.sim!r}")
        if self.perception not in _PERCEPTION:
            problems.append(f"--perception must be camera or privileged, got {self.perception!r}")
        if not self.file.is_file():
            problems.append(f"no such program file: {self.file}")
        for flag, value in (("--wall-time-s", self.wall_time_s), ("--cpu-time-s", self.cpu_time_s)):
            if not value > 0:  # NaN too
                problems.append(f"{flag} must be > 0 s, got {value:g}")
            elif not (math.isfinite(value) and value <= MAX_TIME_S):
                problems.append(
                    f"{flag} must be a finite number of at most {MAX_TIME_S:g} s, got {value:g}"
                )
        if problems:
            raise ConfigError("; ".join(problems))
        return self


def run(cfg: ExecConfig) -> int:
    """Runs the program and prints its result; returns the exit status."""
    from corrigible.policies.sandbox import SandboxLimits, exec_file
    from corrigible.session import Session, SessionConfig

    config = SessionConfig(engine=cfg.sim, seed=cfg.seed, perception=cfg.perception)
    with Session(config) as session:
        session.reset()  # the seed's layout; the program is the plan, so no planner runs
        assert session.api is not None
        limits = SandboxLimits(wall_time_s=cfg.wall_time_s, cpu_time_s=cfg.cpu_time_s)
        result = exec_file(cfg.file, session.api.functions(), limits)
    # to_json() caps the size and holds strict JSON only; allow_nan=False makes that a promise.
    print(json.dumps(result.to_json(), allow_nan=False))
    return 0 if result.status == "ok" else 1


def register(app: typer.Typer) -> None:
    """Adds the `exec` verb."""

    @app.command("exec")
    def exec_cmd(
        file: Path = typer.Argument(..., help="Python program written against the robot API"),
        sim: str = typer.Option("mujoco", "--sim", help="mujoco | pybullet"),
        seed: int = typer.Option(0, min=0, help="layout seed"),
        perception: str = typer.Option("camera", help="camera | privileged"),
        wall_time_s: float = typer.Option(60.0, help="wall-clock limit, s"),
        cpu_time_s: float = typer.Option(10.0, help="CPU limit, s"),
    ) -> None:
        """Run a program file in the sandbox against the sim; print one JSON result."""
        try:
            cfg = ExecConfig(
                file=file,
                sim=sim,
                seed=seed,
                perception=perception,
                wall_time_s=wall_time_s,
                cpu_time_s=cpu_time_s,
            )
        except ConfigError as exc:
            usage = {"status": "error", "error_class": "usage", "line": None, "message": str(exc)}
            print(json.dumps(usage))
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
        raise typer.Exit(run(cfg))
