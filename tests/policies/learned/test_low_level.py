"""The learned low level: collection, training, checkpoints, the plug-in and the safety envelope.

Real physics (MuJoCo), real MiniLM, real torch training; the networks are tiny so the default
tests stay short. The figures of a full training run are in the package README's report, not
asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from corrigible.errors import CheckpointError, ConfigError, SafetyError
from corrigible.policies.learned.low_level.config_low_level import (
    HELD_OUT_SEED_BASE,
    CollectConfig,
    LowLevelModelConfig,
    TrainConfig,
)
from corrigible.policies.learned.low_level.demos import Demonstrations, collect
from corrigible.policies.learned.low_level.low_level import (
    LowLevelPolicy,
)
from corrigible.policies.learned.low_level.skills import (
    LearnedSkillLibrary,
    install_low_level,
    parse_low_level,
)
from corrigible.policies.learned.low_level.training import train

TINY = LowLevelModelConfig(channels=8, hidden=32, language_hidden=16)


@pytest.fixture(scope="module")
def demos() -> Demonstrations:
    """Two recorded MuJoCo episodes (scripted pick, two nudges, place)."""
    return collect(CollectConfig(episodes=2, engines=("mujoco",), seed=3, nudges=2))


@pytest.fixture(scope="module")
def tiny(demos: Demonstrations, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny policy trained for a few epochs, saved as a checkpoint."""
    cfg = TrainConfig(epochs=3, batch_size=16, val_fraction=0.0, threads=1)
    policy, _ = train(demos, cfg, TINY)
    return policy.save(tmp_path_factory.mktemp("ll") / "tiny.pt")


def test_collection_records_the_scripted_primitives(demos: Demonstrations) -> None:
    arrays = demos.arrays()
    assert demos.stats["pick_kept"] == 2 and demos.stats["place_kept"] == 2
    kinds = set(demos.kind)
    assert kinds == {"pick", "place", "nudge"}
    assert arrays["images"].shape[1:] == (64, 96, 3) and arrays["images"].dtype == np.uint8
    # every skill execution ends in exactly one 'done' sample
    assert int(arrays["done"].sum()) == 2 + 2 + demos.stats["nudge_kept"]
    # a pick's grasp primitive closes the gripper without moving; its first moves above the block
    pick = [i for i in range(len(demos)) if demos.kind[i] == "pick"]
    grips = [arrays["labels"][i, 0, 5] for i in pick]
    assert -1.0 in grips and 1.0 in grips
    # a correction phrasing's label is the scripted move_ee: "left" moves +y
    for i in range(len(demos)):
        if demos.kind[i] == "nudge" and arrays["done"][i] == 0 and "left" in demos.texts[i]:
            assert arrays["labels"][i, 0, 1] > 0.1  # dm
            break


def test_collection_is_deterministic(demos: Demonstrations) -> None:
    again = collect(CollectConfig(episodes=2, engines=("mujoco",), seed=3, nudges=2))
    assert again.texts == demos.texts
    np.testing.assert_allclose(again.arrays()["labels"], demos.arrays()["labels"], atol=1e-6)


def test_demonstrations_file_round_trip(demos: Demonstrations, tmp_path: Path) -> None:
    path = demos.save(tmp_path / "demos.npz")
    again = Demonstrations.load(path)
    assert again.texts == demos.texts and again.kind == demos.kind
    assert again.stats == demos.stats
    for key, value in demos.arrays().items():
        np.testing.assert_array_equal(again.arrays()[key], value)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a readable demonstrations file"):
        Demonstrations.load(tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="not a readable demonstrations file"):
        Demonstrations.load(tmp_path / "missing.npz")


def test_relabelled_first_steps_aim_at_the_named_object(demos: Demonstrations) -> None:
    """Same image, another block named: the label is the scripted pick's aim at that block."""
    arrays = demos.arrays()
    first = [i for i in range(len(demos)) if demos.kind[i] == "pick"][:3]
    images = [arrays["images"][i] for i in first]
    assert all(np.array_equal(images[0], im) for im in images)  # one observation, three texts
    assert len({demos.texts[i] for i in first}) == 3
    targets = {tuple(np.round(arrays["labels"][i, 0, :2], 2)) for i in first}
    assert len(targets) == 3  # three different blocks, three different motions
    keypoints = {tuple(np.round(arrays["keypoints"][i], 2)) for i in first}
    assert len(keypoints) == 3


