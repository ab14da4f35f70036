"""The learned high level (Yell At Your Robot's instructor) on the pack-into-the-drawer family.

Real physics (MuJoCo), the real MiniLM and real torch training throughout: a scripted episode is
recorded once per module and the tests train, correct and fine-tune on it at tiny scale.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from corrigible.errors import CheckpointError, ConfigError, UnknownNameError
from corrigible.policies.learned.high_level.config_high_level import InstructorConfig, TrainConfig
from corrigible.policies.learned.high_level.episodes import (
    HLDataset,
    SimulatedInstructor,
    run_episode,
)
from corrigible.policies.learned.high_level.evaluation import record_demos
from corrigible.policies.learned.high_level.high_level import (
    HighLevelPolicy,
    TextCache,
    load_checkpoint,
)
from corrigible.policies.learned.high_level.task_family import (
    CANDIDATES,
    DONE,
    ORDERS,
    PUT,
    SEEN_ORDERS,
    PackEpisode,
    PackTask,
    make_env,
    sample_task,
)
from corrigible.policies.learned.high_level.training import train_instructor

CFG = InstructorConfig()


@pytest.fixture(scope="module")
def text(embedder: object) -> TextCache:
    """One MiniLM cache for the module, over the session's loaded MiniLM (conftest)."""
    return TextCache(embedder)


@pytest.fixture(scope="module")
def demos() -> HLDataset:
    """One scripted-planner episode in MuJoCo, recorded with its frames."""
    return record_demos([1000], CFG)


def _train(data: HLDataset, out: Path, text: TextCache, **kw: object) -> object:
    cfg = TrainConfig(**{"epochs": 15, "val_fraction": 0.0, "seed": 0, **kw})
    return train_instructor(data, candidates=CANDIDATES, model_cfg=CFG, cfg=cfg, out=out, text=text)


def test_task_family_is_seeded_and_judged_by_the_simulator() -> None:
    assert sample_task(5) == sample_task(5)
    assert {sample_task(s, SEEN_ORDERS).order for s in range(40)} == set(SEEN_ORDERS)
    assert {sample_task(s).order for s in range(60)} == set(ORDERS)
    task = PackTask(order=("blue", "red", "green"))
    assert task.text == "pack the blue, red and green blocks into the drawer in that order"
    assert task.scripted_plan()[:3] == ["open the drawer", "pick up the blue block", PUT]
    with pytest.raises(ConfigError, match="each of"):
        PackTask(order=("red", "red", "blue"))
    env = make_env()
    try:
        ep = PackEpisode(env, task, seed=3, perception="privileged")
        ok, details = ep.judge()  # nothing packed yet: the simulator says no
        assert not ok and any("closed(drawer)" in d for d in details)
        assert ep.expert_instruction() == "open the drawer"
        assert ep.frame().shape == (CFG.frame_height, CFG.frame_width, 3)
        with pytest.raises(UnknownNameError, match="Did you mean .open the drawer."):
            ep.execute("open the drawr")
        out = ep.execute("put it in the drawer")  # holding nothing: fails, no motion
        assert not out.success
    finally:
        env.close()


def test_embeddings_do_not_depend_on_what_was_embedded_before(embedder: object) -> None:
    """Bitwise equal rows whatever the call history (a batch's padding shifts the last bits)."""
    task = PackTask(order=("red", "green", "blue")).text
    first, second = TextCache(embedder), TextCache(embedder)
    together = first([task, "open the drawer", "close the drawer again"])
    alone = np.concatenate([second([t]) for t in ("close the drawer again", "open the drawer")])
    np.testing.assert_array_equal(together[1:], alone[::-1])


def test_every_correction_phrasing_is_understood(text: TextCache) -> None:
    """The person's words map back (MiniLM cosine) to the step meant, in every phrasing."""
    person = SimulatedInstructor(text, seed=0)
    for expert in CANDIDATES:
        if expert == DONE:
            continue
        said = {f"{expert} again", f"no, you are not done: {expert}"}
        said |= {p.format(e=expert) for p in person._PHRASES}
        text(sorted(said))  # one MiniLM batch; interpret() then reads the cache
        for words in said:
            assert person.interpret(words) == expert, words


