"""A real MuJoCo session with a typed mid-run correction, recorded as a LeRobot v3.0 dataset.

The recorded dataset is checked against the session's own trace (the arm's motion targets,
grasp and release times, skill spans, the correction event) and read back three ways:
- `LeRobotDataset` itself (lerobot 0.4.4, in a child process), when `lerobot` and torchvision
  import: torchvision's only PyPI build for torch 2.13 is a CUDA build whose compiled ops do not
  load on the CPU torch; the child declares the two operator schemas its import needs (the
  dataset loader uses only `transforms.ToTensor`), and the test skips, saying why, where either
  package is missing;
- the load path `LeRobotDataset` uses, rebuilt from its documented pieces: Hugging Face
  `datasets.Dataset.from_parquet` cast to the features of `meta/info.json`, and the tasks table
  read with pandas and looked up by `.iloc[task_index].name` (an independent reader);
- corrigible's own reader, `load_episodes`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from corrigible.errors import ConfigError, CorruptStoreError
from corrigible.policies.learned.recording import (
    ACTION_NAMES,
    STATE_NAMES,
    DatasetWriter,
    RecordedEpisode,
    RecordingConfig,
    load_episodes,
    read_info,
    record_episode,
    skill_phrase,
)

INSTRUCTION = "put the red block in the blue bowl"
EXPECT = "in(red block, blue bowl)"
CORRECTION = ("a bit higher", 1.5)  # typed while the arm descends towards the block


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real episode (MuJoCo, seed 0) with a mid-run correction, written as a dataset."""
    from corrigible import Session, SessionConfig

    config = SessionConfig(seed=0, interactive=True, correction_timeout_s=1.0, episode="rec-0")
    with Session(config) as session:
        episode, result = record_episode(
            session, INSTRUCTION, expect=EXPECT, corrections_at=[CORRECTION]
        )
        trace = list(session.env.trace.events)  # type: ignore[union-attr]
    root = tmp_path_factory.mktemp("datasets") / "put-red"
    writer = DatasetWriter(root)
    writer.add(episode)
    writer.write()
    return {"episode": episode, "result": result, "trace": trace, "root": root}


def _rel(event: dict[str, Any], episode: RecordedEpisode) -> float:
    return float(event["sim_time_s"]) - episode.start_sim_time_s


def test_the_episode_matches_the_sessions_trace(recorded: dict[str, Any]) -> None:
    ep: RecordedEpisode = recorded["episode"]
    trace, result = recorded["trace"], recorded["result"]
    assert result.expect_holds, result.expect_details
    assert ep.success and ep.success_judged_by == "expect"
    fps = ep.fps
    times = np.asarray(ep.sim_time_s)
    # one frame per 1/fps s of simulated time from attach to the end of the run, none missed
    np.testing.assert_allclose(times, ep.timestamps(), atol=1e-6)
    assert ep.length == round(result.sim_s * fps) + 1  # frame 0 at the start, one per 1/fps
    actions = np.stack(ep.action)
    # every motion's end-effector target (after the envelope) is the action at its end
    moves = [e for e in trace if e["kind"] in ("arm.move_to", "arm.move_by")]
    assert len(moves) >= 6
    for move in moves:
        i = int(np.searchsorted(times, _rel(move, ep) + 1e-6)) - 1
        target = np.asarray(move["final_pos"]) if move["kind"] == "arm.move_by" else None
        if move["kind"] == "arm.move_to":
            target = np.asarray(move["applied"])
            np.testing.assert_allclose(actions[i, :3], target, atol=2e-4)
        else:  # a relative move's final command is where it started plus the applied delta
            assert np.linalg.norm(actions[i, :3] - target) < 0.01
    # the gripper command closes for the grasp and opens for the release
    grasp = next(e for e in trace if e["kind"] == "arm.grasp")
    release = next(e for e in trace if e["kind"] == "arm.release")
    closed = actions[:, ACTION_NAMES.index("gripper.close")] > 0.5
    assert closed[(times > _rel(grasp, ep)) & (times < _rel(release, ep) - 0.4)].all()
    assert not closed[times > _rel(release, ep)].any()
    assert not closed[times < _rel(grasp, ep) - 0.4].any()
    # measured state: the fingers close on the block (not fully) while it is held
    width = np.stack(ep.state)[:, STATE_NAMES.index("gripper.width_m")]
    held = (times > _rel(grasp, ep)) & (times < _rel(release, ep) - 0.4)
    assert 0.01 < float(np.median(width[held])) < 0.07
    assert float(width[0]) > 0.07


