"""The built-in scenarios' hidden properties hold in both engines, from one scene description.

Each property is run through the real skills on layouts of its own scenario file: without a
correction the task fails, and with the parameter a correction gives it succeeds. MuJoCo is the
reference the scenarios were calibrated in; PyBullet must show the same behaviour, so that the
learning demo means the same thing with `--sim pybullet`.
"""

from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest

from corrigible.corrections.scenarios.schema import Scenario, TaskInstance, load_scenarios
from corrigible.policies.robot_api import RobotAPI
from corrigible.sim_envs.backends.registry import make_backend
from corrigible.sim_envs.layout import sample_layout
from corrigible.sim_envs.tabletop_env import TabletopEnv

SCENARIOS = {s.name: s for s in load_scenarios()}


def _tasks(name: str, expect_prefix: str, n: int = 2) -> list[TaskInstance]:
    """The first `n` non-control tasks of a built-in scenario whose predicate starts so."""
    tasks = [
        t
        for rnd in SCENARIOS[name].rounds
        for t in rnd
        if not t.control and t.expect.startswith(expect_prefix)
    ]
    return tasks[:n]


def _api(engine: str, scenario: Scenario, task: TaskInstance) -> tuple[TabletopEnv, RobotAPI]:
    """The task's scene, seen through the camera as in the demo (with the scenario's bias)."""
    env = TabletopEnv(engine, obs_mode="state", layout=scenario.layout(task))
    env.reset(seed=task.seed)
    return env, RobotAPI(env, camera_bias=np.asarray(scenario.camera_bias))


def _pick_and_place(engine: str, name: str, task: TaskInstance, **speed: float) -> str:
    """'ok', or the first failure's message, for picking and placing the task's object."""
    scenario = SCENARIOS[name]
    obj, target = task.expect[task.expect.index("(") + 1 : -1].split(", ")
    env, api = _api(engine, scenario, task)
    try:
        picked = api.skills.pick(obj, **speed)
        if not picked.success:
            return picked.message
        placed = api.skills.place(obj, target, **speed)
        return "ok" if placed.success else placed.message
    finally:
        env.close()