def test_base_training_lowers_the_loss_and_is_deterministic(
    demos: HLDataset, text: TextCache, tmp_path: Path
) -> None:
    assert len(demos) == 9 and {s.source for s in demos.manifest.samples} == {"demo"}
    assert [s.label for s in demos.manifest.samples] == sample_task(
        1000, SEEN_ORDERS
    ).scripted_plan()
    a = _train(demos, tmp_path / "a.pt", text)
    assert a.train_loss[-1] < 0.5 * a.train_loss[0]
    b = _train(demos, tmp_path / "b.pt", text)
    _train(demos, tmp_path / "c.pt", text, seed=1)
    wa, wb, wc = (load_checkpoint(tmp_path / f"{n}.pt")[0].state_dict() for n in "abc")
    assert a.train_loss == b.train_loss
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_fine_tuning_validates_on_corrected_episodes_only(demos: HLDataset) -> None:
    """With `val_on="corrected"` no demonstration is held out: all of them train."""
    from corrigible.policies.learned.high_level.training import split_episodes

    def renamed(prefix: str, source: str) -> HLDataset:
        samples = [
            s.model_copy(update={"episode": f"{prefix}-{k}", "source": source})
            for k in range(4)
            for s in demos.manifest.samples
        ]
        manifest = demos.manifest.model_copy(update={"samples": samples})
        return HLDataset(manifest, np.concatenate([demos.frames] * 4))

    mixed = HLDataset.concat([renamed("demo", "demo"), renamed("corrected", "policy")])
    train, val = split_episodes(mixed, 0.5, 0, only_corrected=True)
    samples = mixed.manifest.samples
    assert {samples[i].episode for i in val} and all(samples[i].source != "demo" for i in val)
    assert all(
        s.episode in {samples[i].episode for i in train} for s in samples if s.source == "demo"
    )
    _, val_all = split_episodes(mixed, 0.5, 0)
    assert len({samples[i].episode for i in val_all}) == 4


def test_checkpoint_round_trip(demos: HLDataset, text: TextCache, tmp_path: Path) -> None:
    _train(demos, tmp_path / "hl.pt", text, epochs=3)
    net, candidates, meta = load_checkpoint(tmp_path / "hl.pt")
    assert candidates == list(CANDIDATES) and meta["seed"] == 0
    first = HighLevelPolicy(net, candidates, text)
    again = HighLevelPolicy.load(tmp_path / "hl.pt", text)
    obs = demos.observation(4)
    np.testing.assert_array_equal(first.scores(obs), again.scores(obs))
    assert again(obs) in CANDIDATES


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "no high-level checkpoint"),
        (b"not a torch file", "not a readable torch checkpoint"),
        ({"format": "something-else"}, "not a high-level checkpoint"),
        ({"format": "corrigible-high-level", "version": 99}, "version 99"),
        (
            {
                "format": "corrigible-high-level",
                "version": 1,
                "config": {},
                "candidates": ["x"],
                "state_dict": {"w": torch.zeros(1)},
            },
            "damaged",
        ),
    ],
    ids=["missing", "garbage", "other-format", "other-version", "wrong-weights"],
)
def test_bad_checkpoint_gives_a_clear_error(
    content: object, match: str, text: TextCache, tmp_path: Path
) -> None:
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=match):
        HighLevelPolicy.load(path, text)


