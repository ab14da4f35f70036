"""Demonstrations: the scripted skills' executions, recorded primitive by primitive.

Each episode lays out a training layout, runs the scripted `pick` of a random block (from the
home pose or a random start), executes correction phrasings ("move a bit to the left", "go
higher") through the scripted interpretation of corrections (`language.parse_skill_command`
-> `move_ee`), and runs the scripted `place` into a random bowl. A `RecordingArm` stands
between the skills and the arm and records, before every primitive the skill commands
(`move_to`, `move_by`, `grasp`, `release`), the policy's observation and the primitive; the
labels are those primitives, so the corrected scripted execution is the label of a correction
phrasing. Only successful executions are kept.

Relabelled first steps (`CollectConfig.relabel`): before each pick, the same observation is
also recorded for every other block, with a phrasing naming it and, as label, the primitives
the scripted pick would command for it (`pick_primitives`, computed by the library's own aim);
before each place, likewise for every other bowl. Same image, different words, different
target: the contrast that teaches the instruction to pick out its object, at no extra
simulation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import ConfigError
from corrigible.policies.learned.low_level.config_low_level import CollectConfig
from corrigible.policies.learned.low_level.low_level import (
    CROP_COLS,
    CROP_ROWS,
    POS_SCALE,
    PRIMITIVE_DIM,
    camera_image,
    proprioception,
)
from corrigible.robots.arm import Pose

MAX_CHUNK = 8  # primitives stored per sample; a model's chunk takes the first ones
IMAGE_SIZE = (96, 64)  # px (width, height); LowLevelModelConfig's default

PICK_PHRASES = (
    "pick up the {obj}",
    "grab the {obj}",
    "pick the {obj} up",
    "lift the {obj}",
    "grasp the {color} cube",
    "take the {color} block",
)
PLACE_PHRASES = (
    "put the {obj} in the {bowl}",
    "place it in the {bowl}",
    "drop the {obj} into the {bowl}",
    "put it in the {bowl_color} dish",
)
NUDGE_DIRECTIONS = ("left", "right", "forward", "backward", "higher", "lower", "up", "down")
NUDGE_MAGNITUDES = ("a bit", "a little", "slightly", "a lot", "")
NUDGE_TEMPLATES = ("move {mag} {dir}", "go {mag} {dir}", "{mag} more {dir}")
NUDGE_SIDEWAYS = ("move {mag} to the {dir}",)  # for left and right only


def pick_instruction(obj: str) -> str:
    """The phrasing the learned `pick` is asked with at run time (one of the trained ones)."""
    return PICK_PHRASES[0].format(obj=obj)


def place_instruction(obj: str, bowl: str) -> str:
    """The phrasing the learned `place` is asked with at run time."""
    return PLACE_PHRASES[0].format(obj=obj, bowl=bowl)


def wrap_quarter(angle: float) -> float:
    """`angle` modulo a quarter turn, in [-pi/4, pi/4): a square grasp repeats every pi/2."""
    return (angle + math.pi / 4) % (math.pi / 2) - math.pi / 4


@dataclass
class _Step:
    """One recorded primitive with the observation before it."""

    image: np.ndarray
    proprio: np.ndarray
    ee_pos: np.ndarray  # measured, m
    yaw: float  # measured, rad
    target: np.ndarray  # m
    target_yaw: float  # rad
    closed_after: bool
    keypoint: np.ndarray | None = None  # the focus object in the crop, [-1, 1] (x, y)


@dataclass
class Demonstrations:
    """Samples for behaviour cloning, as arrays (one row per policy step)."""

    images: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8
    proprio: list[np.ndarray] = field(default_factory=list)  # (PROPRIO_DIM,)
    texts: list[str] = field(default_factory=list)  # instruction of each sample
    labels: list[np.ndarray] = field(default_factory=list)  # (MAX_CHUNK, PRIMITIVE_DIM)
    done: list[float] = field(default_factory=list)  # 1 on a segment's final sample
    # the skill's object (the block to pick, the bowl to place in) in the crop, [-1, 1], and
    # whether there is one: a training-time auxiliary target for the keypoints, never an input
    keypoints: list[np.ndarray] = field(default_factory=list)
    has_keypoint: list[float] = field(default_factory=list)
    episode: list[int] = field(default_factory=list)  # episode index (splits are by layout)
    kind: list[str] = field(default_factory=list)  # "pick" | "place" | "nudge"
    stats: dict[str, Any] = field(default_factory=dict)  # counts and failures

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self) -> dict[str, np.ndarray]:
        """The samples as stacked arrays."""
        return {
            "images": np.stack(self.images),
            "proprio": np.stack(self.proprio),
            "labels": np.stack(self.labels).astype(np.float32),
            "done": np.asarray(self.done, dtype=np.float32),
            "episode": np.asarray(self.episode, dtype=np.int64),
            "keypoints": np.stack(self.keypoints).astype(np.float32),
            "has_keypoint": np.asarray(self.has_keypoint, dtype=np.float32),
        }

    def save(self, path: Path) -> Path:
        """Writes the samples as one compressed .npz (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            **self.arrays(),
            texts=np.asarray(self.texts),
            kind=np.asarray(self.kind),
            stats=np.asarray(json.dumps(self.stats)),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> Demonstrations:
        """Reads samples written by `save`.

        Raises:
            ConfigError: the file is missing or is not a demonstrations file.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                n = len(data["images"])
                demos = cls(
                    images=list(data["images"]),
                    proprio=list(data["proprio"]),
                    texts=[str(t) for t in data["texts"]],
                    labels=list(data["labels"]),
                    done=[float(v) for v in data["done"]],
                    episode=[int(v) for v in data["episode"]],
                    kind=[str(k) for k in data["kind"]],
                    keypoints=list(data["keypoints"]),
                    has_keypoint=[float(v) for v in data["has_keypoint"]],
                    stats=json.loads(str(data["stats"])),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"{path} is not a readable demonstrations file ({exc}); delete it and collect "
                "again with `corrigible train ll --demos FILE`"
            ) from exc
        if not all(len(v) == n for v in (demos.proprio, demos.texts, demos.labels, demos.done)):
            raise ConfigError(f"{path} holds demonstrations of unequal lengths; collect again")
        return demos

    def add_first(
        self,
        step: _Step,
        primitives: list[tuple[np.ndarray, float, bool]],
        text: str,
        episode: int,
        kind: str,
    ) -> None:
        """Adds one relabelled first step: the skill's first primitives for another object."""
        rows = [_label(step, t, y, c) for t, y, c in primitives]
        rows += [rows[-1]] * (MAX_CHUNK - len(rows))
        self.images.append(step.image)
        self.proprio.append(step.proprio)
        self.texts.append(text)
        self.labels.append(np.stack(rows))
        self.done.append(0.0)
        self.episode.append(episode)
        self.kind.append(kind)
        self.keypoints.append(step.keypoint)
        self.has_keypoint.append(1.0)

    def add_segment(self, steps: list[_Step], final: _Step, text: str, episode: int, kind: str):
        """Adds one skill execution: a sample per primitive and a final 'done' sample."""
        for i, step in enumerate([*steps, final]):
            rows = []
            for j in range(MAX_CHUNK):
                k = min(i + j, len(steps)) if steps else 0
                if k < len(steps):
                    ref = steps[k]
                    rows.append(_label(step, ref.target, ref.target_yaw, ref.closed_after))
                else:  # past the end: hold where the last primitive left the arm
                    last = steps[-1] if steps else None
                    if last is None or i == len(steps):
                        rows.append(_label(step, step.ee_pos, step.yaw, bool(step.proprio[-1])))
                    else:
                        rows.append(_label(step, last.target, last.target_yaw, last.closed_after))
            self.images.append(step.image)
            self.proprio.append(step.proprio)
            self.texts.append(text)
            self.labels.append(np.stack(rows))
            self.done.append(1.0 if i == len(steps) else 0.0)
            self.episode.append(episode)
            self.kind.append(kind)
            self.keypoints.append(step.keypoint if step.keypoint is not None else np.zeros(2))
            self.has_keypoint.append(0.0 if step.keypoint is None else 1.0)


def _label(step: _Step, target: np.ndarray, target_yaw: float, closed: bool) -> np.ndarray:
    """One primitive as the network predicts it, relative to the observation `step`."""
    dyaw = wrap_quarter(target_yaw - step.yaw)
    delta = (np.asarray(target) - step.ee_pos) * POS_SCALE
    row = np.array([*delta, math.cos(4 * dyaw), math.sin(4 * dyaw), 1.0 if closed else -1.0])
    assert row.shape == (PRIMITIVE_DIM,)  # noqa: S101 - layout of PRIMITIVE_DIM
    return row


def observe(env: Any, arm: Any, size: tuple[int, int] = IMAGE_SIZE) -> tuple[np.ndarray, ...]:
    """(image, proprio, measured ee position, measured yaw) of the arm in `env` now."""
    rgb, _ = env.backend.render(env.camera)
    pose = arm.ee_pose()
    width = float(arm.joint_state()["gripper.fingers_m"].sum())
    closed = bool(getattr(arm, "_gripper_closed", False))
    proprio = proprioception(pose.pos, pose.yaw, width, closed)
    return camera_image(rgb, size), proprio, pose.pos.copy(), float(pose.yaw)


class RecordingArm:
    """Passes every call to the real arm; records the observation before each primitive.

    Args:
        env: the environment (for the camera).
        arm: the arm the skills would use.
    """

    def __init__(
        self,
        env: Any,
        arm: Any,
        *,
        focus: str | None = None,
        noise_m: float = 0.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        self._env = env
        self._arm = arm
        self._focus = focus
        self._noise_m = noise_m
        self._rng = rng
        self.steps: list[_Step] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._arm, name)

    def _record(self, target: np.ndarray, yaw: float, closed: bool) -> None:
        image, proprio, pos, measured_yaw = observe(self._env, self._arm)
        keypoint = None
        if self._focus is not None:
            keypoint = crop_point(self._env, self._env.backend.object_poses()[self._focus][0])
        self.steps.append(
            _Step(
                image, proprio, pos, measured_yaw, np.asarray(target, float), yaw, closed, keypoint
            )
        )

    def move_to(self, pose: Pose, *, speed: float | None = None) -> Any:
        """Records the absolute target, then moves (the first move perturbed, DART-style).

        With `noise_m`, the skill's first motion (to above the block, or above the bowl) ends
        off its target by a random offset, while the label stays the skill's target: the next
        primitive is recorded from the perturbed pose, so the policy learns to correct a miss.
        """
        self._record(pose.pos, pose.yaw, self._arm._gripper_closed)
        first = sum(1 for s in self.steps if not np.allclose(s.target, s.ee_pos)) == 1
        if first and self._noise_m > 0 and self._rng is not None and self._rng.random() < 0.5:
            offset = self._rng.normal(0.0, self._noise_m, 3) * np.array([1.0, 1.0, 0.5])
            noisy = pose.pos + offset
            noisy[2] = max(float(noisy[2]), float(pose.pos[2]) - 0.005)  # never into the block
            noisy = self._arm.envelope.clip_point(noisy)
            return self._arm.move_to(Pose(noisy, pose.yaw), speed=speed)
        return self._arm.move_to(pose, speed=speed)

    def move_by(self, delta: np.ndarray, *, speed: float | None = None) -> Any:
        """Records the target the envelope will make of the offset, then moves."""
        cmd = self._arm.commanded_pos
        target, _, _ = self._arm.envelope.clip_move(cmd, np.asarray(delta, dtype=np.float64))
        self._record(target, self._arm.ee_pose().yaw, self._arm._gripper_closed)
        return self._arm.move_by(delta, speed=speed)

    def grasp(self) -> Any:
        """Records 'close here', then closes."""
        self._record(self._arm.ee_pose().pos, self._arm.ee_pose().yaw, True)
        return self._arm.grasp()

    def release(self, width: float | None = None) -> Any:
        """Records 'open here', then opens."""
        self._record(self._arm.ee_pose().pos, self._arm.ee_pose().yaw, False)
        return self._arm.release(width)

    def final(self) -> _Step:
        """The observation after the skill, labelled 'stay, done'."""
        image, proprio, pos, yaw = observe(self._env, self._arm)
        return _Step(image, proprio, pos, yaw, pos, yaw, bool(proprio[-1]))


def nudge_phrases() -> list[str]:
    """Every correction phrasing the demonstrations draw from."""
    out = []
    for direction in NUDGE_DIRECTIONS:
        sideways = NUDGE_SIDEWAYS if direction in ("left", "right") else ()
        for template in (*NUDGE_TEMPLATES, *sideways):
            for magnitude in NUDGE_MAGNITUDES:
                out.append(" ".join(template.format(mag=magnitude, dir=direction).split()))
    return sorted(set(out))


def _observation_step(env: Any, focus: str) -> _Step:
    """The observation now, as a step without a primitive yet (for relabelled samples)."""
    image, proprio, pos, yaw = observe(env, env.arm)
    keypoint = crop_point(env, env.backend.object_poses()[focus][0])
    return _Step(image, proprio, pos, yaw, pos, yaw, bool(proprio[-1]), keypoint)


def pick_primitives(lib: Any, obj: str) -> list[tuple[np.ndarray, float, bool]]:
    """The scripted pick's first two primitives for `obj` from here: above it, then down.

    Mirrors `SkillLibrary.pick` (its aim, clearance-chosen yaw and parameters), so a relabelled
    first step says what the scripted skill would have commanded for another block.
    """
    p = lib.params["pick"]
    pos, obj_yaw = lib.locator.pose(obj)
    half_h = lib.world().half_height(obj)
    xy = pos[:2] + np.array([p.grasp_offset_x, p.grasp_offset_y])
    base_yaw = obj_yaw if lib.env.scene.object(obj).shape == "cube" else 0.0
    yaw = lib._clearest_yaw(obj, xy, base_yaw) + p.grasp_yaw
    above = np.array([xy[0], xy[1], lib._safe_z(pos[2] + half_h + p.approach_height)])
    grasp = np.array([xy[0], xy[1], lib._safe_z(pos[2] + p.grasp_height)])
    return [(above, yaw, False), (grasp, yaw, False)]


def place_primitives(lib: Any, obj: str, bowl: str) -> list[tuple[np.ndarray, float, bool]]:
    """The scripted place's first two primitives of the held `obj` into `bowl` from here."""
    p = lib.params["place"]
    xy, surface, _ = lib._place_target(bowl, obj)
    half_h = lib.world().half_height(obj)
    goal = xy + np.array([p.offset_x, p.offset_y])
    ee = lib.arm.ee_pose()
    carry_z = lib._safe_z(max(ee.pos[2], surface + p.approach_height + 2 * half_h))
    yaw = ee.yaw + p.place_yaw
    release_z = lib._safe_z(surface + p.release_height + half_h + lib._grasp_dz.get(obj, 0.0))
    return [
        (np.array([goal[0], goal[1], carry_z]), yaw, True),
        (np.array([goal[0], goal[1], release_z]), yaw, True),
    ]


def crop_point(env: Any, world: np.ndarray) -> np.ndarray:
    """Where a world point appears in the policy's crop, as (x, y) in [-1, 1]."""
    camera_to_world = env.camera.pose()
    p = np.linalg.inv(camera_to_world) @ np.array([*np.asarray(world, float)[:3], 1.0])
    u, v, w = env.camera.intrinsics() @ p[:3]
    (r0, r1), (c0, c1) = CROP_ROWS, CROP_COLS
    return np.array([(u / w - c0) / (c1 - c0) * 2 - 1, (v / w - r0) / (r1 - r0) * 2 - 1])


def _recorded(env: Any, run: Callable[[], Any], **recording: Any) -> tuple[Any, RecordingArm]:
    """Runs a scripted skill with the arm recorded; returns (result, recorder)."""
    real = env.arm
    recorder = RecordingArm(env, real, **recording)
    env.arm = recorder
    try:
        result = run()
    finally:
        env.arm = real
    return result, recorder


def collect(
    config: CollectConfig, progress: Callable[[int, int, str], None] | None = None
) -> Demonstrations:
    """Records `config.episodes` scripted episodes (see the module docstring).

    Args:
        config: how many, where and with which seed.
        progress: called as (episodes done, total, engine) after each episode.

    Returns:
        The samples; `stats` counts skills attempted and kept.
    """
    from corrigible.policies.language import parse_skill_command
    from corrigible.policies.skills import SkillLibrary
    from corrigible.sim_envs.tabletop_env import TabletopEnv

    demos = Demonstrations()
    counts = {f"{k}_{s}": 0 for k in ("pick", "place", "nudge") for s in ("tried", "kept")}
    counts.update(pick_relabelled=0, place_relabelled=0)
    rng = np.random.default_rng(config.seed)
    nudges = nudge_phrases()
    envs: dict[str, TabletopEnv] = {}
    try:
        for episode in range(config.episodes):
            engine = config.engines[episode % len(config.engines)]
            env = envs.get(engine)
            if env is None:
                env = envs[engine] = TabletopEnv(engine, obs_mode="state")
            env.reset(seed=config.layout_seed(episode))
            lib = SkillLibrary(env)
            blocks = [o.name for o in env.scene.objects if o.kind == "block"]
            bowls = [o.name for o in env.scene.objects if o.kind == "bowl"]
            obj = blocks[int(rng.integers(len(blocks)))]
            bowl = bowls[int(rng.integers(len(bowls)))]
            if rng.random() < config.random_start:
                start = [rng.uniform(0.35, 0.65), rng.uniform(-0.25, 0.25), rng.uniform(0.15, 0.4)]
                env.arm.move_to(Pose(start, float(rng.uniform(-0.5, 0.5))), speed=0.4)
            if config.relabel:
                step = None
                for other in blocks:
                    if other != obj:
                        step = _observation_step(env, other)
                        phrase = rng.choice(PICK_PHRASES).format(obj=other, color=other.split()[0])
                        prims = pick_primitives(lib, other)
                        demos.add_first(step, prims, str(phrase), episode, "pick")
                        counts["pick_relabelled"] += 1
            text = rng.choice(PICK_PHRASES).format(obj=obj, color=obj.split()[0])
            counts["pick_tried"] += 1
            result, rec = _recorded(
                env,
                lambda lib=lib, obj=obj: lib.pick(obj),
                focus=obj,
                noise_m=config.dart_noise_m,
                rng=rng,
            )
            if result.success:
                counts["pick_kept"] += 1
                demos.add_segment(rec.steps, rec.final(), str(text), episode, "pick")
                names = [o.name for o in env.scene.objects]
                for _ in range(config.nudges):
                    phrase = nudges[int(rng.integers(len(nudges)))]
                    (call,) = parse_skill_command(phrase, names)
                    counts["nudge_tried"] += 1
                    nudge, rec = _recorded(
                        env, lambda lib=lib, c=call: lib.move_ee(*c.args["delta"])
                    )
                    if nudge.success and env.arm.holding() == obj:
                        counts["nudge_kept"] += 1
                        demos.add_segment(rec.steps, rec.final(), phrase, episode, "nudge")
                if env.arm.holding() == obj and config.relabel:
                    for other in bowls:
                        if other != bowl:
                            step = _observation_step(env, other)
                            phrase = rng.choice(PLACE_PHRASES).format(
                                obj=obj, bowl=other, bowl_color=other.split()[0]
                            )
                            prims = place_primitives(lib, obj, other)
                            demos.add_first(step, prims, str(phrase), episode, "place")
                            counts["place_relabelled"] += 1
                if env.arm.holding() == obj:
                    text = rng.choice(PLACE_PHRASES).format(
                        obj=obj, bowl=bowl, bowl_color=bowl.split()[0]
                    )
                    counts["place_tried"] += 1
                    result, rec = _recorded(
                        env,
                        lambda lib=lib, obj=obj, bowl=bowl: lib.place(obj, bowl),
                        focus=bowl,
                        noise_m=config.dart_noise_m,
                        rng=rng,
                    )
                    if result.success:
                        counts["place_kept"] += 1
                        demos.add_segment(rec.steps, rec.final(), str(text), episode, "place")
            if progress is not None:
                progress(episode + 1, config.episodes, engine)
    finally:
        for env in envs.values():
            env.close()
    demos.stats = counts
    return demos
