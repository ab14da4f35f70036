"""`EpisodeRecorder`: samples a running `Session` into frames, language and correction marks.

The recorder hooks the simulated arm's control tick (`SimArm.add_tick_hook`, called after every
20 Hz control step, whoever commands the arm) and the session's event stream (`subscribe`).
Every `ticks_per_frame` ticks it renders a small camera frame and reads the proprioception;
the *action* of that frame is the command the arm sends in the tick right after it (LeRobot's
pairing: `action[t]` is what was applied after observing `observation[t]`), read after the
safety envelope and the speed governor, so it is the command really sent to the servos.

Time is simulated time: between skills (planning, a correction being routed) the world does not
move and no frame is taken, so frame i is taken at i / fps s of simulated time (the
`sim_time_s` column holds the engine clock; it differs from `timestamp` only if ticks were
missed, which the tests check does not happen).

Language is assigned when the episode ends, from the skill events' simulated-time intervals:
each frame gets the innermost skill running at that moment as a short phrase ("pick up the red
block"), the episode's instruction as its task, and, while a corrected skill call runs, the
correction's text. Frames within `precede_window_s` before a correction are flagged.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from corrigible.errors import ConfigError
from corrigible.policies.learned.recording.config_recording import RecordingConfig


class Session(Protocol):
    """What the recorder uses of a `corrigible.Session` (the session sits above `policies`)."""

    env: Any  # the TabletopEnv, after reset
    config: Any  # the SessionConfig (engine, seed)
    episode: str  # the episode id

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    def correct(self, text: str, source: str = "typed") -> None: ...

    def reset(self, *, mention: Iterable[str | None] = ()) -> None: ...

    def run(self, instruction: str | Sequence[str], *, expect: str | None = None) -> Any: ...


EpisodeResult = Any  # corrigible.session.EpisodeResult: expect_holds, executed_ok, sim_s
SessionEvent = Any  # corrigible.session.SessionEvent: kind, data

# Column names of `observation.state` and `action` (units in the names, STYLE rule 5).
STATE_NAMES: tuple[str, ...] = (
    *(f"joint{i}.q_rad" for i in range(1, 8)),
    "ee.x_m",
    "ee.y_m",
    "ee.z_m",
    "ee.yaw_rad",
    "gripper.width_m",
)
ACTION_NAMES: tuple[str, ...] = (
    "ee.target_x_m",
    "ee.target_y_m",
    "ee.target_z_m",
    "ee.target_yaw_rad",
    "gripper.close",  # 1: fingers commanded closed, 0: open
    *(f"joint{i}.target_rad" for i in range(1, 8)),
)


@dataclass(kw_only=True)
class CorrectionMark:
    """One correction the session took, placed on the episode's frame clock."""

    text: str  # what the person said
    source: str  # typed | speech | simulated | ...
    label: str | None  # the router's route: plan | skill | preference | control | undo
    status: str | None  # applied | refused | control | unused (from `correction.applied`)
    skill: str | None  # the skill it concerned, if any
    obj: str | None  # the object it concerned, if any
    reply: str | None  # the session's one-line answer
    time_s: float  # s of simulated time since the recording started, when it was taken
    frame_index: int  # first frame at or after `time_s` (the frame it acts on)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what the dataset stores in `meta/episodes`)."""
        return dataclasses.asdict(self)


@dataclass(kw_only=True)
class RecordedEpisode:
    """One episode as recorded: per-frame arrays and strings, and per-episode facts.

    Frames are in order; `timestamp_s[i] == i / fps` exactly.
    """

    instruction: str  # the top-level instruction (LeRobot's `task`)
    fps: int
    images: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 each
    state: list[np.ndarray] = field(default_factory=list)  # float32 (len(STATE_NAMES),) each
    action: list[np.ndarray] = field(default_factory=list)  # float32 (len(ACTION_NAMES),) each
    sim_time_s: list[float] = field(default_factory=list)  # s since frame 0's engine clock
    skill_phrase: list[str] = field(default_factory=list)  # innermost skill as a phrase
    skill_call: list[str] = field(default_factory=list)  # e.g. "pick('red block')"; "" none
    correction_text: list[str] = field(default_factory=list)  # active correction, "" none
    correction_index: list[int] = field(default_factory=list)  # correction taken here, -1 none
    precedes_correction: list[bool] = field(default_factory=list)
    corrections: list[CorrectionMark] = field(default_factory=list)
    success: bool = False  # expect held (or, without an expect, every step ran ok)
    success_judged_by: str = "expect"  # expect | executed (no predicate was given)
    engine: str = ""
    seed: int = 0
    episode_id: str = ""
    precede_window_s: float = 0.0
    start_sim_time_s: float = 0.0  # the engine clock at frame 0 (trace events carry it), s

    @property
    def length(self) -> int:
        """Number of frames."""
        return len(self.state)

    def timestamps(self) -> np.ndarray:
        """Seconds from the episode's first frame, exactly `frame_index / fps`."""
        return np.arange(self.length, dtype=np.float64) / self.fps


