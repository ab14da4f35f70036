"""Fault injection for evaluating repair: a YAML file of faults, applied in real physics.

A fault file (documented in README.md) lists faults; each episode draws at most one of them
from its seed:

    faults:
      - kind: grasp_slip          # the first object picked is slippery: it slips out of the
        probability: 1.0          #   fingers when lifted faster than `slip_speed` (m/s)
        slip_speed: 0.15
      - kind: wrong_object        # the first placing call acts on another graspable object
      - kind: wrong_target        # the first placing call goes to another container
      - kind: placement_offset    # every placement of the first placed object lands `offset`
        offset: [0.07, 0.0]       #   (m, world x/y) off: a miscalibrated place
      - kind: perception_offset   # the camera reads every position `offset` off (a camera
        offset: [0.03, 0.0]       #   moved after calibration); the camera cannot see it itself
      - kind: pose_noise          # every perceived position gets Gaussian noise of `noise`
        noise: 0.012              #   (m, per axis in the table plane), drawn per look
      - kind: knocked_over        # once the first placed object is placed, it is knocked over
        offset: [0.0, 0.09]       #   |offset| (m) beside its target, on the clearest side,
                                  #   lying on its side
    pick: cycle                   # cycle: episode i gets fault i mod n; random: drawn by seed

Buggy programs (wrong object names, API misuse, missing steps, wrong loop bounds, wrong place
targets) are program files run by `corrigible repair FILE` and the evaluation, not faults here.

`grasp_slip` is physical: the fingers open when the held object rises faster than the slip
speed (a tick hook on the arm), so only a slower lift repairs it. The others act in the
around-skill chain, innermost (just outside the tracer), so the repair's own overrides reach
the skill through them, as a real miscalibration would add to any command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corrigible.errors import ConfigError
from corrigible.policies.middleware import Proceed, SkillCall
from corrigible.sim_envs.vocabulary import kind_names, kind_of_name

FaultKind = Literal[
    "grasp_slip",
    "wrong_object",
    "wrong_target",
    "placement_offset",
    "perception_offset",
    "pose_noise",
    "knocked_over",
]

# The failure class each injected fault should be localised as (class accuracy is measured
# against this).
EXPECTED_CLASS: dict[str, str] = {
    "grasp_slip": "grasp_failure",
    "wrong_object": "wrong_object",
    "wrong_target": "wrong_target",
    "placement_offset": "placement_inaccuracy",
    "perception_offset": "perception_error",
    "pose_noise": "perception_error",
    "knocked_over": "placement_inaccuracy",
}
_PLACING = ("put_first_on_second", "place")


class Fault(BaseModel):
    """One fault of a fault file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    probability: float = Field(default=1.0, ge=0.0, le=1.0)  # of striking in its episode
    slip_speed: float = Field(default=0.15, gt=0.0, le=1.0)  # m/s, grasp_slip only
    # m, world x/y: placement_offset (default 7 cm), perception_offset, knocked_over
    offset: tuple[float, float] | None = None
    noise: float = Field(default=0.012, gt=0.0, le=0.05)  # m, pose_noise only

    def shift(self) -> tuple[float, float]:
        """`offset`, or this kind's default one."""
        if self.offset is not None:
            return self.offset
        return {"perception_offset": (0.03, 0.0), "knocked_over": (0.0, 0.09)}.get(
            self.kind, (0.07, 0.0)
        )


