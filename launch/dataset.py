r"""`corrigible dataset record|export|info`: sessions recorded as LeRobot v3.0 datasets.

Example:
    corrigible dataset record --instruction "put the red block in the blue bowl" \
        --expect "in(red block, blue bowl)" --correction "a bit higher@1.5" --out runs/datasets/demo
    corrigible dataset info runs/datasets/demo
    corrigible dataset export runs/datasets/demo --fps 5 --out runs/datasets/demo-5hz

`record` runs one `Session` per episode (one per `--instruction`, or the first `--episodes` of a
suite) and writes every episode, failed ones included, into one dataset (layout:
`policies/learned/recording/README.md`). `--correction "TEXT@S"` gives a typed correction after
S seconds of simulated time in every episode, as a person typing while the arm moves.
`export` re-writes a recorded dataset at a lower frame rate (`--fps`, frames are dropped) or as
plain JSON lines (`--jsonl`: frames without images, and episodes); a run's JSONL trace cannot
be exported, since it holds the arm's motions but neither camera frames nor per-tick states.
`info` prints episodes, frames, fps, features, tasks and corrections (`--json` for JSON).

Exit status: 0 done, 2 bad input (an option, a non-empty `--out`, an unknown suite, a missing or
damaged dataset). Datasets are written to a temporary folder and renamed into place at the end,
so a failed or interrupted command leaves nothing under `--out`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import Field, field_validator, model_validator

from corrigible.boundary import escape
from corrigible.errors import ConfigError, CorrigibleError
from corrigible.launch.schema import VerbConfig, choices
from corrigible.sim_envs.backends.registry import BACKENDS

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def parse_correction(spec: str) -> tuple[str, float]:
    """`"a bit higher@1.5"` -> ("a bit higher", 1.5); the last `@` splits text and seconds.

    Raises:
        ConfigError: no `@`, an empty text, or seconds that are not a finite number >= 0.
    """
    text, sep, at = spec.rpartition("@")
    if not sep or not text.strip():
        raise ConfigError(
            f"--correction {escape(repr(spec))} must be TEXT@SECONDS, e.g. 'a bit higher@1.5'"
        )
    try:
        seconds = float(at)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(
            f"--correction {escape(repr(spec))}: {escape(repr(at))} is not a time in seconds "
            ">= 0 (simulated time since the episode started)"
        )
    return text.strip(), seconds


class DatasetRecordConfig(VerbConfig):
    """`corrigible dataset record` (`corrigible schema dataset-record`)."""

    out: Path  # the dataset folder to create; must not exist or be empty
    instructions: list[str] = Field(default_factory=list)  # one episode each, run in order
    expects: list[str] = Field(default_factory=list)  # success predicates, by position
    suite: str | None = None  # a built-in suite name or a suite YAML (instead of instructions)
    episodes: int | None = Field(default=None, ge=1, le=10000)  # suite: its first N episodes
    sim: str = Field("mujoco", json_schema_extra=choices(BACKENDS.names))  # physics engine
    seed: int = Field(default=0, ge=0)  # layout seed of the first instruction (then +1 each)
    # where programs see objects: camera | privileged
    perception: str = Field("camera", json_schema_extra=choices(("camera", "privileged")))
    corrections: list[str] = Field(default_factory=list)  # "TEXT@SECONDS", given every episode
    fps: int = 10  # Hz of simulated time; divides 20
    width: int = 128  # px camera frames
    height: int = 96  # px camera frames
    precede_window_s: float = 2.0  # s before a correction flagged correction.precedes

    @field_validator("sim")
    @classmethod
    def _engine(cls, value: str) -> str:
        return BACKENDS.canonical(value)

    @field_validator("perception")
    @classmethod
    def _perception(cls, value: str) -> str:
        if value not in ("camera", "privileged"):
            raise ConfigError(f"--perception must be camera or privileged, got {escape(value)!r}")
        return value

    @field_validator("corrections")
    @classmethod
    def _corrections(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_correction(spec)
        return value

    @model_validator(mode="after")
    def _source(self) -> DatasetRecordConfig:
        if bool(self.instructions) == bool(self.suite):
            raise ConfigError(
                "give either --instruction TEXT (repeatable) or --suite NAME --episodes N"
            )
        if self.suite and self.expects:
            raise ConfigError("--expect goes with --instruction; a suite brings its own")
        if self.episodes is not None and not self.suite:
            raise ConfigError("--episodes goes with --suite; give one --instruction per episode")
        if len(self.expects) > len(self.instructions) and not self.suite:
            raise ConfigError(
                f"{len(self.expects)} --expect for {len(self.instructions)} --instruction; "
                "give at most one per instruction, in the same order"
            )
        if any(not text.strip() for text in self.instructions):
            raise ConfigError("an --instruction is empty; say what to do")
        self.recording()  # a bad fps / size / window fails here, before any work
        return self

    def recording(self) -> Any:
        """The `RecordingConfig` these options describe."""
        from corrigible.policies.learned.recording import RecordingConfig

        return RecordingConfig(
            fps=self.fps,
            image_width=self.width,
            image_height=self.height,
            precede_window_s=self.precede_window_s,
        )


class DatasetExportConfig(VerbConfig):
    """`corrigible dataset export` (`corrigible schema dataset-export`)."""

    source: Path  # a dataset folder written by `dataset record`
    out: Path  # the folder to create; must not exist or be empty
    fps: int | None = None  # lower frame rate (divides the source's); None keeps it
    jsonl: bool = False  # plain JSON lines (frames.jsonl, episodes.jsonl) instead of LeRobot


class DatasetInfoConfig(VerbConfig):
    """`corrigible dataset info` (`corrigible schema dataset-info`)."""

    root: Path  # a dataset folder
    as_json: bool = False  # print JSON instead of text


# ------------------------------------------------------------------------------------ record
def _plan(cfg: DatasetRecordConfig) -> list[dict[str, Any]]:
    """One dict per episode: instruction(s), expect, seed and layout."""
    if cfg.suite:
        from corrigible.policies.suites.schema import load_suite

        suite = load_suite(cfg.suite)  # UnknownNameError with "did you mean", ConfigError
        chosen = suite.episodes[: cfg.episodes] if cfg.episodes else suite.episodes
        return [
            {"instruction": ep.instruction, "expect": ep.expect, "seed": ep.seed, "layout": ep}
            for ep in chosen
        ]
    return [
        {
            "instruction": text,
            "expect": cfg.expects[i] if i < len(cfg.expects) else None,
            "seed": cfg.seed + i,
            "layout": None,
        }
        for i, text in enumerate(cfg.instructions)
    ]


def record(cfg: DatasetRecordConfig) -> dict[str, Any]:
    """Records every planned episode and writes the dataset; returns the summary printed.

    Raises:
        CorrigibleError: a bad option, suite, instruction or predicate (nothing is written).
    """
    from corrigible.policies.learned.recording import DatasetWriter, record_episode
    from corrigible.policies.learned.recording.lerobot_v3 import check_output_dir
    from corrigible.session import Session, SessionConfig

    check_output_dir(cfg.out)
    recording = cfg.recording()
    schedule = [parse_correction(spec) for spec in cfg.corrections]
    writer = DatasetWriter(cfg.out, recording)
    rows = []
    for n, item in enumerate(_plan(cfg)):
        config = SessionConfig(
            engine=cfg.sim,
            seed=item["seed"],
            perception=cfg.perception,  # type: ignore[arg-type]
            interactive=bool(schedule),
            correction_timeout_s=1.0,  # nobody types after a failure: give up quickly
            episode=f"dataset-{n:04d}",
        )
        layout = item["layout"].layout() if item["layout"] is not None else None
        try:
            with Session(config, layout=layout) as session:
                episode, result = record_episode(
                    session,
                    item["instruction"],
                    expect=item["expect"],
                    config=recording,
                    corrections_at=schedule,
                )
            unplanned = [st for st in result.steps if st.get("status") == "plan_error"]
            if unplanned:  # nothing to learn from: an instruction the planner cannot read
                raise ConfigError(
                    f"the instruction could not be planned: {unplanned[0].get('message')}"
                )
        except (CorrigibleError, KeyboardInterrupt) as exc:
            if not rows:  # nothing recorded yet: nothing to keep
                raise
            writer.write()  # keep what was recorded before the failure
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ConfigError(
                f"episode {n} ({escape(repr(item['instruction']))}) could not run: {exc}; the "
                f"{len(rows)} episode(s) before it were written to {cfg.out}"
            ) from exc
        index = writer.add(episode)
        row = {
            "episode_index": index,
            "instruction": episode.instruction,
            "frames": episode.length,
            "success": episode.success,
            "corrections": [c.text for c in episode.corrections],
            "sim_s": round(result.sim_s, 2),
        }
        rows.append(row)
        mark = "ok  " if episode.success else "FAIL"
        print(
            f"[{mark}] episode {index}: {escape(episode.instruction)} ({episode.length} frames, "
            f"{len(episode.corrections)} correction(s))",
            file=sys.stderr,
        )
    writer.write()
    return {"out": str(cfg.out), "episodes": rows, "fps": recording.fps}


# ------------------------------------------------------------------------------------ export
def export(cfg: DatasetExportConfig) -> dict[str, Any]:
    """Re-writes a dataset at a lower frame rate, or as plain JSON lines.

    Raises:
        ConfigError: `--out` not empty, `--fps` not dividing the source's.
        CorruptStoreError: the source is damaged.
    """
    from corrigible.policies.learned.recording.lerobot_v3 import (
        check_output_dir,
        load_episodes,
        read_info_json,
    )

    check_output_dir(cfg.out)
    episodes = load_episodes(cfg.source, images=not cfg.jsonl)
    info = read_info_json(cfg.source)
    fps = int(info["fps"])
    step = 1
    if cfg.fps is not None:
        if cfg.fps <= 0 or fps % cfg.fps:
            raise ConfigError(
                f"--fps {cfg.fps} must divide the dataset's {fps} fps (export only drops frames)"
            )
        step = fps // cfg.fps
    if cfg.jsonl:
        return _export_jsonl(cfg.out, episodes, step, fps // step)
    from corrigible.policies.learned.recording import DatasetWriter, RecordingConfig

    extra = info.get("corrigible", {})
    recording = RecordingConfig(
        fps=fps // step,
        image_width=int(extra.get("image_width", 128)),
        image_height=int(extra.get("image_height", 96)),
        precede_window_s=float(extra.get("precede_window_s", 2.0)),
    )
    writer = DatasetWriter(cfg.out, recording)
    frames = 0
    for ep in episodes:
        recorded = _subsample(ep, step, recording.fps)
        frames += recorded.length
        writer.add(recorded)
    writer.write()
    return {"out": str(cfg.out), "episodes": len(episodes), "frames": frames, "fps": fps // step}


def _subsample(ep: Any, step: int, fps: int) -> Any:
    """A `RecordedEpisode` keeping every `step`-th frame; corrections move to the next kept one."""
    import dataclasses

    import numpy as np

    from corrigible.policies.learned.recording import RecordedEpisode

    keep = list(range(0, len(ep), step))
    marks = [
        dataclasses.replace(c, frame_index=min(-(-c.frame_index // step), len(keep) - 1))
        for c in ep.corrections
    ]
    index = [-1] * len(keep)
    for i, mark in enumerate(marks):
        index[mark.frame_index] = i
    return RecordedEpisode(
        instruction=ep.task,
        fps=fps,
        images=[ep.frames[i] for i in keep],
        state=[ep.state[i] for i in keep],
        action=[ep.action[i] for i in keep],
        sim_time_s=[float(ep.sim_time_s[i]) for i in keep],
        skill_phrase=[ep.language[i] for i in keep],
        skill_call=[ep.skill_call[i] for i in keep],
        correction_text=[ep.correction_text[i] for i in keep],
        correction_index=index,
        precedes_correction=[bool(np.asarray(ep.precedes_correction)[i]) for i in keep],
        corrections=marks,
        success=ep.success,
        success_judged_by=str(ep.meta.get("success_judged_by", "expect")),
        engine=str(ep.meta.get("engine", "")),
        seed=int(ep.meta.get("seed", 0) or 0),
        episode_id=str(ep.meta.get("episode_id", "")),
        precede_window_s=float(ep.meta.get("precede_window_s", 0.0) or 0.0),
        start_sim_time_s=float(ep.meta.get("start_sim_time_s", 0.0) or 0.0),
    )


def _export_jsonl(out: Path, episodes: list[Any], step: int, fps: int) -> dict[str, Any]:
    """frames.jsonl (one frame a line, no images) and episodes.jsonl, written atomically."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    frames = 0
    try:
        with (tmp / "frames.jsonl").open("w") as fh:
            for ep in episodes:
                for new, i in enumerate(range(0, len(ep), step)):
                    row = {
                        "episode_index": ep.index,
                        "frame_index": new,
                        "timestamp": new / fps,
                        "observation.state": [round(float(v), 6) for v in ep.state[i]],
                        "action": [round(float(v), 6) for v in ep.action[i]],
                        "task": ep.task,
                        "language": ep.language[i],
                        "skill_call": ep.skill_call[i],
                        "correction_text": ep.correction_text[i],
                        "precedes_correction": bool(ep.precedes_correction[i]),
                    }
                    fh.write(json.dumps(row) + "\n")
                    frames += 1
        with (tmp / "episodes.jsonl").open("w") as fh:
            for ep in episodes:
                row = {
                    "episode_index": ep.index,
                    "task": ep.task,
                    "success": ep.success,
                    "fps": fps,
                    "state_names": ep.state_names,
                    "action_names": ep.action_names,
                    "corrections": [c.to_dict() for c in ep.corrections],
                }
                fh.write(json.dumps(row) + "\n")
        if out.is_dir():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "episodes": len(episodes), "frames": frames, "fps": fps}