@dataclass
class _Event:
    kind: str
    time_s: float  # since the recording started, simulated
    data: dict[str, Any]


def skill_phrase(skill: str, args: Sequence[Any] | dict[str, Any]) -> str:
    """A short instruction phrase for a skill call, as a person would say it.

    Examples: `pick('red block')` -> "pick up the red block"; `put_first_on_second('red block',
    'blue bowl')` -> "put the red block in the blue bowl"; `go_home()` -> "go back home".
    """
    values = list(args.values()) if isinstance(args, dict) else list(args)
    text = [str(v) for v in values]

    def into(target: str) -> str:
        return "in" if target.endswith(("bowl", "drawer")) else "on"

    if skill == "pick" and text:
        return f"pick up the {text[0]}"
    if skill == "place" and len(text) >= 2:
        return f"place the {text[0]} {into(text[1])} the {text[1]}"
    if skill == "put_first_on_second" and len(text) >= 2:
        return f"put the {text[0]} {into(text[1])} the {text[1]}"
    if skill == "push" and len(text) >= 2:
        return f"push the {text[0]} {text[1]}"
    if skill == "open_drawer":
        return f"open the {text[0]}" if text else "open the drawer"
    if skill == "close_drawer":
        return f"close the {text[0]}" if text else "close the drawer"
    if skill == "go_home":
        return "go back home"
    if skill == "move_ee" and len(values) >= 3:
        return _move_phrase(values)
    return " ".join([skill.replace("_", " "), *text]).strip()


def _move_phrase(values: Sequence[Any]) -> str:
    """A phrase like "move left" or "move higher" for an end-effector move (largest axis)."""
    try:
        d = np.asarray([float(v) for v in values[:3]])
    except (TypeError, ValueError):
        return "move the gripper"
    axis = int(np.argmax(np.abs(d)))
    words = (("back", "forward"), ("right", "left"), ("lower", "higher"))[axis]
    return f"move {words[int(d[axis] > 0)]}"


def _call_text(skill: str, args: Sequence[Any] | dict[str, Any]) -> str:
    values = list(args.values()) if isinstance(args, dict) else list(args)
    return f"{skill}({', '.join(repr(v) for v in values)})"


