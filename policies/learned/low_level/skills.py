"""The learned low level behind the skill API: `pick` and `place` run by the policy.

`install_low_level(session_or_api, "learned:<checkpoint>")` swaps the robot API's skill library
for a `LearnedSkillLibrary`, which shares the replaced library's state (parameters, locator,
grasp bookkeeping) and dispatches `pick` and `place` (and so `put_first_on_second`) to the
policy; every other skill, and a pick or place the policy was not trained for (another kind of
object, a target that is not a bowl), stays scripted and is traced as `low_level.fallback`.
The policy's primitives go through the same `Arm` calls as the scripted skills (`move_to`,
`grasp`, `release`), so the safety envelope inside the arm is unchanged: heights are clipped into
it as the scripted skills clip them, a target outside it is refused before any motion
(`SafetyError`), and speeds come from the skill's (correctable) parameters. Success is judged
as the scripted skills judge it, from the simulator's state, never by the policy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import CheckpointError, ConfigError, MotionError, SkillError
from corrigible.policies.learned.low_level.demos import (
    observe,
    pick_instruction,
    place_instruction,
    wrap_quarter,
)
from corrigible.policies.learned.low_level.low_level import (
    CAMERA_SIZE,
    LowLevelPolicy,
)
from corrigible.policies.skills import SkillLibrary, SkillResult
from corrigible.policies.skills.specs import SkillParams
from corrigible.robots.arm import Pose
from corrigible.sim_envs.vocabulary import kind_names

MAX_STEPS = 10  # policy steps per skill: the scripted pick and place take 4-5 primitives
_STILL_M = 0.003  # m, a primitive shorter than this (and no turn) moves nothing
LOW_LEVELS = ("scripted", "learned:<checkpoint>")


class LearnedSkillLibrary(SkillLibrary):
    """A skill library whose `pick` and `place` are run by a learned policy.

    Args:
        base: the scripted library it replaces (its state is shared, not copied).
        policy: the trained low level.
        checkpoint: where the policy came from (traced).
        max_steps: policy steps before a skill gives up.
    """

    def __init__(
        self,
        base: SkillLibrary,
        policy: LowLevelPolicy,
        *,
        checkpoint: str = "",
        max_steps: int = MAX_STEPS,
    ) -> None:
        # Deliberately not SkillLibrary.__init__: the state is the replaced library's own, so
        # corrections and recalled knowledge written to `params` reach both.
        self.env = base.env
        self.params = base.params
        self.locator = base.locator
        self._grasp_dz = base._grasp_dz
        self.base = base
        self.policy = policy
        self.checkpoint = checkpoint
        self.max_steps = max_steps
        cam = self.env.camera
        if (cam.width, cam.height) != CAMERA_SIZE:
            raise ConfigError(
                f"the learned low level was trained on the {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} "
                f"scene camera; this scene's is {cam.width}x{cam.height}"
            )
        self.pick_kinds = tuple(policy.meta.get("pick_kinds", ("block",)))
        self.place_kinds = tuple(policy.meta.get("place_kinds", ("bowl",)))

    # -- dispatch -----------------------------------------------------------------------------
    def invoke(self, name: str, *args: Any, **overrides: float) -> SkillResult:
        """`pick` and `place` by the policy; every other skill scripted."""
        if name == "pick":
            return self.pick(*args, **overrides)
        if name == "place":
            return self.place(*args, **overrides)
        return super().invoke(name, *args, **overrides)

    def _fallback(self, skill: str, why: str) -> None:
        self.env.trace.emit("low_level.fallback", skill=skill, why=why)

    def pick(self, obj: str, **overrides: float) -> SkillResult:
        """Picks `obj` up with the learned policy (scripted for kinds it was not trained on)."""
        self.check_object(obj, kinds=(*kind_names(graspable=True), "other"))
        kind = self.env.scene.object(obj).kind
        if kind not in self.pick_kinds:
            self._fallback("pick", f"the policy was trained on {list(self.pick_kinds)}, not {kind}")
            return SkillLibrary.pick(self, obj, **overrides)
        p = self.params_for("pick", overrides)

        def body() -> tuple[bool, str]:
            already = self._already_held(obj)
            if already is not None:
                return already
            obj_z0 = float(self.env.backend.object_poses()[obj][0][2])
            steps = self._run_policy(pick_instruction(obj), p, obj)
            self.arm.wait(0.2)
            lifted = float(self.env.backend.object_poses()[obj][0][2]) - obj_z0
            if self.arm.holding() != obj:
                return False, f"the learned pick did not hold {obj!r} after {steps} steps"
            if lifted < 0.5 * p.lift_height:
                return False, f"{obj!r} rose only {lifted * 100:.1f} cm in the learned pick"
            return True, f"picked {obj!r} (learned, {steps} steps), lifted {lifted * 100:.1f} cm"

        return self.execute("pick", {"obj": obj, "low_level": "learned"}, p, (obj,), body)

    def place(self, obj: str, target: str | list[float], **overrides: float) -> SkillResult:
        """Places the held `obj` in a bowl with the learned policy (scripted for other targets)."""
        self.check_object(obj)
        kind = self.env.scene.object_kind(target) if isinstance(target, str) else None
        if kind not in self.place_kinds:
            self._fallback("place", f"the policy places in {list(self.place_kinds)} only")
            return SkillLibrary.place(self, obj, target, **overrides)
        p = self.params_for("place", overrides)
        # The policy finds the bowl in the image itself: no locator lookup (a bowl the camera
        # cannot see right now, under the hand, is no reason to refuse).
        if target == obj:
            raise SkillError(f"cannot place {obj!r} on itself")

        def body() -> tuple[bool, str]:
            if self.arm.holding() != obj:
                return False, f"not holding {obj!r}; pick it first"
            steps = self._run_policy(place_instruction(obj, target), p, obj)
            self.arm.wait(0.3)
            ok, why = self._placed(obj, target, "bowl")
            return ok, f"{why} (learned, {steps} steps)"

        return self.execute(
            "place", {"obj": obj, "target": target, "low_level": "learned"}, p, (obj,), body
        )

    # -- the policy loop ----------------------------------------------------------------------
    def _run_policy(self, instruction: str, p: SkillParams, obj: str) -> int:
        """Runs the policy until it says done (or `max_steps`); returns the steps taken.

        Raises:
            SafetyError: a primitive aims outside the workspace (refused before any motion).
        """
        arm = self.arm
        still = 0
        # ACT's temporal ensembling: the primitive the previous chunk predicted for this step
        # (world target, yaw, gripper). A motion both chunks agree is a motion goes to the mean
        # of the two targets, so a step whose view is worse (the block hidden under the hand
        # right above it) leans on the one made when it was in view.
        pending: tuple[np.ndarray, float, bool] | None = None
        for step in range(1, self.max_steps + 1):
            t0 = time.perf_counter()
            image, proprio, pos, yaw = observe(self.env, arm, self._image_size)
            prim = self.policy.act(image, proprio, instruction)
            closed = bool(proprio[-1])
            event: dict[str, Any] = {
                "instruction": instruction,
                "step": step,
                "delta_m": np.round(prim.delta_m, 4).tolist(),
                "dyaw_rad": round(prim.dyaw_rad, 4),
                "gripper_closed": prim.gripper_closed,
                "done": round(prim.done, 3),
                "infer_s": round(time.perf_counter() - t0, 4),
            }
            if prim.done > 0.5:
                self.env.trace.emit("low_level.step", **event, action="done")
                return step
            ahead = prim.later[0] if prim.later else None
            previous, pending = (
                pending,
                (
                    None
                    if ahead is None
                    else (pos + ahead.delta_m, yaw + ahead.dyaw_rad, ahead.gripper_closed)
                ),
            )
            if prim.gripper_closed != closed:
                if prim.gripper_closed:
                    grip = arm.grasp()
                    if grip.holding == obj:
                        obj_z = float(self.env.backend.object_poses()[obj][0][2])
                        self._grasp_dz[obj] = float(arm.ee_pose().pos[2] - obj_z)
                        self.locator.picked(obj)
                else:
                    at = arm.ee_pose().pos
                    arm.release()
                    released = at - np.array([0.0, 0.0, self._grasp_dz.get(obj, 0.0)])
                    self.locator.placed(obj, released)
                self.env.trace.emit("low_level.step", **event, action="grip")
                still = 0
                continue
            if np.linalg.norm(prim.delta_m) < _STILL_M and abs(prim.dyaw_rad) < 0.02:
                still += 1
                self.env.trace.emit("low_level.step", **event, action="still")
                if still >= 2:
                    return step
                continue
            still = 0
            target, target_yaw = pos + prim.delta_m, yaw + prim.dyaw_rad
            if previous is not None and previous[2] == closed:
                target = (target + previous[0]) / 2
                target_yaw += wrap_quarter(previous[1] - target_yaw) / 2
                event["ensembled"] = True
            target[2] = self._safe_z(target[2])  # as the scripted skills clip heights
            step_m = target - pos
            downward = step_m[2] < 0 and np.linalg.norm(step_m[:2]) < 0.01
            speed = p.descend_speed if downward else p.speed
            self.env.trace.emit("low_level.step", **event, action="move")
            try:
                arm.move_to(Pose(target, target_yaw), speed=speed)
            except MotionError as exc:  # out of reach: the skill fails, as a scripted one would
                raise MotionError(f"learned {instruction!r} step {step}: {exc}") from exc
        return self.max_steps

    @property
    def _image_size(self) -> tuple[int, int]:
        return (self.policy.config.image_width, self.policy.config.image_height)


def parse_low_level(spec: str) -> tuple[str, Path | None]:
    """("scripted", None) or ("learned", checkpoint path) from `--low-level`.

    Raises:
        ConfigError: anything else (the message lists the forms).
    """
    spec = (spec or "").strip()
    if spec == "scripted":
        return "scripted", None
    if spec.startswith("learned:") and spec[len("learned:") :].strip():
        return "learned", Path(spec[len("learned:") :].strip())
    raise ConfigError(
        f"--low-level must be one of {', '.join(LOW_LEVELS)}, got {spec!r}; "
        "e.g. --low-level learned:runs/ll.pt"
    )


def install_low_level(target: Any, spec: str) -> SkillLibrary:
    """Makes a session's (or robot API's) skills scripted or learned, per `--low-level`.

    Args:
        target: a reset `Session` (its `api`) or a `RobotAPI`.
        spec: "scripted" or "learned:<checkpoint>".

    Returns:
        The skill library now in use.

    Raises:
        ConfigError: a bad spec, a session not reset yet, or another camera.
        CheckpointError: the checkpoint is missing or unreadable.
    """
    kind, path = parse_low_level(spec)
    api = getattr(target, "api", target)
    if api is None or not hasattr(api, "skills"):
        raise ConfigError("install_low_level needs a reset session (session.reset()) or a RobotAPI")
    current = api.skills
    base = current.base if isinstance(current, LearnedSkillLibrary) else current
    if kind == "scripted":
        api.skills = base
        return base
    assert path is not None  # noqa: S101 - parse_low_level gives a path with "learned"
    policy = LowLevelPolicy.load(path)
    learned = LearnedSkillLibrary(base, policy, checkpoint=str(path))
    api.skills = learned
    base.env.trace.emit("low_level.installed", checkpoint=str(path), meta=policy.meta)
    return learned


__all__ = [
    "CheckpointError",
    "LearnedSkillLibrary",
    "install_low_level",
    "parse_low_level",
]