def test_training_lowers_the_loss_and_is_seeded(demos: Demonstrations) -> None:
    cfg = TrainConfig(epochs=8, batch_size=8, val_fraction=0.5, lr=3e-3, seed=1, threads=1)
    policy, history = train(demos, cfg, TINY)
    assert history.train_samples > 0 and history.val_samples > 0
    assert history.train_loss[-1] < history.train_loss[0]
    again, _ = train(demos, cfg, TINY)
    assert again.fingerprint() == policy.fingerprint()
    other, _ = train(demos, cfg.model_copy(update={"seed": 2, "epochs": 1}), TINY)
    assert other.fingerprint() != policy.fingerprint()


def test_held_out_seeds_are_never_collected() -> None:
    with pytest.raises(ConfigError, match="held-out"):
        CollectConfig(episodes=1, seed=HELD_OUT_SEED_BASE // 100_000).layout_seed(0)


def test_checkpoint_round_trip(tiny: Path, demos: Demonstrations) -> None:
    policy = LowLevelPolicy.load(tiny)
    again = LowLevelPolicy.load(policy.save(tiny.with_name("again.pt")))
    assert again.fingerprint() == policy.fingerprint()
    assert again.config == TINY
    assert set(demos.texts) <= set(again.embeddings)  # trained phrasings need no MiniLM at run
    image, proprio = demos.images[0], demos.proprio[0]
    a, b = policy.act(image, proprio, demos.texts[0]), again.act(image, proprio, demos.texts[0])
    np.testing.assert_array_equal(a.delta_m, b.delta_m)
    assert (a.gripper_closed, a.done) == (b.gripper_closed, b.done)


@pytest.mark.parametrize(
    "content",
    [None, b"", b"not a checkpoint at all", "dir", "other-format"],
    ids=["missing", "empty", "garbage", "directory", "other-format"],
)
def test_bad_checkpoint_is_a_clear_error(tmp_path: Path, content: object) -> None:
    import torch

    path = tmp_path / "ll.pt"
    if content == "dir":
        path.mkdir()
    elif content == "other-format":
        torch.save({"format": "something-else", "state": {}}, path)
    elif content is not None:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="checkpoint") as info:
        LowLevelPolicy.load(path)
    assert "train ll" in str(info.value) or "scripted" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_truncated_checkpoint_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(tiny.read_bytes()[: tiny.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        LowLevelPolicy.load(broken)


def test_low_level_spec() -> None:
    assert parse_low_level("scripted") == ("scripted", None)
    assert parse_low_level("learned:runs/ll.pt") == ("learned", Path("runs/ll.pt"))
    for bad in ("", "learned:", "learnt:x.pt", "neural"):
        with pytest.raises(ConfigError, match="--low-level"):
            parse_low_level(bad)


def _api(seed: int = 0):
    from corrigible.policies.robot_api import RobotAPI
    from corrigible.sim_envs.tabletop_env import TabletopEnv

    env = TabletopEnv("mujoco", obs_mode="state")
    env.reset(seed=seed)
    return env, RobotAPI(env, perception="privileged")


def test_plug_in_routes_pick_through_the_policy(tiny: Path) -> None:
    env, api = _api()
    try:
        scripted = api.skills
        learned = install_low_level(api, f"learned:{tiny}")
        assert isinstance(learned, LearnedSkillLibrary) and api.skills is learned
        assert learned.params is scripted.params  # corrections reach both
        block = next(o.name for o in env.scene.objects if o.kind == "block")
        try:
            api.pick(block)  # the program's pick, through the middleware chain
        except Exception as exc:  # a tiny policy may fail the pick; it must have run it
            assert "pick failed" in str(exc)
        kinds = [e["kind"] for e in env.trace.events]
        assert "low_level.installed" in kinds and "low_level.step" in kinds
        skill = [e for e in env.trace.events if e["kind"] == "skill"][-1]
        assert skill["args"]["low_level"] == "learned"
        assert install_low_level(api, "scripted") is scripted and api.skills is scripted
    finally:
        env.close()


def _steer(policy: LowLevelPolicy, delta_m: tuple[float, float, float]) -> None:
    """Makes the real network ask for one fixed primitive: a move of `delta_m`, gripper open."""
    import torch

    from corrigible.policies.learned.low_level.low_level import POS_SCALE

    last = policy.net.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[:3] = torch.tensor(delta_m) * POS_SCALE
        last.bias[3] = 1.0  # cos(4 dyaw): no turn
        last.bias[5] = -5.0  # gripper stays open
        last.bias[-1] = -5.0  # not done


def test_an_action_outside_the_workspace_is_refused(tiny: Path) -> None:
    env, api = _api()
    try:
        learned = install_low_level(api, f"learned:{tiny}")
        _steer(learned.policy, (2.0, 0.0, 0.0))  # 2 m forward: off the table
        block = next(o.name for o in env.scene.objects if o.kind == "block")
        before = env.arm.ee_pose().pos.copy()
        with pytest.raises(SafetyError, match="outside the safety envelope"):
            learned.pick(block)
        np.testing.assert_allclose(env.arm.ee_pose().pos, before, atol=2e-3)  # no motion
    finally:
        env.close()


def test_a_height_below_the_table_is_clipped_as_scripted(tiny: Path) -> None:
    env, api = _api()
    try:
        learned = install_low_level(api, f"learned:{tiny}")
        learned.max_steps = 1
        _steer(learned.policy, (0.0, 0.0, -1.0))  # a metre down, through the table
        block = next(o.name for o in env.scene.objects if o.kind == "block")
        result = learned.pick(block)
        assert not result.success
        moves = [e for e in env.trace.events if e["kind"] == "arm.move_to"]
        z_low = env.arm.envelope.config.z_range[0]
        assert moves and moves[-1]["applied"][2] == pytest.approx(z_low)
    finally:
        env.close()


def test_kinds_it_was_not_trained_on_stay_scripted(tiny: Path) -> None:
    env, api = _api()
    try:
        learned = install_low_level(api, f"learned:{tiny}")
        learned.env.trace.emit("test.mark")
        with pytest.raises(Exception, match="(?i)closed|open it"):
            learned.place(next(o.name for o in env.scene.objects if o.kind == "block"), "drawer")
        fallbacks = [e for e in env.trace.events if e["kind"] == "low_level.fallback"]
        assert fallbacks and fallbacks[-1]["skill"] == "place"
    finally:
        env.close()


def test_a_session_program_runs_the_learned_pick(tiny: Path) -> None:
    """A planned program's `pick(...)`, run in the sandbox, reaches the learned policy."""
    from corrigible.session import Session, SessionConfig

    with Session(SessionConfig(engine="mujoco", seed=0, perception="privileged")) as session:
        session.reset(mention=["pick up the red block"])
        install_low_level(session, f"learned:{tiny}")
        session.run("pick up the red block")
        events = session.env.trace.events
        steps = [e for e in events if e["kind"] == "low_level.step"]
        assert steps and steps[0]["instruction"] == "pick up the red block"
        skills = [e for e in events if e["kind"] == "skill" and e["skill"] == "pick"]
        assert skills and skills[-1]["args"]["low_level"] == "learned"


def test_install_needs_a_built_session(tiny: Path) -> None:
    from corrigible.session import Session, SessionConfig

    with Session(SessionConfig(engine="mujoco")) as session:
        with pytest.raises(ConfigError, match="reset"):
            install_low_level(session, f"learned:{tiny}")


def test_cli_refuses_a_missing_checkpoint(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from corrigible.launch.cli import build_app

    result = CliRunner().invoke(
        build_app(), ["train", "ll", "--eval-only", str(tmp_path / "none.pt"), "--layouts", "1"]
    )
    assert result.exit_code == 2
    assert "no low-level checkpoint" in result.output


@pytest.mark.slow
def test_cli_trains_and_evaluates(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from corrigible.launch.cli import build_app

    out = tmp_path / "ll.pt"
    args = ["train", "ll", "--episodes", "3", "--epochs", "2", "--out", str(out)]
    args += ["--demos", str(tmp_path / "demos.npz"), "--seed", "4"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".png").is_file()
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["collect_wall_s"] > 0 and summary["train_wall_s"] > 0
    assert (tmp_path / "demos.npz").is_file()
    # the same seed on the stored demonstrations gives the same weights
    again = CliRunner().invoke(
        build_app(),
        [
            *args[:-4],
            "--out",
            str(tmp_path / "b.pt"),
            "--demos",
            str(tmp_path / "demos.npz"),
            "--seed",
            "4",
        ],
    )
    assert again.exit_code == 0, again.output
    assert LowLevelPolicy.load(tmp_path / "b.pt").fingerprint() == summary["fingerprint"]
    result = CliRunner().invoke(
        build_app(), ["train", "ll", "--eval-only", str(out), "--layouts", "1", "--sim", "mujoco"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    pick = report["engines"]["mujoco"]["pick"]
    assert pick["attempts"] == 1 and pick["scripted"] == 1.0
