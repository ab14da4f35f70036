"""A scenario whose hidden friction and mass put an object beyond the gripper is named up front."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from corrigible.corrections.scenarios import load_scenarios
from corrigible.corrections.scenarios.feasibility import scenario_warnings, unliftable
from corrigible.corrections.scenarios.schema import ObjectModel
from corrigible.sim_envs.scene_spec import RobotSpec


def test_the_grip_limit_is_twice_friction_times_the_finger_force():
    robot = RobotSpec()
    limit_kg = 2 * 0.12 * robot.grip_force / 9.81  # 0.49 kg at friction 0.12 and 20 N
    light = ObjectModel(kind="cylinder", color="orange", friction=0.12, mass=limit_kg * 0.95)
    heavy = ObjectModel(kind="cylinder", color="orange", friction=0.12, mass=limit_kg * 1.05)
    assert unliftable(light) is None
    why = unliftable(heavy)
    assert why is not None and "no correction can" in why and "20 N" in why
    assert unliftable(ObjectModel(kind="block", color="red", mass=4.0)) is None  # friction unset


def test_every_built_in_scenario_is_solvable():
    assert [w for s in load_scenarios(None) for w in scenario_warnings(s)] == []


def test_the_demo_warns_before_it_runs(tmp_path: Path):
    scenario = {
        "version": 1,
        "name": "greasy_heavy",
        "family": "lookalike",
        "objects": [
            {
                "kind": "cylinder",
                "color": "orange",
                "size": "large",
                "friction": 0.1,
                "mass": 0.8,
                "property": "slippery",
            },
            {"kind": "bowl", "color": "blue"},
        ],
        "rounds": [
            [
                {
                    "instruction": "put the orange cylinder in the blue bowl",
                    "expect": "in(orange cylinder, blue bowl)",
                    "seed": 1,
                }
            ]
        ],
    }
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "greasy_heavy.yaml").write_text(yaml.safe_dump(scenario))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "corrigible.launch.cli",
            "demo",
            "--scenarios",
            str(folder),
            "--conditions",
            "none",
            "--rounds",
            "1",
            "--workers",
            "1",
            "--out",
            str(tmp_path / "demo.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "warning:" in done.stdout and "greasy_heavy" in done.stdout, done.stdout + done.stderr
    assert "slips out at any speed" in done.stdout
