"""Whether a scenario's hidden properties leave its tasks solvable by the robot at all.

A scenario author writes "friction 0.12, 0.6 kg: it slips until someone says slow down". Slowing
down helps only while the fingers' grip can hold the object's weight: with the object's own
friction governing the contacts (both engines), two fingers squeezing with `grip_force` each hold
at most 2 * friction * grip_force newtons at rest. An object heavier than that slides out at any
speed, and no correction the skills accept can make its tasks succeed; the demo says so before
it runs, rather than reporting a memory that "did not help".
"""

from __future__ import annotations

from corrigible.corrections.scenarios.schema import ObjectModel, Scenario
from corrigible.sim_envs.scene_spec import RobotSpec

GRAVITY = 9.81  # m/s^2


def unliftable(obj: ObjectModel, robot: RobotSpec | None = None) -> str | None:
    """Why `obj` cannot be lifted at any speed, or None when its grip holds it at rest."""
    if obj.friction is None or obj.mass is None:
        return None
    grip = (robot or RobotSpec()).grip_force
    holds = 2.0 * obj.friction * grip
    weight = obj.mass * GRAVITY
    if holds >= weight:
        return None
    return (
        f"the {obj.size} {obj.color} {obj.kind} (friction {obj.friction:g}, {obj.mass:g} kg) "
        f"weighs {weight:.1f} N, but two fingers squeezing with {grip:g} N each hold at most "
        f"{holds:.1f} N at that friction: it slips out at any speed, so no correction can make "
        "a task that lifts it succeed"
    )


def scenario_warnings(scenario: Scenario, robot: RobotSpec | None = None) -> list[str]:
    """One line per distinct object of the scenario (its own or a task's) that cannot be lifted."""
    seen: dict[str, str] = {}
    tasks = [task for rnd in scenario.rounds for task in rnd]
    for obj in [*scenario.objects, *(o for t in tasks for o in (t.objects or []))]:
        why = unliftable(obj, robot)
        if why is not None:
            seen.setdefault(why, f"scenario {scenario.name}: {why}")
    return list(seen.values())