def test_a_correction_replaces_the_output_and_fine_tuning_learns_it(
    demos: HLDataset, text: TextCache, tmp_path: Path
) -> None:
    _train(demos, tmp_path / "base.pt", text)
    base = HighLevelPolicy.load(tmp_path / "base.pt", text)
    task = PackTask(order=("green", "red", "blue"))  # an order the demos never showed
    env = make_env()
    try:
        rec = run_episode(
            env, task, 2000, base, cfg=CFG, instructor=SimulatedInstructor(text), max_steps=12
        )
    finally:
        env.close()
    assert rec.corrections, "the tiny base policy should need at least one correction"
    by_step = {s.step: s for s in rec.samples}
    for fix in rec.corrections:
        sample = by_step[fix.step]
        assert sample.source == "correction" and sample.label == fix.instruction
        assert sample.proposed == fix.proposed != fix.instruction
        assert sample.correction_words == fix.words
        if fix.instruction != DONE:  # what ran is the correction, not the high level's output
            ran = [o.instruction for o in rec.outcomes]
            assert ran[fix.step] == fix.instruction
    # Every correction of this run leads to success: the person fixes each wrong step first.
    assert rec.success, rec.details
    corrected = HLDataset.from_records([rec], CFG)
    path = tmp_path / "corrections.npz"
    corrected.save(path)
    loaded = HLDataset.load(path)
    assert loaded.manifest.samples == corrected.manifest.samples
    np.testing.assert_array_equal(loaded.frames, corrected.frames)
    mixed = HLDataset.concat([demos, loaded])
    report = train_instructor(
        mixed,
        candidates=base.candidates,
        model_cfg=base.cfg,
        cfg=TrainConfig(epochs=10, lr=3e-4, val_fraction=0.0, correction_repeat=4),
        out=tmp_path / "ft.pt",
        init=base.net,
        text=text,
        plot=tmp_path / "ft.png",
    )
    assert report.n_corrections == len(rec.corrections)
    assert report.train_loss[-1] < report.train_loss[0]
    assert (tmp_path / "ft.png").stat().st_size > 1000
    tuned = HighLevelPolicy.load(tmp_path / "ft.pt", text)
    fixed = [corrected.observation(f.step) for f in rec.corrections]
    before = sum(base(o) == f.instruction for o, f in zip(fixed, rec.corrections, strict=True))
    after = sum(tuned(o) == f.instruction for o, f in zip(fixed, rec.corrections, strict=True))
    assert after > before


def test_bad_dataset_and_options_give_clear_errors(tmp_path: Path) -> None:
    from corrigible.launch.train_hl import TrainHLConfig

    with pytest.raises(ConfigError, match="no high-level dataset"):
        HLDataset.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a high-level dataset"):
        HLDataset.load(tmp_path / "junk.npz")
    with pytest.raises(ConfigError, match="new seeds"):
        TrainHLConfig(eval_seed=1010)  # inside the demos' seeds
    with pytest.raises(ConfigError, match="--sim"):
        TrainHLConfig(sim="bullet")
    with pytest.raises(ConfigError, match="stage"):
        TrainHLConfig(stage="fine")
    with pytest.raises(ConfigError, match="--demos must be >= 1"):
        TrainHLConfig(demos=0)


def test_cli_eval_without_checkpoints_exits_2(tmp_path: Path) -> None:
    from corrigible.launch.cli import build_app

    res = CliRunner().invoke(
        build_app(), ["train", "hl", "--stage", "eval", "--workdir", str(tmp_path / "hl")]
    )
    assert res.exit_code == 2
    assert "no high-level checkpoint" in res.output


@pytest.mark.slow
def test_cli_runs_every_stage_end_to_end(tmp_path: Path) -> None:
    """`corrigible train hl --stage all` at tiny scale: files, JSON lines and figures."""
    from corrigible.launch.cli import build_app

    work = tmp_path / "hl"
    args = ["train", "hl", "--workdir", str(work), "--demos", "3", "--epochs", "10"]
    args += ["--corrected-episodes", "2", "--finetune-epochs", "5", "--eval-episodes", "2"]
    res = CliRunner().invoke(build_app(), args)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [x["stage"] for x in lines] == ["base", "finetune", "eval"]
    for name in ("demos.npz", "base.pt", "base_loss.png", "corrections.npz", "finetuned.pt"):
        assert (work / name).is_file(), name
    summary = json.loads((work / "eval.json").read_text())
    assert summary["eval_episodes"] == 2 and len(summary["after"]["per_episode"]) == 2
    assert lines[1]["corrections"] >= 1


@pytest.mark.slow
def test_pybullet_runs_the_family() -> None:
    """The scripted plan runs in the second engine too, judged by its own state."""
    task = sample_task(1001, SEEN_ORDERS)
    env = make_env("pybullet")
    try:
        ep = PackEpisode(env, task, seed=1001)
        outcomes = [ep.execute(i) for i in task.scripted_plan()]
        assert sum(o.success for o in outcomes) >= 7, [o.message for o in outcomes]
        assert len(ep.blocks_in_drawer()) == 3
    finally:
        env.close()
