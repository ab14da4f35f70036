"""The LeRobot v3.0 dataset layout, written and read with pyarrow alone.

`lerobot` itself pins an older torch than this project's, so it is not a run-time dependency:
this module writes the layout its `LeRobotDataset` reads (the test suite loads our datasets
with it) and reads it back independently:

    meta/info.json                           codebase_version "v3.0", fps, features, paths, totals
    meta/stats.json                          per feature: min, max, mean, std, count
    meta/tasks.parquet                       task (pandas index) -> task_index
    meta/subtasks.parquet                    subtask (pandas index) -> subtask_index
    meta/episodes/chunk-000/file-000.parquet one row per episode: length, tasks, row range
    data/chunk-000/file-000.parquet          one row per frame, images as PNG bytes

Every parquet column is a feature of `info.json` (LeRobot casts the files to its features).
Per-episode facts of corrigible (success, the corrections with their timing and route) are
extra columns of the episodes file, which LeRobot keeps as metadata.

A dataset is written into a temporary sibling folder and renamed into place at the end, so
an interrupted write never leaves a half dataset under the requested name.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import ConfigError, CorruptStoreError, DependencyNotInstalled
from corrigible.policies.learned.recording.config_recording import RecordingConfig
from corrigible.policies.learned.recording.recording import (
    ACTION_NAMES,
    STATE_NAMES,
    CorrectionMark,
    RecordedEpisode,
)

CODEBASE_VERSION = "v3.0"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
IMAGE_KEY_PREFIX = "observation.images."
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's default)
DATA_FILE_SIZE_MB = 100  # LeRobot's default file size; our files stay in one file each


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a declared dependency
        raise DependencyNotInstalled(
            "writing and reading LeRobot datasets needs pyarrow: pip install 'corrigible[learned]'"
        ) from exc
    return pa, pq


def features_for(config: RecordingConfig) -> dict[str, dict[str, Any]]:
    """The `info.json` features of a corrigible dataset (LeRobot's feature dicts)."""
    image_key = IMAGE_KEY_PREFIX + config.camera

    def scalar(dtype: str) -> dict[str, Any]:
        return {"dtype": dtype, "shape": [1], "names": None}

    return {
        image_key: {
            "dtype": "image",
            "shape": [config.image_height, config.image_width, 3],
            "names": ["height", "width", "channels"],
        },
        "observation.state": {
            "dtype": "float32",
            "shape": [len(STATE_NAMES)],
            "names": list(STATE_NAMES),
        },
        "action": {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": list(ACTION_NAMES)},
        "sim_time_s": scalar("float32"),
        "language.skill_call": scalar("string"),
        "language.correction": scalar("string"),
        "correction.index": scalar("int64"),
        "correction.precedes": scalar("bool"),
        "next.done": scalar("bool"),
        "next.success": scalar("bool"),
        "subtask_index": scalar("int64"),
        "timestamp": scalar("float32"),
        "frame_index": scalar("int64"),
        "episode_index": scalar("int64"),
        "index": scalar("int64"),
        "task_index": scalar("int64"),
    }


def _arrow_type(pa: Any, feature: dict[str, Any]) -> Any:
    dtype = feature["dtype"]
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    base = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}.get(dtype)
    if dtype == "string":
        base = pa.string()
    if base is None:
        raise ConfigError(f"unsupported feature dtype {dtype!r}")
    shape = feature["shape"]
    return base if list(shape) == [1] else pa.list_(base, int(shape[0]))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _indexed_table(pa: Any, name: str, values: list[str]) -> Any:
    """A pandas-readable table whose index is the strings `values` (LeRobot's tasks file)."""
    table = pa.table({f"{name}_index": pa.array(range(len(values)), pa.int64()), name: values})
    meta = {
        "index_columns": [name],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": f"{name}_index",
                "field_name": f"{name}_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": name,
                "field_name": name,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


@dataclass
class _Stats:
    """Running min / max / sum / sum of squares per feature (numbers, images per channel)."""

    values: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, key: str, array: np.ndarray) -> None:
        self.values.setdefault(key, []).append(np.asarray(array, dtype=np.float64))

    def result(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, parts in self.values.items():
            data = np.concatenate(parts, axis=0)
            out[key] = {
                "min": data.min(axis=0).tolist(),
                "max": data.max(axis=0).tolist(),
                "mean": data.mean(axis=0).tolist(),
                "std": data.std(axis=0).tolist(),
                "count": [int(data.shape[0])],
            }
        return out


class DatasetWriter:
    """Collects recorded episodes and writes them as one LeRobot v3.0 dataset.

    Args:
        root: the dataset folder to create; it must not exist or be empty.
        config: the recording settings every episode was recorded with.

    Raises:
        ConfigError: `root` is a file, or a folder that is not empty (nothing is overwritten).
    """

    def __init__(self, root: Path, config: RecordingConfig | None = None) -> None:
        self.root = Path(root)
        self.config = config or RecordingConfig()
        check_output_dir(self.root)
        self.features = features_for(self.config)
        self._image_key = IMAGE_KEY_PREFIX + self.config.camera
        self._rows: dict[str, list[Any]] = {key: [] for key in self.features}
        self._episodes: list[dict[str, Any]] = []
        self._tasks: list[str] = []
        self._subtasks: list[str] = []
        self._stats = _Stats()
        self._frames = 0

    def _index_of(self, table: list[str], text: str) -> int:
        if text not in table:
            table.append(text)
        return table.index(text)

    def add(self, episode: RecordedEpisode) -> int:
        """Adds one episode (its images are PNG-encoded now); returns its episode_index.

        Raises:
            ConfigError: the episode's fps or image size differ from the dataset's, or it is empty.
        """
        cfg = self.config
        if episode.fps != cfg.fps:
            raise ConfigError(f"episode recorded at {episode.fps} fps, dataset is {cfg.fps} fps")
        if episode.length == 0:
            raise ConfigError("an episode with no frame cannot be written")
        shape = (cfg.image_height, cfg.image_width, 3)
        if any(image.shape != shape for image in episode.images):
            raise ConfigError(f"episode images must be {shape} (height, width, 3)")
        index = len(self._episodes)
        n, start = episode.length, self._frames
        task = self._index_of(self._tasks, episode.instruction)
        rows = self._rows
        rows[self._image_key].extend({"bytes": _png(im), "path": None} for im in episode.images)
        rows["observation.state"].extend(s.tolist() for s in episode.state)
        rows["action"].extend(a.tolist() for a in episode.action)
        rows["sim_time_s"].extend(float(t) for t in episode.sim_time_s)
        rows["language.skill_call"].extend(episode.skill_call)
        rows["language.correction"].extend(episode.correction_text)
        rows["correction.index"].extend(int(i) for i in episode.correction_index)
        rows["correction.precedes"].extend(bool(p) for p in episode.precedes_correction)
        rows["next.done"].extend(i == n - 1 for i in range(n))
        rows["next.success"].extend(i == n - 1 and episode.success for i in range(n))
        rows["subtask_index"].extend(
            self._index_of(self._subtasks, phrase) for phrase in episode.skill_phrase
        )
        rows["timestamp"].extend(episode.timestamps().tolist())
        rows["frame_index"].extend(range(n))
        rows["episode_index"].extend([index] * n)
        rows["index"].extend(range(start, start + n))
        rows["task_index"].extend([task] * n)
        images = np.stack(episode.images).astype(np.float64) / 255.0  # (n, H, W, 3)
        self._stats.add(self._image_key, images.reshape(n, -1, 3).mean(axis=1))
        self._stats.add("observation.state", np.stack(episode.state))
        self._stats.add("action", np.stack(episode.action))
        for key in ("sim_time_s", "correction.index", "timestamp", "frame_index", "index"):
            self._stats.add(key, np.asarray(rows[key][start:], dtype=np.float64)[:, None])
        for key in ("episode_index", "task_index", "subtask_index"):
            self._stats.add(key, np.asarray(rows[key][start:], dtype=np.float64)[:, None])
        self._episodes.append(
            {
                "episode_index": index,
                "tasks": [episode.instruction],
                "length": n,
                "data/chunk_index": 0,
                "data/file_index": 0,
                "dataset_from_index": start,
                "dataset_to_index": start + n,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                "success": bool(episode.success),
                "success_judged_by": episode.success_judged_by,
                "corrections": json.dumps([c.to_dict() for c in episode.corrections]),
                "correction_count": len(episode.corrections),
                "precede_window_s": float(episode.precede_window_s),
                "start_sim_time_s": float(episode.start_sim_time_s),
                "engine": episode.engine,
                "seed": int(episode.seed),
                "episode_id": episode.episode_id,
            }
        )
        self._frames += n
        return index

    def write(self) -> Path:
        """Writes the dataset: into a temporary sibling, then renamed to `root`.

        Raises:
            ConfigError: nothing was added, or `root` was filled by someone else meanwhile.
        """
        pa, pq = _pa()
        if not self._episodes:
            raise ConfigError("no episode to write; record at least one")
        check_output_dir(self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.", dir=self.root.parent))
        try:
            self._write_into(tmp, pa, pq)
            if self.root.is_dir():
                self.root.rmdir()  # empty (checked above): replaced by the finished dataset
            os.replace(tmp, self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.root

    def _write_into(self, root: Path, pa: Any, pq: Any) -> None:
        columns = {
            key: pa.array(values, type=_arrow_type(pa, self.features[key]))
            for key, values in self._rows.items()
        }
        data = root / DATA_PATH.format(chunk_index=0, file_index=0)
        data.parent.mkdir(parents=True)
        pq.write_table(pa.table(columns), data, compression="snappy")
        episodes = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(self._episodes), episodes)
        pq.write_table(_indexed_table(pa, "task", self._tasks), root / "meta" / "tasks.parquet")
        pq.write_table(
            _indexed_table(pa, "subtask", self._subtasks), root / "meta" / "subtasks.parquet"
        )
        stats = self._stats.result()
        image_stats = stats[self._image_key]
        for name in ("min", "max", "mean", "std"):  # LeRobot keeps image stats as (3, 1, 1)
            image_stats[name] = [[[v]] for v in image_stats[name]]
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.config.robot_type,
            "total_episodes": len(self._episodes),
            "total_frames": self._frames,
            "total_tasks": len(self._tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILE_SIZE_MB,
            "video_files_size_in_mb": 200,
            "fps": self.config.fps,
            "splits": {"train": f"0:{len(self._episodes)}"},
            "data_path": DATA_PATH,
            "video_path": None,
            "features": self.features,
            "corrigible": {
                "image_width": self.config.image_width,
                "image_height": self.config.image_height,
                "precede_window_s": self.config.precede_window_s,
                "total_subtasks": len(self._subtasks),
            },
        }
        (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
        (root / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))


def check_output_dir(root: Path) -> None:
    """Refuses an output that is a file or a folder with anything in it (no data loss).

    Raises:
        ConfigError: naming the path and the fix.
    """
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {root} is a file; give a new folder for the dataset")
    if root.is_dir() and any(root.iterdir()):
        raise ConfigError(
            f"--out {root} is not empty; give a new folder (nothing was written or overwritten)"
        )


# ----------------------------------------------------------------------------------- reading
@dataclass(kw_only=True)
class Episode:
    """One episode read back from a dataset (what training code consumes).

    Arrays are per frame, in order; `language[i]` is the skill phrase active at frame i.
    """

    index: int
    task: str  # the top-level instruction
    frames: np.ndarray  # (T, H, W, 3) uint8 camera images
    state: np.ndarray  # (T, len(state_names)) float32
    action: np.ndarray  # (T, len(action_names)) float32
    timestamp: np.ndarray  # (T,) s
    sim_time_s: np.ndarray  # (T,) s of simulated time since the recording started
    language: list[str]  # (T,) innermost skill phrase ("pick up the red block")
    skill_call: list[str]  # (T,) "pick('red block')", "" outside skills
    correction_text: list[str]  # (T,) the correction in force while a corrected call runs
    correction_index: np.ndarray  # (T,) int64, the correction taken at this frame, -1 none
    precedes_correction: np.ndarray  # (T,) bool, in the window before a correction
    corrections: list[CorrectionMark]
    success: bool
    state_names: list[str]
    action_names: list[str]
    meta: dict[str, Any]  # the rest of the episode's row (engine, seed, episode_id, ...)

    def __len__(self) -> int:
        return int(self.state.shape[0])


@dataclass(kw_only=True)
class DatasetInfo:
    """What `corrigible dataset info` prints."""

    root: str
    codebase_version: str
    fps: int
    episodes: int
    frames: int
    features: dict[str, dict[str, Any]]
    tasks: list[str]
    subtasks: list[str]
    corrections: int
    corrections_by_route: dict[str, int]
    successes: int
    frames_preceding_corrections: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def _corrupt(root: Path, what: str) -> CorruptStoreError:
    return CorruptStoreError(
        f"{root} is not a readable LeRobot v3.0 dataset: {what}; re-record it or point at the "
        "dataset folder (the one holding meta/info.json)"
    )


def read_info_json(root: str | Path) -> dict[str, Any]:
    """`meta/info.json`, checked to be a v3.0 dataset's (ConfigError / CorruptStoreError)."""
    return _read_info(Path(root))


def _read_info(root: Path) -> dict[str, Any]:
    if not root.is_dir():
        raise ConfigError(f"no dataset folder at {root}; give the folder `dataset record` wrote")
    path = root / "meta" / "info.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _corrupt(root, "meta/info.json is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(root, f"meta/info.json is not JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise _corrupt(root, "meta/info.json is not an object")
    for key in ("codebase_version", "fps", "features", "total_episodes", "total_frames"):
        if key not in info:
            raise _corrupt(root, f"meta/info.json has no {key!r}")
    if info["codebase_version"] != CODEBASE_VERSION:
        raise _corrupt(root, f"codebase_version {info['codebase_version']!r}, expected v3.0")
    return info


def _read_table(root: Path, relative: str, pq: Any) -> Any:
    path = root / relative
    try:
        return pq.read_table(path)
    except FileNotFoundError as exc:
        raise _corrupt(root, f"{relative} is missing") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise _corrupt(root, f"{relative} is damaged ({type(exc).__name__}: {exc})") from exc


def _read_parts(root: Path, folder: str, pq: Any, pa: Any) -> Any:
    paths = sorted((root / folder).glob("chunk-*/file-*.parquet"))
    if not paths:
        raise _corrupt(root, f"no {folder}/chunk-*/file-*.parquet file")
    tables = [_read_table(root, str(p.relative_to(root)), pq) for p in paths]
    try:
        return pa.concat_tables(tables)
    except Exception as exc:
        raise _corrupt(root, f"the files of {folder}/ do not share one schema ({exc})") from exc


def read_info(root: str | Path) -> DatasetInfo:
    """The summary of a dataset, every file opened and checked against `info.json`.

    Raises:
        ConfigError: no folder there.
        CorruptStoreError: a file is missing, damaged, or disagrees with `info.json`.
    """
    episodes = load_episodes(root, images=False)
    root = Path(root)
    info = _read_info(root)
    pa, pq = _pa()
    tasks = _read_table(root, "meta/tasks.parquet", pq).column("task").to_pylist()
    sub = root / "meta" / "subtasks.parquet"
    subtasks = (
        _read_table(root, "meta/subtasks.parquet", pq).column("subtask").to_pylist()
        if (sub.exists())
        else []
    )
    routes: dict[str, int] = {}
    for ep in episodes:
        for c in ep.corrections:
            routes[c.label or "unrouted"] = routes.get(c.label or "unrouted", 0) + 1
    return DatasetInfo(
        root=str(root),
        codebase_version=info["codebase_version"],
        fps=int(info["fps"]),
        episodes=len(episodes),
        frames=sum(len(ep) for ep in episodes),
        features=info["features"],
        tasks=tasks,
        subtasks=subtasks,
        corrections=sum(len(ep.corrections) for ep in episodes),
        corrections_by_route=routes,
        successes=sum(ep.success for ep in episodes),
        frames_preceding_corrections=int(sum(ep.precedes_correction.sum() for ep in episodes)),
    )


def load_episodes(root: str | Path, *, images: bool = True) -> list[Episode]:
    """Reads every episode of a corrigible dataset back, independently of `lerobot`.

    Any v3.0 image dataset with the same features reads too.

    Args:
        root: the dataset folder (holding meta/info.json).
        images: decode the camera frames (False leaves `frames` empty, for summaries).

    Raises:
        ConfigError: no folder there.
        CorruptStoreError: a file is missing or damaged, or the files disagree with each other
            or with `info.json` (frame counts, row ranges, feature columns).
    """
    root = Path(root)
    info = _read_info(root)
    pa, pq = _pa()
    data = _read_parts(root, "data", pq, pa)
    meta = _read_parts(root, "meta/episodes", pq, pa)
    tasks = _read_table(root, "meta/tasks.parquet", pq)
    sub_path = root / "meta" / "subtasks.parquet"
    subtasks = _read_table(root, "meta/subtasks.parquet", pq) if sub_path.exists() else None
    features = info["features"]
    missing = [key for key in features if features[key]["dtype"] != "video"]
    missing = [key for key in missing if key not in data.column_names]
    if missing:
        raise _corrupt(root, f"data files lack the feature columns {missing}")
    if data.num_rows != info["total_frames"]:
        raise _corrupt(
            root, f"data files hold {data.num_rows} frames, info.json says {info['total_frames']}"
        )
    if meta.num_rows != info["total_episodes"]:
        raise _corrupt(
            root,
            f"meta/episodes holds {meta.num_rows} episodes, info.json says "
            f"{info['total_episodes']}",
        )
    try:
        task_of = dict(
            zip(
                tasks.column("task_index").to_pylist(),
                tasks.column("task").to_pylist(),
                strict=True,
            )
        )
        sub_of = (
            dict(
                zip(
                    subtasks.column("subtask_index").to_pylist(),
                    subtasks.column("subtask").to_pylist(),
                    strict=True,
                )
            )
            if subtasks is not None
            else {}
        )
    except KeyError as exc:
        raise _corrupt(root, f"a tasks file lacks a column ({exc})") from exc
    cols = {name: data.column(name) for name in data.column_names}
    image_keys = [k for k, ft in features.items() if ft["dtype"] == "image"]
    out: list[Episode] = []
    for row in meta.to_pylist():
        lo, hi = int(row["dataset_from_index"]), int(row["dataset_to_index"])
        if not (0 <= lo <= hi <= data.num_rows) or hi - lo != int(row["length"]):
            raise _corrupt(root, f"episode {row['episode_index']} has a bad row range {lo}:{hi}")
        ep_index = cols["episode_index"].slice(lo, hi - lo).to_pylist()
        if any(i != row["episode_index"] for i in ep_index):
            raise _corrupt(root, f"rows {lo}:{hi} are not all episode {row['episode_index']}")

        def column(name: str, lo: int = lo, hi: int = hi) -> list[Any]:
            if name not in cols:
                return [None] * (hi - lo)
            return cols[name].slice(lo, hi - lo).to_pylist()

        frames = np.zeros((0,), dtype=np.uint8)
        if images and image_keys:
            frames = np.stack([_decode(root, cell) for cell in column(image_keys[0])])
        task_ids = column("task_index")
        corrections_json = row.get("corrections") or "[]"
        try:
            corrections = [CorrectionMark(**c) for c in json.loads(corrections_json)]
        except (TypeError, ValueError) as exc:
            raise _corrupt(
                root, f"episode {row['episode_index']}: bad corrections ({exc})"
            ) from exc
        sub_ids = column("subtask_index")
        out.append(
            Episode(
                index=int(row["episode_index"]),
                task=str(task_of.get(task_ids[0], (row.get("tasks") or [""])[0])),
                frames=frames,
                state=np.asarray(column("observation.state"), dtype=np.float32),
                action=np.asarray(column("action"), dtype=np.float32),
                timestamp=np.asarray(column("timestamp"), dtype=np.float64),
                sim_time_s=np.asarray(
                    [0.0 if v is None else v for v in column("sim_time_s")], dtype=np.float64
                ),
                language=[str(sub_of.get(i, "")) for i in sub_ids],
                skill_call=[str(s or "") for s in column("language.skill_call")],
                correction_text=[str(s or "") for s in column("language.correction")],
                correction_index=np.asarray(
                    [-1 if v is None else v for v in column("correction.index")], dtype=np.int64
                ),
                precedes_correction=np.asarray(
                    [bool(v) for v in column("correction.precedes")], dtype=bool
                ),
                corrections=corrections,
                success=bool(row.get("success")),
                state_names=list(features["observation.state"].get("names") or []),
                action_names=list(features["action"].get("names") or []),
                meta={
                    k: v
                    for k, v in row.items()
                    if k not in ("corrections", "tasks") and not k.startswith("stats/")
                },
            )
        )
    return out


def _decode(root: Path, cell: Any) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(cell, dict) or not cell.get("bytes"):
        raise _corrupt(root, "an image cell holds no PNG bytes")
    try:
        with Image.open(io.BytesIO(cell["bytes"])) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise _corrupt(root, f"an image does not decode ({exc})") from exc


__all__ = [
    "CODEBASE_VERSION",
    "DatasetInfo",
    "DatasetWriter",
    "Episode",
    "check_output_dir",
    "features_for",
    "load_episodes",
    "read_info",
    "read_info_json",
]