# -------------------------------------------------------------------------------------- info
def info(cfg: DatasetInfoConfig) -> dict[str, Any]:
    """Reads and checks a dataset, prints its summary, and returns it."""
    from corrigible.policies.learned.recording import read_info

    summary = read_info(cfg.root).to_dict()
    if cfg.as_json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return summary
    print(f"dataset {escape(summary['root'])} (LeRobot {summary['codebase_version']})")
    print(f"episodes: {summary['episodes']} ({summary['successes']} successful)")
    print(f"frames:   {summary['frames']} at {summary['fps']} fps")
    print("features:")
    for key, ft in summary["features"].items():
        print(f"  {escape(key)}: {ft['dtype']} {list(ft['shape'])}")
    print("tasks:")
    for task in summary["tasks"]:
        print(f"  {escape(task)}")
    print(f"skill phrases: {len(summary['subtasks'])}")
    routes = ", ".join(f"{k}: {v}" for k, v in sorted(summary["corrections_by_route"].items()))
    print(f"corrections: {summary['corrections']}" + (f" ({routes})" if routes else ""))
    print(f"frames preceding a correction: {summary['frames_preceding_corrections']}")
    return summary


def _guarded(action: Any, cfg: Any) -> None:
    """Runs a sub-command; a corrigible error (or a missing file) exits 2 with `error: ...`."""
    try:
        result = action(cfg)
    except (CorrigibleError, FileNotFoundError) as exc:
        print(f"error: {escape(str(exc))}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    if action is not info:
        print(json.dumps(result, indent=2, ensure_ascii=False))


def _config(model: type[VerbConfig], **values: Any) -> Any:
    try:
        return model(**values)
    except CorrigibleError as exc:
        print(f"error: {escape(str(exc))}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from exc


def register(app: typer.Typer) -> None:
    """Adds the `dataset` verb group: record, export, info."""
    dataset_app = typer.Typer(
        help="Record sessions as LeRobot datasets; export and inspect them.",
        no_args_is_help=True,
    )

    @dataset_app.command("record")
    def record_cmd(
        out: Path = typer.Option(..., help="dataset folder to create (must be new or empty)"),
        instruction: list[str] = typer.Option(  # noqa: B008
            [], "--instruction", help="one episode per instruction (repeatable)"
        ),
        expect: list[str] = typer.Option(  # noqa: B008
            [], "--expect", help="success predicate per instruction, in order (repeatable)"
        ),
        suite: str | None = typer.Option(None, help="built-in suite name or suite YAML"),
        episodes: int | None = typer.Option(None, help="with --suite: its first N episodes"),
        sim: str = typer.Option("mujoco", help="mujoco | pybullet"),
        seed: int = typer.Option(0, help="layout seed of the first instruction (+1 each)"),
        perception: str = typer.Option("camera", help="camera | privileged"),
        correction: list[str] = typer.Option(  # noqa: B008
            [], "--correction", help="TEXT@SECONDS typed mid-run in every episode (repeatable)"
        ),
        fps: int = typer.Option(10, help="frames per second of simulated time (divides 20)"),
        width: int = typer.Option(128, help="camera frame width, px"),
        height: int = typer.Option(96, help="camera frame height, px"),
        precede_window: float = typer.Option(
            2.0, help="s before a correction flagged correction.precedes"
        ),
    ) -> None:
        """Run sessions and record every episode into one LeRobot v3.0 dataset."""
        cfg = _config(
            DatasetRecordConfig,
            out=out,
            instructions=instruction,
            expects=expect,
            suite=suite,
            episodes=episodes,
            sim=sim,
            seed=seed,
            perception=perception,
            corrections=correction,
            fps=fps,
            width=width,
            height=height,
            precede_window_s=precede_window,
        )
        _guarded(record, cfg)

    @dataset_app.command("export")
    def export_cmd(
        source: Path = typer.Argument(..., help="a dataset folder written by `dataset record`"),
        out: Path = typer.Option(..., help="folder to create (must be new or empty)"),
        fps: int | None = typer.Option(None, help="lower frame rate; must divide the source's"),
        jsonl: bool = typer.Option(False, help="plain JSON lines instead of a LeRobot dataset"),
    ) -> None:
        """Re-write a recorded dataset at a lower fps, or as plain JSON lines."""
        _guarded(export, _config(DatasetExportConfig, source=source, out=out, fps=fps, jsonl=jsonl))

    @dataset_app.command("info")
    def info_cmd(
        root: Path = typer.Argument(..., help="a dataset folder"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Print a dataset's episodes, frames, fps, features, tasks and corrections."""
        _guarded(info, _config(DatasetInfoConfig, root=root, as_json=as_json))

    app.add_typer(dataset_app, name="dataset")