def test_language_and_correction_marks_match_the_trace(recorded: dict[str, Any]) -> None:
    ep: RecordedEpisode = recorded["episode"]
    trace = recorded["trace"]
    times = np.asarray(ep.sim_time_s)
    spans = [e for e in trace if e["kind"] == "skill"]
    assert [e["skill"] for e in spans] == ["pick", "place", "go_home"]
    phrases = set(ep.skill_phrase)
    assert {"pick up the red block", "place the red block in the blue bowl", "go back home"} <= (
        phrases
    )
    assert ep.instruction == INSTRUCTION
    # frames of the grasp carry the pick's phrase, frames after the release the place's / home's
    grasp = _rel(next(e for e in trace if e["kind"] == "arm.grasp"), ep)
    i = int(np.searchsorted(times, grasp))
    assert ep.skill_phrase[i - 1] == "pick up the red block"
    home = [i for i, p in enumerate(ep.skill_phrase) if p == "go back home"]
    assert home == list(range(home[0], home[-1] + 1))  # one contiguous span
    # after it only the session's final settle (0.3 s, no skill): labelled with the instruction
    assert times[-1] - times[home[-1]] <= 0.3 + 1e-6
    assert set(ep.skill_phrase[home[-1] + 1 :]) <= {INSTRUCTION}
    # the correction: the one the trace shows, its route, its frame, its window
    (taken,) = [e for e in trace if e["kind"] == "correction"]
    (applied,) = [e for e in trace if e["kind"] == "correction.applied"]
    (mark,) = ep.corrections
    assert mark.text == taken["text"] == CORRECTION[0]
    assert mark.label == applied["label"] == "skill" and mark.status == "applied"
    assert mark.skill == "pick" and mark.obj == "red block"
    assert CORRECTION[1] - 1e-6 <= mark.time_s < CORRECTION[1] + 0.5  # taken within a tick or so
    assert times[mark.frame_index] >= mark.time_s - 1e-6
    assert times[mark.frame_index - 1] < mark.time_s
    assert ep.correction_index[mark.frame_index] == 0
    assert sum(i >= 0 for i in ep.correction_index) == 1
    window = RecordingConfig().precede_window_s
    flagged = np.asarray(ep.precedes_correction)
    expected = (times < mark.time_s) & (times >= mark.time_s - window)
    assert flagged.any() and (flagged == expected).all()
    # the correction's words are the language while the corrected call is redone, not after
    assert ep.correction_text[mark.frame_index] == CORRECTION[0]
    assert ep.correction_text[-1] == ""
    assert all(text == "" for text in ep.correction_text[: mark.frame_index])


# Runs in a child process: lerobot and torchvision stay out of the test process, and the
# operator schemas declared below (needed only by torchvision's CUDA build) cannot leak into it.
_LEROBOT_CHECK = r"""
import json, sys
import numpy as np
import torch
try:
    import torchvision  # noqa: F401
except ImportError as exc:
    print(f"{type(exc).__name__}: {exc} (lerobot's dataset loader imports torchvision)")
    sys.exit(3)
except RuntimeError as exc:  # the PyPI wheel for torch 2.13 is a CUDA build: its ops do not load
    if "torchvision::" not in str(exc):
        raise
    for name in list(sys.modules):
        if name.startswith("torchvision"):
            del sys.modules[name]
    for op in ("nms", "qnms"):  # the two schemas its import-time fake registrations look up
        torch.library.define(
            "torchvision::" + op, "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
        )
try:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(3)
root = sys.argv[1]
ds = LeRobotDataset("corrigible/test-recording", root=root)
frames = []
for i in range(len(ds)):
    item = ds[i]
    image = (item["observation.images.front"].numpy() * 255).round().astype(np.uint8)
    frames.append({
        "task": item["task"],
        "subtask": item["subtask"],
        "action": item["action"].tolist(),
        "state": item["observation.state"].tolist(),
        "image_sum": int(image.astype(np.int64).sum()),
        "image_shape": list(image.shape),
        "timestamp": float(item["timestamp"]),
        "precedes": bool(item["correction.precedes"]),
        "correction": item["language.correction"],
    })
chunked = LeRobotDataset(
    "corrigible/test-recording", root=root, delta_timestamps={"action": [0.0, 0.1, 0.2]}
)
last = chunked[len(chunked) - 2]
print(json.dumps({
    "episodes": ds.num_episodes, "frames": ds.num_frames, "fps": ds.fps, "items": frames,
    "chunk_shape": list(last["action"].shape), "chunk_pad": last["action_is_pad"].tolist(),
}))
"""