class EpisodeRecorder:
    """Records one episode of a session (attach after `reset`, detach after `run`).

    Frame i is taken at the first control tick at or after i / fps s of simulated time since
    `attach` (frame 0 at `attach` itself).

    Args:
        session: a session whose scene is built (`session.reset(...)` or a first `run`).
        config: frame rate, image size and the correction window.

    Raises:
        ConfigError: the session has no scene yet, or its arm has no per-tick hook (a real arm
            behind rosbridge: record it from its own topics instead).
    """

    def __init__(self, session: Session, config: RecordingConfig | None = None) -> None:
        self.session = session
        self.config = config or RecordingConfig()
        env = session.env
        if env is None:
            raise ConfigError(
                "the session has no scene yet; call session.reset(mention=[instruction]) "
                "before attaching a recorder"
            )
        arm = env.arm
        if arm is None or not hasattr(arm, "add_tick_hook") or not hasattr(arm, "kin"):
            raise ConfigError(
                f"the session's arm ({type(arm).__name__}) has no control-tick hook; only the "
                "simulated arm can be recorded"
            )
        self._env = env
        self._arm = arm
        self._camera = dataclasses.replace(
            env.camera, width=self.config.image_width, height=self.config.image_height
        )
        if self.config.camera != env.camera.name:
            raise ConfigError(
                f"RecordingConfig.camera {self.config.camera!r} is not this scene's camera; "
                f"use {env.camera.name!r}"
            )
        self._lock = threading.Lock()
        self._t0 = float(env.backend.time)
        self._period_s = 1.0 / self.config.fps
        self._next_s = self._period_s  # frame 0 is taken at `attach`
        self._pending: tuple[float, np.ndarray, np.ndarray] | None = None
        self._frames: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        self._events: list[_Event] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._attached = False

    # -- lifecycle ---------------------------------------------------------------------------
    def attach(self) -> EpisodeRecorder:
        """Starts recording: takes frame 0 now, then one every `ticks_per_frame` ticks."""
        if self._attached:
            raise ConfigError("the recorder is already attached")
        self._attached = True
        self._pending = self._observe()
        # before the run gate's hook, which raises to halt a preempted motion
        self._arm.add_tick_hook(self._on_tick, first=True)
        self._unsubscribe = self.session.subscribe(self._on_event)
        return self

    def detach(self) -> None:
        """Stops recording; the last frame's action is the command the arm holds. Idempotent."""
        if not self._attached:
            return
        self._attached = False
        if self._unsubscribe is not None:
            self._unsubscribe()
        try:
            self._arm.remove_tick_hook(self._on_tick)
        except ValueError:  # the arm was rebuilt (a closed session): nothing left to remove
            pass
        with self._lock:
            if self._pending is not None:
                t, image, state = self._pending
                self._frames.append((t, image, state, self._command()))
                self._pending = None

    def __enter__(self) -> EpisodeRecorder:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    @property
    def frame_count(self) -> int:
        """Frames completed so far (a frame completes at the tick after its observation)."""
        return len(self._frames)

    @property
    def elapsed_s(self) -> float:
        """Seconds of simulated time since the recorder was made."""
        return float(self._env.backend.time) - self._t0

    # -- sampling ----------------------------------------------------------------------------
    def _on_tick(self, arm: Any) -> None:
        with self._lock:
            if self._pending is not None:
                t, image, state = self._pending
                self._frames.append((t, image, state, self._command()))
                self._pending = None
            # Sampled on the engine clock, not by counting calls: a tick whose earlier hook
            # raised (the run gate halting a preempted motion) never reaches this hook.
            now = float(arm.backend.time) - self._t0
            if now >= self._next_s - 1e-6:
                self._pending = self._observe()
                while self._next_s <= now + 1e-6:
                    self._next_s += self._period_s

    def _observe(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(time since start, RGB frame, state vector) of the world now."""
        backend = self._env.backend
        rgb, _ = backend.render(self._camera)
        q, _, fingers = backend.joint_state()
        tf = self._arm.kin.forward(q)
        yaw = float(np.arctan2(tf[1, 0], tf[0, 0]))
        width = float(np.sum(fingers))
        state = np.concatenate([q, tf[:3, 3], [yaw, width]]).astype(np.float32)
        return float(backend.time) - self._t0, np.ascontiguousarray(rgb[..., :3]), state

    def _command(self) -> np.ndarray:
        """The command the arm is sending now, after the safety envelope and speed governor.

        `SimArm.command()`: the end-effector target of this tick and its yaw, the gripper
        command and the joint targets last sent to the servos.
        """
        cmd = self._arm.command()
        pos, yaw = cmd["ee.target_pos_m"], cmd["ee.target_yaw_rad"]
        closed, q_sent = cmd["gripper.closed"], cmd["joint.target_rad"]
        return np.concatenate(
            [np.asarray(pos, dtype=np.float64), [float(yaw), 1.0 if closed else 0.0], q_sent]
        ).astype(np.float32)

    def _on_event(self, event: SessionEvent) -> None:
        if event.kind.startswith(("skill", "correction", "plan", "episode.end")):
            with self._lock:
                self._events.append(_Event(event.kind, self.elapsed_s, dict(event.data)))

    # -- the episode -------------------------------------------------------------------------
    def episode(
        self, instruction: str, result: EpisodeResult | None = None, *, success: bool | None = None
    ) -> RecordedEpisode:
        """The recorded episode, with language and correction marks placed on its frames.

        Args:
            instruction: the top-level instruction (the dataset's task for these frames).
            result: the session's result; success is `expect_holds`, else `executed_ok`.
            success: overrides the result's verdict.

        Raises:
            ConfigError: still attached (detach first), or no frame was recorded.
        """
        if self._attached:
            raise ConfigError("detach the recorder before reading its episode")
        if not self._frames:
            raise ConfigError("no frame was recorded: the arm never moved while attached")
        judged = "expect"
        if success is None and result is not None:
            if result.expect_holds is not None:
                success = bool(result.expect_holds)
            else:
                success, judged = bool(result.executed_ok), "executed"
        ep = RecordedEpisode(
            instruction=instruction,
            fps=self.config.fps,
            success=bool(success),
            success_judged_by=judged,
            engine=str(self.session.config.engine),
            seed=int(self.session.config.seed),
            episode_id=str(self.session.episode),
            precede_window_s=self.config.precede_window_s,
            start_sim_time_s=self._t0,
        )
        for t, image, state, action in self._frames:
            ep.sim_time_s.append(t)
            ep.images.append(image)
            ep.state.append(state)
            ep.action.append(action)
        times = np.asarray(ep.sim_time_s)
        self._place_language(ep, times, instruction)
        self._place_corrections(ep, times)
        return ep

    def _place_language(self, ep: RecordedEpisode, times: np.ndarray, instruction: str) -> None:
        """Innermost skill interval per frame; correction text while a corrected call runs."""
        intervals: list[tuple[float, float, str, str]] = []  # start, end, phrase, call
        open_calls: list[tuple[float, str, Any]] = []
        end_of_run = float(times[-1]) + 1.0
        for ev in self._events:
            if ev.kind == "skill.start":
                open_calls.append((ev.time_s, str(ev.data.get("skill")), ev.data.get("args") or []))
            elif ev.kind == "skill.end" and open_calls:
                start, skill, args = open_calls.pop()
                intervals.append(
                    (start, ev.time_s, skill_phrase(skill, args), _call_text(skill, args))
                )
            elif ev.kind == "skill":  # a library skill, traced when it ends: its span is known
                skill, args = str(ev.data.get("skill")), ev.data.get("args") or {}
                duration = float(ev.data.get("duration_s") or 0.0)
                intervals.append(
                    (
                        ev.time_s - duration,
                        ev.time_s,
                        skill_phrase(skill, args),
                        _call_text(skill, args),
                    )
                )
        for start, skill, args in open_calls:  # a run stopped inside a skill
            intervals.append(
                (start, end_of_run, skill_phrase(skill, args), _call_text(skill, args))
            )
        eps = 1e-6
        for t in times:
            inside = [iv for iv in intervals if iv[0] - eps <= t <= iv[1] + eps]
            if inside:
                best = min(inside, key=lambda iv: iv[1] - iv[0])
                ep.skill_phrase.append(best[2])
                ep.skill_call.append(best[3])
            else:
                ep.skill_phrase.append(instruction)
                ep.skill_call.append("")

    def _place_corrections(self, ep: RecordedEpisode, times: np.ndarray) -> None:
        """Correction marks, their frames, the active correction text and the YAY window."""
        n = len(times)
        ep.correction_index = [-1] * n
        ep.correction_text = [""] * n
        ep.precedes_correction = [False] * n
        applied = [e for e in self._events if e.kind == "correction.applied"]
        replies = [e for e in self._events if e.kind == "correction.reply"]
        taken = [e for e in self._events if e.kind == "correction"]
        ends = [e.time_s for e in self._events if e.kind == "skill.end"]
        used_applied: set[int] = set()
        used_replies: set[int] = set()
        for ev in taken:
            text = str(ev.data.get("text", ""))
            detail = _first_match(applied, text, used_applied)
            reply = _first_match(replies, text, used_replies)
            route = ev.data.get("route") if isinstance(ev.data.get("route"), dict) else {}
            frame = int(np.searchsorted(times, ev.time_s - 1e-9))
            mark = CorrectionMark(
                text=text,
                source=str(ev.data.get("source", "typed")),
                label=(detail.data.get("label") if detail else None) or route.get("label"),
                status=(detail.data.get("status") if detail else None)
                or (reply.data.get("status") if reply else None),
                skill=(detail.data.get("skill") if detail else None) or ev.data.get("skill"),
                obj=detail.data.get("obj") if detail else None,
                reply=reply.data.get("reply") if reply else None,
                time_s=float(ev.time_s),
                frame_index=min(frame, n - 1),
            )
            index = len(ep.corrections)
            ep.corrections.append(mark)
            if frame < n:
                ep.correction_index[frame] = index
            window = self.config.precede_window_s
            for i in np.nonzero((times < ev.time_s) & (times >= ev.time_s - window))[0]:
                ep.precedes_correction[int(i)] = window > 0
            if mark.status == "applied":  # its text is the language until the redone call ends
                until = next((t for t in ends if t > ev.time_s), float(times[-1]))
                for i in np.nonzero((times >= ev.time_s) & (times <= until + 1e-6))[0]:
                    ep.correction_text[int(i)] = text


def _first_match(events: list[_Event], text: str, used: set[int]) -> _Event | None:
    """The first not yet used event about `text` (a correction's follow-up events)."""
    for i, ev in enumerate(events):
        if i not in used and str(ev.data.get("text", "")) == text:
            used.add(i)
            return ev
    return None


class ScheduledCorrections:
    """Gives typed corrections at set moments of simulated time, as a person typing mid-motion.

    Each `(text, at_s)` is given through `session.correct` at the first control tick at or after
    `at_s` s of simulated time since `start()`; the session preempts the moving arm and the
    correction loop takes it (the session must be `interactive=True`).
    """

    def __init__(self, session: Session, schedule: Sequence[tuple[str, float]]) -> None:
        if session.env is None or session.env.arm is None:
            raise ConfigError("reset the session before scheduling corrections")
        for text, at in schedule:
            if not (np.isfinite(at) and at >= 0):
                raise ConfigError(f"correction {text!r}: time must be finite and >= 0 s, got {at}")
        self.session = session
        self._todo = sorted(schedule, key=lambda item: item[1])
        self.given: list[tuple[str, float]] = []
        self._t0 = float(session.env.backend.time)
        self._arm = session.env.arm

    def start(self) -> ScheduledCorrections:
        """Installs the tick hook."""
        self._arm.add_tick_hook(self._on_tick)
        return self

    def stop(self) -> None:
        """Removes the tick hook (idempotent)."""
        try:
            self._arm.remove_tick_hook(self._on_tick)
        except ValueError:
            pass

    def _on_tick(self, arm: Any) -> None:
        now = float(arm.backend.time) - self._t0
        while self._todo and self._todo[0][1] <= now + 1e-9:
            text, _ = self._todo.pop(0)
            self.given.append((text, now))
            self.session.correct(text)


def record_episode(
    session: Session,
    instruction: str | Sequence[str],
    *,
    expect: str | None = None,
    config: RecordingConfig | None = None,
    corrections_at: Sequence[tuple[str, float]] = (),
) -> tuple[RecordedEpisode, EpisodeResult]:
    """Runs one episode of `session` while recording it.

    Args:
        session: a fresh session (its scene is built here if it was not).
        instruction: what to run (several instructions run in order, one task "a / b").
        expect: the success predicate.
        config: the recording settings.
        corrections_at: typed corrections given mid-run at these simulated times (s).

    Returns:
        The recorded episode and the session's result.
    """
    texts = [instruction] if isinstance(instruction, str) else list(instruction)
    if session.env is None:
        session.reset(mention=[*texts, expect])
    recorder = EpisodeRecorder(session, config)
    schedule = ScheduledCorrections(session, corrections_at) if corrections_at else None
    recorder.attach()
    if schedule is not None:
        schedule.start()
    try:
        result = session.run(texts, expect=expect)
    finally:
        if schedule is not None:
            schedule.stop()
        recorder.detach()
    return recorder.episode(" / ".join(texts), result), result


__all__ = [
    "ACTION_NAMES",
    "STATE_NAMES",
    "CorrectionMark",
    "EpisodeRecorder",
    "RecordedEpisode",
    "ScheduledCorrections",
    "record_episode",
    "skill_phrase",
]