def _open_drawer(engine: str, name: str, task: TaskInstance, **params: float) -> tuple[bool, float]:
    """(success, opening m) of `open_drawer` in the task's scene."""
    env, api = _api(engine, SCENARIOS[name], task)
    try:
        result = api.skills.open_drawer("drawer", **params)
        return result.success, env.backend.articulation_positions()["drawer"]
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", _tasks("slippery_cylinder", "in("), ids=lambda t: f"seed{t.seed}")
def test_slippery_cylinder_drops_at_default_speed_holds_when_slowed(engine, task):
    """Friction 0.135, 0.55 kg: the default lift (0.25 m/s) loses it; 1/8 of it carries it.

    1/8 is two corrections' worth ("slower" x0.5, then "much slower" x0.25). At x0.25 alone
    both engines hold it in only some layouts (MuJoCo 2 of 4, PyBullet 1 of 4: a carry drop).
    """
    default = _pick_and_place(engine, "slippery_cylinder", task)
    assert "slipped" in default, default
    slowed = _pick_and_place(engine, "slippery_cylinder", task, speed=0.03125)
    assert slowed == "ok", slowed


def _tilt_deg(quat: np.ndarray) -> float:
    """Angle between the body's z axis and the world's (wxyz quaternion)."""
    _, x, y, _ = quat
    return float(np.degrees(np.arccos(np.clip(1 - 2 * (x * x + y * y), -1.0, 1.0))))


def test_a_slipping_pick_lets_go_and_leaves_the_object_standing(engine):
    """A lift the object trails is stopped and the gripper opened: the cylinder stays upright.

    Before the pick watched for the slip, PyBullet's fingertips dragged the sliding cylinder
    over at its top edge (on its side after the second slow attempt, then pushed off the
    table by the third), and no correction could bring it back.
    """
    scenario = SCENARIOS["slippery_lookalike"]
    task = next(t for rnd in scenario.rounds for t in rnd if not t.control)
    obj = "blue cylinder"
    env, api = _api(engine, scenario, task)
    try:
        for speed in (0.25, 0.0625):
            result = api.skills.pick(obj, speed=speed)
            if result.success:
                break
            assert "slipped" in result.message, result.message
            assert env.arm.holding() is None
            assert _tilt_deg(env.backend.object_poses()[obj][1]) < 10.0
            api.skills.go_home()
        assert api.skills.pick(obj, speed=0.03125).success
    finally:
        env.close()


@pytest.mark.slow
def test_same_coloured_block_is_unaffected(engine):
    """The control: the red block of default friction is carried at the default speed."""
    task = next(t for rnd in SCENARIOS["slippery_cylinder"].rounds for t in rnd if t.control)
    assert _pick_and_place(engine, "slippery_cylinder", task) == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("task", _tasks("stiff_drawer", "open"), ids=lambda t: f"seed{t.seed}")
def test_stiff_drawer_needs_a_longer_pull(engine, task):
    """Damping 3000 N*s/m: the default 14 cm pull leaves it short; 'further' (+5 cm) opens it.

    MuJoCo: 8.9 cm, then 10.7 cm; PyBullet: 9.1 cm, then 11.1 cm. The lag is how far the bar
    pries the fingers open before the drawer follows the hand: MuJoCo's soft joint limits let
    them open ~2 cm past their 4 cm range under the load, and the PyBullet backend gives its
    hard limits the same room (`_FINGER_LIMIT_GIVE`; without it the default pull opened the
    drawer 10.8 cm and no correction was needed).
    """
    ok, opening = _open_drawer(engine, "stiff_drawer", task)
    assert not ok and opening < 0.096, opening
    ok, opening = _open_drawer(engine, "stiff_drawer", task, pull_distance=0.19)
    assert ok and opening > 0.096, opening


@pytest.mark.slow
@pytest.mark.parametrize("task", _tasks("offcentre_handle", "open"), ids=lambda t: f"seed{t.seed}")
def test_offcentre_handle_needs_a_grasp_offset(engine, task):
    """The handle sits 6 cm left: aimed at the centre the fingers miss it; +3 cm catches it."""
    ok, opening = _open_drawer(engine, "offcentre_handle", task)
    assert not ok and opening < 0.01, opening
    ok, opening = _open_drawer(engine, "offcentre_handle", task, grasp_offset_y=0.03)
    assert ok, opening


_BIASED_TASKS = [
    ("camera_bias", SCENARIOS["camera_bias"].rounds[0][0], 0.025),
    ("camera_bias_left", SCENARIOS["camera_bias_left"].rounds[0][0], -0.025),
    ("camera_bias_left", SCENARIOS["camera_bias_left"].rounds[0][2], -0.025),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "task", "offset_y"), _BIASED_TASKS, ids=lambda v: getattr(v, "seed", v)
)
def test_camera_bias_misses_until_the_grasp_is_offset(engine, name, task, offset_y):
    """2.5 cm of camera bias: these layouts' grasps miss; the corrector's offset picks them.

    The bias is in perception, but whether the fingers still close on the block is physics:
    over round 1's first 4 layouts the right bias misses 2 in both engines and the left bias
    3 in MuJoCo and 4 in PyBullet; these are layouts where both engines miss.
    """
    scenario = SCENARIOS[name]
    obj = task.expect[task.expect.index("(") + 1 : -1].split(", ")[0]
    for params, should_hold in (({}, False), ({"grasp_offset_y": offset_y}, True)):
        env, api = _api(engine, scenario, task)
        try:
            result = api.skills.pick(obj, **params)
        finally:
            env.close()
        assert result.success is should_hold, result.message


def test_stiff_slide_moves_at_force_over_damping(engine):
    """A steady pull on a 3000 N*s/m slide moves it at force / damping in both engines.

    PyBullet's own joint damping is explicit and flung such a slide past its limit; the backend
    resists with a velocity motor instead, which must still give the viscous law.
    """
    scenario = SCENARIOS["stiff_drawer"]
    task = scenario.rounds[0][0]
    scene = sample_layout(task.seed, scenario.layout(task))
    backend = make_backend(engine, scene)
    force, seconds = 60.0, 0.5
    try:
        for _ in range(int(seconds / scene.physics.timestep)):
            _pull(backend, engine, force)
            backend.step(1)
        moved = backend.articulation_positions()["drawer"]
    finally:
        backend.close()
    drawer = scene.object("drawer")
    expected = (force - drawer.joint.frictionloss) / drawer.joint.damping * seconds
    assert moved == pytest.approx(expected, rel=0.1)


def _pull(backend, engine: str, force: float) -> None:
    """Applies `force` N along the drawer's opening direction for the next step."""
    if engine == "pybullet":
        body, cid = backend._slides["drawer"], backend._cid
        at = pb.getLinkState(body, 0, physicsClientId=cid)[0]
        pb.applyExternalForce(body, 0, [-force, 0.0, 0.0], at, pb.WORLD_FRAME, physicsClientId=cid)
        return
    import mujoco

    link = mujoco.mj_name2id(backend.model, mujoco.mjtObj.mjOBJ_BODY, "drawer/link")
    backend.data.xfrc_applied[link, :3] = [-force, 0.0, 0.0]