def test_lerobot_dataset_loads_it(recorded: dict[str, Any], tmp_path: Path) -> None:
    """LeRobot's own `LeRobotDataset` reads the dataset; frames, actions, language match.

    Skips, saying why, where `lerobot` or torchvision is not importable.
    `CORRIGIBLE_LEROBOT_PYTHONPATH` adds folders to the child's path (e.g. an unpacked
    torchvision wheel, kept out of the environment where its CUDA build would break imports).
    """
    import os
    import subprocess
    import sys

    ep: RecordedEpisode = recorded["episode"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf-cache"))
    # install.sh --test unpacks the torchvision wheel here (kept out of the environment)
    unpacked = Path(__file__).resolve().parents[3] / ".cache" / "lerobot-torchvision"
    extra = os.environ.get("CORRIGIBLE_LEROBOT_PYTHONPATH") or (
        str(unpacked) if unpacked.is_dir() else None
    )
    if extra:
        env["PYTHONPATH"] = os.pathsep.join([extra, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", _LEROBOT_CHECK, str(recorded["root"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode == 3:
        pytest.skip(f"lerobot's LeRobotDataset does not import here: {done.stdout.strip()}")
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert (got["episodes"], got["frames"], got["fps"]) == (1, ep.length, ep.fps)
    assert len(got["items"]) == ep.length
    for i, item in enumerate(got["items"]):
        assert item["task"] == INSTRUCTION
        assert item["subtask"] == ep.skill_phrase[i]
        np.testing.assert_array_equal(np.asarray(item["action"], np.float32), ep.action[i])
        np.testing.assert_array_equal(np.asarray(item["state"], np.float32), ep.state[i])
        assert item["image_shape"] == [3, 96, 128]
        assert item["image_sum"] == int(ep.images[i].astype(np.int64).sum())
        assert item["timestamp"] == pytest.approx(i / ep.fps, abs=1e-6)
        assert item["precedes"] == ep.precedes_correction[i]
        assert item["correction"] == ep.correction_text[i]
    # an ACT-style action chunk past the episode's end is padded, as LeRobot's policies expect
    assert got["chunk_shape"] == [3, len(ACTION_NAMES)] and got["chunk_pad"] == [False, False, True]


def test_it_loads_along_lerobots_documented_load_path(recorded: dict[str, Any]) -> None:
    """Independent reader: HF `datasets` + pandas, as `LeRobotDataset.load_hf_dataset` does."""
    datasets = pytest.importorskip("datasets")
    pd = pytest.importorskip("pandas")
    ep: RecordedEpisode = recorded["episode"]
    root: Path = recorded["root"]
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == ep.fps
    assert info["total_frames"] == ep.length and info["total_episodes"] == 1
    features = {}  # LeRobot's documented feature -> datasets mapping (utils.py, v3.0)
    for key, ft in info["features"].items():
        shape = tuple(ft["shape"])
        if ft["dtype"] == "image":
            features[key] = datasets.Image()
        elif shape == (1,):
            features[key] = datasets.Value(ft["dtype"])
        else:
            features[key] = datasets.Sequence(datasets.Value(ft["dtype"]), length=shape[0])
    paths = sorted(str(p) for p in (root / "data").glob("*/*.parquet"))
    hf = datasets.Dataset.from_parquet(
        paths, features=datasets.Features(features), cache_dir=str(root.parent / "hf-cache")
    )
    assert len(hf) == ep.length
    tasks = pd.read_parquet(root / "meta" / "tasks.parquet")
    subtasks = pd.read_parquet(root / "meta" / "subtasks.parquet")
    episodes = datasets.Dataset.from_parquet(
        sorted(str(p) for p in (root / "meta" / "episodes").glob("*/*.parquet")),
        cache_dir=str(root.parent / "hf-cache"),
    )
    row = episodes[0]
    assert (row["dataset_from_index"], row["dataset_to_index"], row["length"]) == (
        0,
        ep.length,
        ep.length,
    )
    assert row["tasks"] == [INSTRUCTION] and row["success"] is True
    assert [c["text"] for c in json.loads(row["corrections"])] == [CORRECTION[0]]
    for i in range(ep.length):
        item = hf[i]
        assert tasks.iloc[item["task_index"]].name == INSTRUCTION
        assert subtasks.iloc[item["subtask_index"]].name == ep.skill_phrase[i]
        assert item["frame_index"] == i and item["index"] == i and item["episode_index"] == 0
        assert item["timestamp"] == pytest.approx(i / ep.fps, abs=1e-6)
        np.testing.assert_array_equal(np.asarray(item["action"], np.float32), ep.action[i])
        np.testing.assert_array_equal(
            np.asarray(item["observation.state"], np.float32), ep.state[i]
        )
        np.testing.assert_array_equal(np.asarray(item["observation.images.front"]), ep.images[i])
        assert item["correction.precedes"] == ep.precedes_correction[i]
        assert item["language.correction"] == ep.correction_text[i]
        assert item["next.done"] == (i == ep.length - 1)
    stats = json.loads((root / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(
        stats["action"]["mean"], np.stack(ep.action).astype(np.float64).mean(0), atol=1e-6
    )
    assert np.asarray(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)


def test_load_episodes_reads_back_what_was_recorded(recorded: dict[str, Any]) -> None:
    ep: RecordedEpisode = recorded["episode"]
    (back,) = load_episodes(recorded["root"])
    assert len(back) == ep.length and back.task == INSTRUCTION and back.success
    np.testing.assert_array_equal(back.frames, np.stack(ep.images))
    np.testing.assert_array_equal(back.state, np.stack(ep.state))
    np.testing.assert_array_equal(back.action, np.stack(ep.action))
    assert back.language == ep.skill_phrase and back.skill_call == ep.skill_call
    assert back.correction_text == ep.correction_text
    assert back.precedes_correction.tolist() == ep.precedes_correction
    assert back.corrections == ep.corrections
    assert back.state_names == list(STATE_NAMES) and back.action_names == list(ACTION_NAMES)
    summary = read_info(recorded["root"])
    assert (summary.episodes, summary.frames, summary.corrections) == (1, ep.length, 1)
    assert summary.corrections_by_route == {"skill": 1}


def test_a_failed_write_leaves_nothing_and_a_full_folder_is_refused(
    recorded: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    ep: RecordedEpisode = recorded["episode"]
    with pytest.raises(ConfigError, match="not empty"):
        DatasetWriter(recorded["root"])
    root = tmp_path / "out"
    writer = DatasetWriter(root)
    writer.add(ep)
    calls = {"n": 0}
    real = pq.write_table

    def fail_second(*args: Any, **kwargs: Any) -> None:  # a disk that fills up mid-write
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", fail_second)
    with pytest.raises(OSError, match="No space"):
        writer.write()
    assert not root.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(pq, "write_table", real)
    writer.write()
    assert read_info(root).frames == ep.length


def test_a_damaged_dataset_is_reported_not_misread(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(recorded["root"], copy)
    info = json.loads((copy / "meta" / "info.json").read_text())
    info["total_frames"] += 1
    (copy / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(CorruptStoreError, match="info.json says"):
        load_episodes(copy)
    data = copy / "data" / "chunk-000" / "file-000.parquet"
    data.write_bytes(data.read_bytes()[:200])
    with pytest.raises(CorruptStoreError, match="damaged"):
        read_info(copy)
    (copy / "meta" / "info.json").write_text("{not json")
    with pytest.raises(CorruptStoreError, match="not JSON"):
        read_info(copy)
    with pytest.raises(ConfigError, match="no dataset folder"):
        read_info(tmp_path / "missing")


@pytest.mark.parametrize(
    ("skill", "args", "phrase"),
    [
        ("pick", ["red block"], "pick up the red block"),
        ("put_first_on_second", ["red block", "blue bowl"], "put the red block in the blue bowl"),
        (
            "place",
            {"obj": "red block", "target": "green block"},
            "place the red block on the green block",
        ),
        ("open_drawer", ["drawer"], "open the drawer"),
        ("move_ee", [0.0, 0.05, 0.0], "move left"),
        ("move_ee", [0.0, 0.0, -0.03], "move lower"),
        ("go_home", [], "go back home"),
    ],
    ids=["pick", "put", "place-on", "drawer", "left", "lower", "home"],
)
def test_skill_calls_become_short_phrases(skill: str, args: Any, phrase: str) -> None:
    assert skill_phrase(skill, args) == phrase


def test_a_frame_rate_off_the_control_clock_is_refused() -> None:
    with pytest.raises(ConfigError, match="divide the 20 Hz"):
        RecordingConfig(fps=3)
    assert RecordingConfig(fps=4).ticks_per_frame == 5