class FaultFile(BaseModel):
    """A fault file: the faults and how episodes pick one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[Fault] = Field(min_length=1)
    pick: Literal["cycle", "random"] = "cycle"

    @classmethod
    def load(cls, path: str | Path) -> FaultFile:
        """Reads and checks a YAML fault file.

        Raises:
            ConfigError: unreadable, not YAML, or a bad field (named, with the fix).
        """
        from corrigible.boundary import load_yaml

        data = load_yaml(Path(path), what="fault file")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(
                f"fault file {path}: {where}: {first['msg']}; kinds are "
                f"{list(EXPECTED_CLASS)} (corrections/repair/README.md)"
            ) from exc

    def draw(self, episode: int, seed: int) -> Fault | None:
        """The fault of one episode (None: no fault strikes, by its probability)."""
        rng = np.random.default_rng(seed)
        if self.pick == "cycle":
            fault = self.faults[episode % len(self.faults)]
        else:
            fault = self.faults[int(rng.integers(len(self.faults)))]
        return fault if rng.random() < fault.probability else None


class FaultInjector:
    """Applies one fault to an episode: an around-skill link (and an arm hook for slips).

    Args:
        fault: what to inject.
        scene_names: the objects in the scene (for swaps).
        arm: the episode's arm (grasp_slip hooks into its control loop; knocked_over moves
            objects through its backend).
        trace: where "fault.injected" events go (a callable taking kind and fields).
        locator: where programs and skills see objects (perception_offset and pose_noise
            act on it); None: those two faults cannot act.
        seed: the episode's seed (pose_noise draws from it).
    """

    def __init__(
        self,
        fault: Fault,
        scene_names: list[str],
        arm: Any,
        trace: Any,
        *,
        locator: Any = None,
        seed: int = 0,
    ) -> None:
        self.fault = fault
        self.names = list(scene_names)
        self.arm = arm
        self.trace = trace
        self.struck = 0  # times the fault acted
        self.subject: str | None = None  # the object it is about, once chosen
        self._swapped = False
        self._last_z: float | None = None
        self._slipping = False
        self._locator = locator
        self._knocked = False
        if fault.kind == "grasp_slip":
            arm.add_tick_hook(self._slip_hook)
        if fault.kind in ("perception_offset", "pose_noise") and locator is not None:
            self._perturb(locator, np.random.default_rng(seed))

    def close(self) -> None:
        """Removes the arm hook (twice: fine)."""
        if self.fault.kind == "grasp_slip" and self._slip_hook in getattr(self.arm, "_hooks", []):
            self.arm.remove_tick_hook(self._slip_hook)

    def _emit(self, **fields: Any) -> None:
        self.struck += 1
        self.trace("fault.injected", fault=self.fault.kind, **fields)

    # -- the around-skill link ---------------------------------------------------------------------
    def around_skill(self, call: SkillCall, proceed: Proceed) -> bool:  # noqa: D102
        kind = self.fault.kind
        if call.name in ("pick", *_PLACING) and self.subject is None and call.obj is not None:
            self.subject = call.obj
        if kind == "wrong_object" and call.name in _PLACING and not self._swapped:
            other = self._other(call.obj, avoid=call.target, graspable=True)
            if other is not None:
                self._swapped = True
                self._emit(skill=call.name, asked=call.obj, used=other)
                call.args[0] = other
        elif kind == "wrong_target" and call.name in _PLACING and not self._swapped:
            if isinstance(call.target, str):
                other = self._other(call.target, avoid=call.obj, container=True, furniture=False)
                if other is not None:
                    self._swapped = True
                    self._emit(skill=call.name, asked=call.target, used=other)
                    call.target = other
        elif kind == "knocked_over" and call.name in _PLACING and call.obj == self.subject:
            done = proceed(call)
            if done and not self._knocked:
                self._knocked = True
                self._knock_over(call.obj)
            return done
        elif kind == "placement_offset" and call.name in _PLACING and call.obj == self.subject:
            base = {**call.recalled.get("place", {}), **call.corrected.get("place", {})}
            dx, dy = self.fault.shift()
            shifted = {
                "offset_x": base.get("offset_x", 0.0) + dx,
                "offset_y": base.get("offset_y", 0.0) + dy,
            }
            call.corrected = {
                **call.corrected,
                "place": {**call.corrected.get("place", {}), **shifted},
            }
            self._emit(skill=call.name, obj=call.obj, offset=[dx, dy])
        return proceed(call)

    def _other(self, name: str | None, *, avoid: Any = None, **flags: bool) -> str | None:
        """Another scene object with the same kind flags (the same kind first), not `avoid`."""
        if name is None:
            return None
        pool = [
            n
            for n in self.names
            if n not in (name, avoid) and kind_of_name(n) in kind_names(**flags)
        ]
        same = [n for n in pool if kind_of_name(n) == kind_of_name(name)]
        return (same or pool or [None])[0]

    # -- perception and the world ----------------------------------------------------------------
    def _perturb(self, locator: Any, rng: np.random.Generator) -> None:
        """Shifts (perception_offset) or jitters (pose_noise) what the locator reports."""
        read = locator.pose
        dx, dy = self.fault.shift()

        def pose(name: str) -> tuple[np.ndarray, float]:
            pos, yaw = read(name)
            if self.fault.kind == "perception_offset":
                moved = pos + np.array([dx, dy, 0.0])
            else:
                moved = pos + np.append(rng.normal(0.0, self.fault.noise, 2), 0.0)
            if not self.struck:
                self._emit(
                    obj=name, seen=np.round(pos, 4).tolist(), reported=np.round(moved, 4).tolist()
                )
            return moved, yaw

        locator.pose = pose  # this episode's locator only

    def _knock_over(self, obj: str) -> None:
        """Lays `obj` on its side beside where it was placed (a bump of the table)."""
        backend = self.arm.backend
        poses = backend.object_poses()
        pos = poses[obj][0]
        # `offset`'s length, towards whichever side of the four is clearest of other objects.
        reach = float(np.hypot(*self.fault.shift()))
        others = [p[:2] for n, (p, _) in poses.items() if n != obj]
        sides = [np.array(d) * reach for d in ((0, 1), (0, -1), (1, 0), (-1, 0))]
        dx, dy = max(
            sides,
            key=lambda s: min(
                (float(np.linalg.norm(pos[:2] + s - o)) for o in others), default=1.0
            ),
        )
        lying = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0])  # 90 deg about x
        target = np.array([pos[0] + dx, pos[1] + dy, max(float(pos[2]), 0.025) + 0.01])
        backend.set_object_pose(obj, target, lying)
        self._emit(obj=obj, moved_to=np.round(target, 4).tolist())

    # -- the slip --------------------------------------------------------------------------------
    def _slip_hook(self, arm: Any) -> None:
        """Opens the fingers when the slippery object rises faster than the slip speed."""
        held = arm.holding()
        z = float(arm.commanded_pos[2])
        last, self._last_z = self._last_z, z
        if held is None or held != self.subject or last is None:
            self._slipping = False
            return
        speed = (z - last) / arm._dt  # the arm's control period, s
        if speed > self.fault.slip_speed and not self._slipping:
            self._slipping = True  # one event per slip; the fingers take a few ticks to open
            arm.backend.set_finger_target(arm._open_width)
            self._emit(obj=held, lift_speed=round(speed, 4))


__all__ = ["EXPECTED_CLASS", "Fault", "FaultFile", "FaultInjector", "FaultKind"]
