"""Episodes of the pack family: the scripted planner, the learned high level, the person.

An episode alternates the high level (choose the next instruction from the frames) and the low
level (carry it out with the scripted skills in physics). With a `SimulatedInstructor` watching,
a wrong instruction is replaced before it runs by the person's correction, DAgger-style: the
sample of that step keeps the frames the high level saw and takes the correction as its label.
Every step is a sample (`HLSample`), so the data a run records is what training reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from corrigible.config import Model
from corrigible.errors import ConfigError
from corrigible.policies.learned.high_level.config_high_level import InstructorConfig
from corrigible.policies.learned.high_level.high_level import HLObservation, TextCache, _pad
from corrigible.policies.learned.high_level.task_family import (
    CANDIDATES,
    DONE,
    PackEpisode,
    PackTask,
    StepOutcome,
)
from corrigible.sim_envs.tabletop_env import TabletopEnv

Chooser = Callable[[HLObservation], str]
Source = Literal["demo", "policy", "correction"]
DATASET_FORMAT = "corrigible-hl-dataset"


class HLSample(Model):
    """One decision of the high level: what it saw (frames live in the dataset's array)."""

    episode: str  # episode id, e.g. "demo-seed1000"
    step: int  # decision index within the episode
    task: str  # the task in words
    history: list[str]  # the last instructions carried out, oldest first ("" = none yet)
    gripper_width_m: float  # finger distance, m
    proposed: str  # what the deciding policy said (the scripted planner, or the high level)
    label: str  # what was carried out: the proposal, or the correction replacing it
    source: Source  # demo (scripted planner) | policy (accepted) | correction (replaced)
    correction_words: str | None = None  # what the person said, when `source` is correction


@dataclass
class Correction:
    """A person's correction of one step."""

    step: int
    proposed: str  # the high level's instruction, never carried out
    words: str  # what the person said
    instruction: str  # the candidate the words mean (cosine match), carried out instead
    expert: str  # what the person meant (equal to `instruction` when the words were understood)


class SimulatedInstructor:
    """The watching person: says the right next instruction whenever the high level errs.

    Args:
        text: the MiniLM cache; a correction's words are matched to the candidates by cosine,
            exactly as the high level's own predictions are.
        seed: seeds the choice of phrasing.
    """

    # Each is matched back to the step it names (tests check all): MiniLM reads "not that, open
    # the drawer" as "close the drawer", so no phrasing leads with a bare negation.
    _PHRASES = ("no, {e}", "no, {e} first", "wait, {e} instead")

    def __init__(self, text: TextCache, seed: int = 0) -> None:
        self.text = text
        self.rng = np.random.default_rng([seed, 4])
        self._cand = text(list(CANDIDATES))

    def words(self, expert: str, proposed: str, last: str | None) -> str:
        """The correction in words: "again" for a step to repeat, else a rebuke and the step."""
        if expert == last:
            return f"{expert} again"
        if proposed == DONE:
            return f"no, you are not done: {expert}"
        return str(self.rng.choice(self._PHRASES)).format(e=expert)

    def interpret(self, words: str) -> str:
        """The candidate instruction the words mean (highest cosine similarity)."""
        return CANDIDATES[int(np.argmax(self._cand @ self.text([words])[0]))]

    def review(
        self, episode: PackEpisode, proposed: str, step: int, last: str | None
    ) -> Correction | None:
        """A correction when `proposed` is not what the person would do now, else None."""
        expert = episode.expert_instruction()
        if proposed == expert:
            return None
        words = self.words(expert, proposed, last)
        return Correction(step, proposed, words, self.interpret(words), expert)


@dataclass
class EpisodeRecord:
    """One episode: its samples (frames aside), outcomes, corrections and the verdict."""

    episode: str
    task: PackTask
    seed: int
    samples: list[HLSample] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # (n_frames, H, W, 3) per sample
    outcomes: list[StepOutcome] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    success: bool = False
    details: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """A JSON-ready line: task, instructions, corrections and the verdict."""
        return {
            "episode": self.episode,
            "seed": self.seed,
            "task": self.task.text,
            "seen_order": self.task.is_seen,
            "instructions": [s.label for s in self.samples],
            "corrections": [
                {"step": c.step, "proposed": c.proposed, "said": c.words, "taken": c.instruction}
                for c in self.corrections
            ],
            "success": self.success,
            "details": self.details,
        }


def scripted_chooser(task: PackTask) -> Chooser:
    """The scripted planner as a chooser: its fixed sequence, one instruction per call."""
    plan = task.scripted_plan()
    state = {"i": 0}

    def choose(_obs: HLObservation) -> str:
        i = min(state["i"], len(plan) - 1)
        state["i"] += 1
        return plan[i]

    return choose


def run_episode(
    env: TabletopEnv,
    task: PackTask,
    seed: int,
    chooser: Chooser,
    *,
    cfg: InstructorConfig,
    source: Source = "policy",
    instructor: SimulatedInstructor | None = None,
    max_steps: int = 14,
    episode: str | None = None,
    perception: str = "camera",
) -> EpisodeRecord:
    """Runs one episode to the high level's "done" (or `max_steps` decisions).

    Args:
        env: an env from `task_family.make_env` (reset here on `seed`).
        task: the task.
        seed: the layout seed.
        chooser: the high level (or `scripted_chooser`).
        cfg: frame size, number of frames and history length the samples carry.
        source: how accepted steps are marked ("demo" for the scripted planner).
        instructor: the watching person; None runs without corrections.
        max_steps: decisions before the episode is cut off.
        episode: id of the episode in the samples.
        perception: how the skills locate objects ("camera" or "privileged").

    Returns:
        The record, judged by the simulator's state.
    """
    ep = PackEpisode(
        env, task, seed, frame_size=(cfg.frame_height, cfg.frame_width), perception=perception
    )
    rec = EpisodeRecord(episode=episode or f"{source}-seed{seed}", task=task, seed=seed)
    recent = [ep.frame()] * cfg.n_frames
    history: list[str] = []
    for step in range(max_steps):
        obs = HLObservation(
            frames=np.stack(recent),
            gripper_width_m=ep.gripper_width_m(),
            task=task.text,
            history=tuple(_pad(history, cfg.history)),
        )
        proposed = chooser(obs)
        label, mark, words = proposed, source, None
        if instructor is not None:
            fix = instructor.review(ep, proposed, step, history[-1] if history else None)
            if fix is not None:
                rec.corrections.append(fix)
                label, mark, words = fix.instruction, "correction", fix.words
        rec.samples.append(
            HLSample(
                episode=rec.episode,
                step=step,
                task=task.text,
                history=list(obs.history),
                gripper_width_m=obs.gripper_width_m,
                proposed=proposed,
                label=label,
                source=mark,
                correction_words=words,
            )
        )
        rec.frames.append(obs.frames)
        if label == DONE:
            break
        rec.outcomes.append(ep.execute(label))
        history.append(label)
        recent = [*recent[1:], ep.frame()]
    rec.success, rec.details = ep.judge()
    return rec


# ------------------------------------------------------------------------------- datasets
class DatasetManifest(Model):
    """The JSON side of a dataset file: what the frames array's rows are."""

    format: str  # always DATASET_FORMAT
    version: int  # 1
    frame_height: int  # px
    frame_width: int  # px
    n_frames: int  # frames per sample
    history: int  # instructions per sample's history
    samples: list[HLSample]  # one per row of the frames array
    episodes: list[dict[str, object]]  # each episode's summary


@dataclass
class HLDataset:
    """Samples with their frames, in memory."""

    manifest: DatasetManifest
    frames: np.ndarray  # (N, n_frames, H, W, 3) uint8

    @classmethod
    def from_records(cls, records: list[EpisodeRecord], cfg: InstructorConfig) -> HLDataset:
        """Collects the samples and frames of some episodes."""
        samples = [s for r in records for s in r.samples]
        frames = [f for r in records for f in r.frames]
        shape = (0, cfg.n_frames, cfg.frame_height, cfg.frame_width, 3)
        return cls(
            DatasetManifest(
                format=DATASET_FORMAT,
                version=1,
                frame_height=cfg.frame_height,
                frame_width=cfg.frame_width,
                n_frames=cfg.n_frames,
                history=cfg.history,
                samples=samples,
                episodes=[r.summary() for r in records],
            ),
            np.stack(frames).astype(np.uint8) if frames else np.zeros(shape, np.uint8),
        )

    def __len__(self) -> int:
        return len(self.manifest.samples)

    def observation(self, i: int) -> HLObservation:
        """Sample `i` as the high level saw it."""
        s = self.manifest.samples[i]
        return HLObservation(self.frames[i], s.gripper_width_m, s.task, tuple(s.history))

    def save(self, path: Path) -> None:
        """One compressed `.npz`: the frames and the manifest as a JSON string (atomic)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez_compressed(
            tmp, frames=self.frames, manifest=np.array(self.manifest.model_dump_json())
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> HLDataset:
        """Reads a file written by `save`.

        Raises:
            ConfigError: missing file, not such a dataset, or frames and samples disagree.
        """
        if not Path(path).is_file():
            raise ConfigError(f"no high-level dataset at {path}; record one with train hl")
        try:
            with np.load(path, allow_pickle=False) as blob:
                frames = blob["frames"]
                manifest = DatasetManifest(**json.loads(str(blob["manifest"])))
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"{path} is not a high-level dataset ({type(exc).__name__}: {exc}); "
                "record it again with `corrigible train hl`"
            ) from exc
        if manifest.format != DATASET_FORMAT or len(manifest.samples) != len(frames):
            raise ConfigError(
                f"{path}: format {manifest.format!r} with {len(manifest.samples)} samples and "
                f"{len(frames)} frame rows; record it again with `corrigible train hl`"
            )
        return cls(manifest, frames)

    @classmethod
    def concat(cls, parts: list[HLDataset]) -> HLDataset:
        """Several datasets of the same frame settings as one."""
        first = parts[0].manifest
        for p in parts[1:]:
            m = p.manifest
            if (m.frame_height, m.frame_width, m.n_frames, m.history) != (
                first.frame_height,
                first.frame_width,
                first.n_frames,
                first.history,
            ):
                raise ConfigError("datasets recorded with different frame settings cannot mix")
        manifest = first.model_copy(
            update={
                "samples": [s for p in parts for s in p.manifest.samples],
                "episodes": [e for p in parts for e in p.manifest.episodes],
            }
        )
        return cls(manifest, np.concatenate([p.frames for p in parts]))
