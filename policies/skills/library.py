"""The language-conditioned low-level skills, written once against the `Arm` and `Backend` APIs.

Each skill takes object names, uses its named parameters (`skills.params`), returns a
`SkillResult` and writes one `skill` trace event with its arguments, parameters, start and end
state, success and duration. Physical failures (a missed grasp, a slipped object) come back as
`success=False`; invalid requests (unknown object, closed drawer) raise `SkillError` or
`UnknownObjectError` before the arm moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from corrigible.errors import MotionError, SkillError, UnknownObjectError, did_you_mean
from corrigible.policies.perception import ObjectLocator, PrivilegedLocator
from corrigible.policies.skills.params import (
    DEFAULT_PARAMS,
    DrawerParams,
    MoveParams,
    PickParams,
    PlaceParams,
    PushParams,
    SkillParams,
)
from corrigible.robots.arm import Pose
from corrigible.sim_envs.locations import canonical_location, location_xy
from corrigible.sim_envs.objects import DRAWER_INTERIOR, DRAWER_TRAVEL
from corrigible.sim_envs.predicates import WorldState, _in, _on
from corrigible.sim_envs.tabletop_env import TabletopEnv

DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (0.0, 1.0, 0.0),
    "right": (0.0, -1.0, 0.0),
    "forward": (1.0, 0.0, 0.0),
    "backward": (-1.0, 0.0, 0.0),
    "up": (0.0, 0.0, 1.0),
    "down": (0.0, 0.0, -1.0),
}


@dataclass(kw_only=True)
class SkillResult:
    """What a skill did."""

    skill: str
    args: dict[str, Any]
    params: dict[str, float]
    success: bool
    message: str
    start_state: dict[str, Any] = field(default_factory=dict)
    end_state: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0  # simulated seconds
    wall_s: float = 0.0  # wall-clock seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def _jsonable_target(target: str | list[float] | np.ndarray) -> str | list[float]:
    if isinstance(target, str):
        return target
    return [round(float(v), 4) for v in np.asarray(target).reshape(-1)]


class SkillLibrary:
    """Skills bound to one environment; `params` holds the current (correctable) parameters.

    Args:
        env: a reset `TabletopEnv`.
        params: per-skill parameters; missing skills use `DEFAULT_PARAMS`.
    """

    def __init__(
        self,
        env: TabletopEnv,
        params: dict[str, SkillParams] | None = None,
        locator: ObjectLocator | None = None,
    ) -> None:
        self.env = env
        self.params: dict[str, SkillParams] = dict(DEFAULT_PARAMS)
        self.params.update(params or {})
        # Where skills aim. Success checks (did it lift, is it in the bowl) use the simulator's
        # state, as a monitor would; aiming uses this locator (the camera in programs).
        self.locator: ObjectLocator = locator or PrivilegedLocator(env.backend)
        self._grasp_dz: dict[str, float] = {}

    # -- helpers ---------------------------------------------------------------------------
    @property
    def arm(self):  # noqa: ANN201 - SimArm
        """The environment's arm."""
        return self.env.arm

    def world(self) -> WorldState:
        """Privileged snapshot of the scene now."""
        b = self.env.backend
        return WorldState(
            scene=self.env.scene,
            positions={n: p for n, (p, _) in b.object_poses().items()},
            articulations=b.articulation_positions(),
        )

    def object_names(self) -> list[str]:
        """Every object in the scene."""
        return [o.name for o in self.env.scene.objects]

    def _check_object(self, name: str, *, kinds: tuple[str, ...] | None = None) -> str:
        names = self.object_names()
        if name not in names:
            raise UnknownObjectError(
                f"there is no {name!r} on the table; objects: {names}." + did_you_mean(name, names)
            )
        kind = self.env.scene.object(name).kind
        if kinds is not None and kind not in kinds:
            raise SkillError(f"{name!r} is a {kind}; this skill needs one of {list(kinds)}")
        return name

    def _p(self, skill: str, overrides: dict[str, float] | None) -> SkillParams:
        params = self.params[skill]
        return params.with_updates(overrides) if overrides else params

    def _state(self, *objects: str) -> dict[str, Any]:
        w = self.world()
        return {
            "ee_pos": self.arm.ee_pose().pos.round(4).tolist(),
            "holding": self.arm.holding(),
            "objects": {o: w.positions[o].round(4).tolist() for o in objects if o in w.positions},
            "articulations": {k: round(v, 4) for k, v in w.articulations.items()},
        }

    def _run(
        self,
        skill: str,
        args: dict[str, Any],
        params: SkillParams,
        objects: tuple[str, ...],
        body: Callable[[], tuple[bool, str]],
    ) -> SkillResult:
        start = self._state(*objects)
        t_sim, t_wall = self.env.backend.time, time.perf_counter()
        try:
            success, message = body()
        except MotionError as exc:
            success, message = False, str(exc)
        result = SkillResult(
            skill=skill,
            args=args,
            params=params.to_dict(),
            success=success,
            message=message,
            start_state=start,
            end_state=self._state(*objects),
            duration_s=self.env.backend.time - t_sim,
            wall_s=time.perf_counter() - t_wall,
        )
        self.env.trace.emit("skill", **result.to_dict())
        return result

    def _safe_z(self, z: float) -> float:
        lo, hi = self.arm.envelope.config.z_range
        return float(np.clip(z, lo, hi))

    # -- skills ----------------------------------------------------------------------------
    def pick(self, obj: str, **overrides: float) -> SkillResult:
        """Picks `obj` up from above and lifts it."""
        self._check_object(obj, kinds=("block", "cylinder", "other"))
        p: PickParams = self._p("pick", overrides)  # type: ignore[assignment]

        def body() -> tuple[bool, str]:
            held = self.arm.holding()
            if held is not None and held != obj:
                return False, f"already holding {held!r}; place it first"
            if held == obj:
                return True, f"already holding {obj!r}"
            pos, obj_yaw = self.locator.pose(obj)
            spec = self.env.scene.object(obj)
            world = self.world()
            half_h = world.half_height(obj)
            xy = pos[:2] + np.array([p.grasp_offset_x, p.grasp_offset_y])
            base_yaw = obj_yaw if spec.shape == "cube" else 0.0
            yaw = self._clearest_yaw(obj, xy, base_yaw)
            if self.arm._gripper_closed:
                self.arm.release()
            above = self._safe_z(pos[2] + half_h + p.approach_height)
            self.arm.move_to(Pose([xy[0], xy[1], above], yaw), speed=p.speed)
            grasp_z = self._safe_z(pos[2] + p.grasp_height)
            self.arm.move_to(Pose([xy[0], xy[1], grasp_z], yaw), speed=p.descend_speed)
            grip = self.arm.grasp()
            if grip.holding != obj:
                self.arm.release()
                self.arm.move_by([0, 0, p.approach_height], speed=p.speed)
                return False, f"grasp missed {obj!r} (fingers touched {grip.contacts or 'nothing'})"
            obj_z0 = float(self.env.backend.object_poses()[obj][0][2])
            self._grasp_dz[obj] = float(self.arm.ee_pose().pos[2] - obj_z0)
            self.arm.move_by([0, 0, p.lift_height], speed=p.speed)
            self.arm.wait(0.2)
            lifted = float(self.env.backend.object_poses()[obj][0][2]) - obj_z0
            if self.arm.holding() != obj or lifted < 0.5 * p.lift_height:
                return (
                    False,
                    f"{obj!r} slipped out of the gripper while lifting "
                    f"(rose {lifted * 100:.1f} cm)",
                )
            return True, f"picked {obj!r} and lifted it {lifted * 100:.1f} cm"

        return self._run("pick", {"obj": obj}, p, (obj,), body)

    def _clearest_yaw(self, obj: str, xy: np.ndarray, base_yaw: float) -> float:
        """Of the two top-down grasps of a square footprint, the one with the most clearance.

        That is the one whose fingers land farthest from neighbouring objects (the open fingers
        reach ~5 cm either side).
        """
        world = self.world()
        others = []
        for n in self.locator.names():
            if n == obj or self.env.scene.object_kind(n) is None:
                continue
            radius = 0.075 if self.env.scene.object_kind(n) == "bowl" else world.half_width(n)
            others.append((self.locator.pose(n)[0][:2], radius))
        best, best_clearance = 0.0, -np.inf
        for candidate in (base_yaw, base_yaw + np.pi / 2):
            yaw = (candidate + np.pi / 2) % np.pi - np.pi / 2  # the gripper is symmetric
            side = np.array([-np.sin(yaw), np.cos(yaw)]) * 0.05  # fingers open along EE y
            fingers = (xy + side, xy - side)
            clearance = min(
                (np.linalg.norm(f - c) - r for f in fingers for c, r in others), default=np.inf
            )
            if clearance > best_clearance + 1e-6:
                best, best_clearance = yaw, clearance
        return float(best)

    def _place_target(self, target: str | list[float], obj: str) -> tuple[np.ndarray, float, str]:
        """(target xy, surface height, kind) for a place target.

        The target is a bowl, object, drawer, named location or an (x, y) position on the table.
        """
        world = self.world()
        if not isinstance(target, str):
            xy = np.asarray(target, dtype=np.float64).reshape(-1)[:2]
            if xy.shape != (2,) or not np.all(np.isfinite(xy)):
                raise SkillError(
                    f"a place target position must be [x, y] in metres, got {target!r}"
                )
            return xy, 0.0, "position"
        if target in self.object_names():
            spec = self.env.scene.object(target)
            if spec.kind == "drawer":
                opening = world.articulations[target]
                if opening < 0.6 * DRAWER_TRAVEL:
                    raise SkillError(
                        f"the {target} is closed ({opening * 100:.0f} cm open); open it first"
                    )
                (x0, x1), (y0, y1), (z0, _) = DRAWER_INTERIOR
                center = np.asarray(spec.pos) + np.asarray(spec.joint.axis) * opening
                # Aim at the half of the drawer that has left the cabinet.
                return center[:2] + np.array([x0 + 0.05, (y0 + y1) / 2]), z0 + 0.005, "drawer"
            if target == obj:
                raise SkillError(f"cannot place {obj!r} on itself")
            pos = self.locator.pose(target)[0]
            if spec.kind == "bowl":
                # Land on whatever already lies in the bowl rather than through it.
                surface = pos[2] + 0.008
                for other in self.locator.names():
                    if other in (obj, target) or self.env.scene.object_kind(other) in (
                        None,
                        "bowl",
                        "drawer",
                    ):
                        continue
                    opos = self.locator.pose(other)[0]
                    if np.linalg.norm(opos[:2] - pos[:2]) < 0.06:
                        surface = max(surface, float(opos[2]) + world.half_height(other))
                return pos[:2], surface, "bowl"
            return pos[:2], pos[2] + world.half_height(target), "object"
        try:
            name = canonical_location(target)
        except Exception as exc:
            names = self.object_names()
            raise UnknownObjectError(
                f"there is no {target!r} to place on; objects: {names}; "
                "or a location like 'top left corner'." + did_you_mean(target, names)
            ) from exc
        return location_xy(name), 0.0, "location"

    def place(self, obj: str, target: str | list[float], **overrides: float) -> SkillResult:
        """Places the held `obj` in or on `target` (bowl, object, drawer or named location)."""
        self._check_object(obj)
        p: PlaceParams = self._p("place", overrides)  # type: ignore[assignment]
        xy, surface, kind = self._place_target(target, obj)

        def body() -> tuple[bool, str]:
            if self.arm.holding() != obj:
                return False, f"not holding {obj!r}; pick it first"
            world = self.world()
            half_h = world.half_height(obj)
            grasp_dz = self._grasp_dz.get(obj, 0.0)
            goal = xy + np.array([p.offset_x, p.offset_y])
            carry_z = self._safe_z(
                max(self.arm.ee_pose().pos[2], surface + p.approach_height + 2 * half_h)
            )
            yaw = self.arm.ee_pose().yaw
            self.arm.move_to(Pose([goal[0], goal[1], carry_z], yaw), speed=p.speed)
            release_z = self._safe_z(surface + p.release_height + half_h + grasp_dz)
            self.arm.move_to(Pose([goal[0], goal[1], release_z], yaw), speed=p.descend_speed)
            self.arm.release()
            self.arm.move_by([0, 0, p.approach_height], speed=p.speed)
            self.arm.wait(0.3)
            return self._placed(obj, target, kind)

        return self._run("place", {"obj": obj, "target": _jsonable_target(target)}, p, (obj,), body)

    def _placed(self, obj: str, target: str, kind: str) -> tuple[bool, str]:
        world = self.world()
        if kind in ("bowl", "drawer"):
            ok, why = _in(world, obj, target)
        elif kind == "object":
            ok, why = _on(world, obj, target)
        elif kind == "position":
            d = float(
                np.linalg.norm(world.positions[obj][:2] - np.asarray(target, dtype=float)[:2])
            )
            ok, why = d < 0.03, f"{obj} is {d * 100:.1f} cm from [{target[0]:.3f}, {target[1]:.3f}]"
        else:
            from corrigible.sim_envs.predicates import _at

            ok, why = _at(world, obj, target)
        return ok, why

    def put_first_on_second(
        self, obj: str, target: str | list[float], **overrides: float
    ) -> SkillResult:
        """Picks `obj` and places it in or on `target` (Code as Policies' primitive)."""
        self._check_object(obj, kinds=("block", "cylinder", "other"))
        self._place_target(target, obj)  # validate before moving
        picked = self.pick(obj)
        if not picked.success:
            return picked
        return self.place(obj, target)

    def push(
        self, obj: str, direction: str, distance: float | None = None, **overrides: float
    ) -> SkillResult:
        """Pushes `obj` along the table towards `direction` (left/right/forward/backward)."""
        self._check_object(obj, kinds=("block", "cylinder", "bowl", "other"))
        if direction not in ("left", "right", "forward", "backward"):
            raise SkillError(
                f"push direction must be left, right, forward or backward, got {direction!r}"
            )
        p: PushParams = self._p("push", overrides)  # type: ignore[assignment]
        dist = p.distance if distance is None else float(distance)
        dvec = np.array(DIRECTIONS[direction])

        def body() -> tuple[bool, str]:
            if self.arm.holding() is not None:
                return False, "holding an object; place it before pushing"
            start = self.env.backend.object_poses()[obj][0].copy()
            aim = self.locator.pose(obj)[0]
            radius = (
                0.075 if self.env.scene.object(obj).kind == "bowl" else self.world().half_width(obj)
            )
            behind = aim - dvec * (radius + p.standoff)
            yaw = 0.0 if direction in ("forward", "backward") else np.pi / 2
            self.arm.grasp()
            self.arm.move_to(Pose([behind[0], behind[1], self._safe_z(0.12)], yaw), speed=0.25)
            self.arm.move_to(
                Pose([behind[0], behind[1], self._safe_z(p.contact_height)], yaw), speed=0.12
            )
            self.arm.move_by(dvec * (dist + p.standoff - 0.01), speed=p.speed)
            self.arm.move_by([0, 0, 0.10], speed=0.2)
            self.arm.release()
            moved = float((self.env.backend.object_poses()[obj][0] - start) @ dvec)
            ok = moved > 0.6 * dist
            return ok, f"{obj!r} moved {moved * 100:.1f} cm {direction} (asked {dist * 100:.1f})"

        return self._run(
            "push", {"obj": obj, "direction": direction, "distance": dist}, p, (obj,), body
        )

    def move_ee(self, delta: np.ndarray | list[float], **overrides: float) -> SkillResult:
        """Moves the end effector by a relative offset (m), clipped to the safety envelope."""
        p: MoveParams = self._p("move_ee", overrides)  # type: ignore[assignment]
        delta = np.asarray(delta, dtype=np.float64).reshape(3)

        def body() -> tuple[bool, str]:
            r = self.arm.move_by(delta, speed=p.speed)
            note = " (clipped by the safety envelope)" if r.clipped else ""
            return r.reached, f"moved by {np.round(r.applied, 3).tolist()} m{note}"

        return self._run("move_ee", {"delta": delta.round(4).tolist()}, p, (), body)

    def _handle(self, drawer: str, p: DrawerParams) -> tuple[np.ndarray, np.ndarray]:
        spec = self.env.scene.object(drawer)
        opening = self.world().articulations[drawer]
        axis = np.asarray(spec.joint.axis)
        bar = spec.link_geoms[-1]  # the handle bar is the link's last geom
        # Aim at the drawer front's centre line: the robot assumes a centred handle, so an
        # off-centre one (sim_envs make_drawer's handle_offset_y) is hidden from it and is
        # corrected through `grasp_offset_y`, as the parameter is meant to be.
        nominal = np.array([bar.pos[0], 0.0, bar.pos[2]])
        handle = np.asarray(spec.pos) + nominal + axis * opening
        handle = handle + np.array([0.0, p.grasp_offset_y, p.grasp_height])
        return handle, axis

    def _drawer_motion(self, drawer: str, p: DrawerParams, sign: float) -> tuple[bool, str]:
        if self.arm.holding() is not None:
            return False, "holding an object; place it before using the drawer"
        handle, axis = self._handle(drawer, p)
        yaw = np.pi / 2  # fingers close along x, across the bar that runs along y
        self.arm.release(width=0.022)  # a narrow opening clears the cabinet front
        self.arm.move_to(Pose(handle + [0, 0, p.approach_height], yaw), speed=0.25)
        self.arm.move_to(Pose(handle, yaw), speed=0.08)
        self.arm.grasp()
        self.arm.move_by(axis * p.pull_distance * sign, speed=p.speed)
        self.arm.release()
        self.arm.move_by([0, 0, p.approach_height], speed=0.2)
        opening = self.world().articulations[drawer]
        return opening, f"{drawer} is open {opening * 100:.1f} cm"

    def open_drawer(self, drawer: str = "drawer", **overrides: float) -> SkillResult:
        """Grips the handle and pulls the drawer out by `pull_distance`."""
        self._check_object(drawer, kinds=("drawer",))
        p: DrawerParams = self._p("open_drawer", overrides)  # type: ignore[assignment]

        def body() -> tuple[bool, str]:
            opening, msg = self._drawer_motion(drawer, p, +1.0)
            return opening > 0.6 * DRAWER_TRAVEL, msg

        return self._run("open_drawer", {"drawer": drawer}, p, (), body)

    def close_drawer(self, drawer: str = "drawer", **overrides: float) -> SkillResult:
        """Grips the handle and pushes the drawer shut."""
        self._check_object(drawer, kinds=("drawer",))
        p: DrawerParams = self._p("close_drawer", overrides)  # type: ignore[assignment]

        def body() -> tuple[bool, str]:
            opening, msg = self._drawer_motion(drawer, p, -1.0)
            return opening < 0.01, msg

        return self._run("close_drawer", {"drawer": drawer}, p, (), body)

    def go_home(self, **overrides: float) -> SkillResult:
        """Returns the end effector to the home pose above the table."""
        p: MoveParams = self._p("go_home", overrides)  # type: ignore[assignment]

        def body() -> tuple[bool, str]:
            tf = self.arm.kin.forward(np.asarray(self.env.scene.robot.home_q))
            r = self.arm.move_to(Pose(tf[:3, 3], 0.0), speed=p.speed)
            return r.reached, "at home"

        return self._run("go_home", {}, p, (), body)
