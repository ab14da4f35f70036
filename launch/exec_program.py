"""`corrigible exec FILE`: run a (possibly hostile) program file in the sandbox against the sim.

Example:
    corrigible exec my_program.py --sim mujoco

Prints one JSON object: {status, error_class, line, message, output, api_calls, lines, ...}
(schema in policies/sandbox/README.md). Exit status 0 when the program ran to completion, 1 when
it ended in an error of any class, 2 when the file or options are unusable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import typer


@dataclass(kw_only=True)
class ExecConfig:
    """One program run."""

    file: Path  # the program
    sim: str = "mujoco"  # mujoco | pybullet
    seed: int = 0  # layout seed
    perception: str = "camera"  # camera | privileged
    wall_time_s: float = 60.0  # wall-clock limit for the program (API time excluded)
    cpu_time_s: float = 10.0  # CPU limit of the program's process


def run(cfg: ExecConfig) -> int:
    """Runs the program and prints its result; returns the exit status."""
    from corrigible.policies.robot_api import RobotAPI
    from corrigible.policies.sandbox import SandboxLimits, exec_file
    from corrigible.sim_envs.tabletop_env import TabletopEnv
    from corrigible.tracing import to_jsonable

    env = TabletopEnv(cfg.sim, obs_mode="state")
    try:
        env.reset(seed=cfg.seed)
        api = RobotAPI(env, perception=cfg.perception)
        limits = SandboxLimits(wall_time_s=cfg.wall_time_s, cpu_time_s=cfg.cpu_time_s)
        result = exec_file(cfg.file, api.functions(), limits)
    finally:
        env.close()
    print(json.dumps(to_jsonable(result.to_json())))
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
        problems = []
        if sim not in ("mujoco", "pybullet"):
            problems.append(f"--sim must be mujoco or pybullet, got {sim!r}")
        if perception not in ("camera", "privileged"):
            problems.append(f"--perception must be camera or privileged, got {perception!r}")
        if not file.is_file():
            problems.append(f"no such program file: {file}")
        if problems:
            print(
                json.dumps(
                    {
                        "status": "error",
                        "error_class": "usage",
                        "line": None,
                        "message": "; ".join(problems),
                    }
                )
            )
            print("error: " + "; ".join(problems), file=sys.stderr)
            raise typer.Exit(2)
        cfg = ExecConfig(
            file=file,
            sim=sim,
            seed=seed,
            perception=perception,
            wall_time_s=wall_time_s,
            cpu_time_s=cpu_time_s,
        )
        raise typer.Exit(run(cfg))
