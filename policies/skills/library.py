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
from corrigible.policies.skills.specs import (
    SKILLS,
    ArgSpec,
    ParamSpec,
    SkillParams,
    SkillSpec,
    default_params,
    skill,
    skill_spec,
    yaw_param,
)
from corrigible.robots.arm import Pose
from corrigible.sim_envs.locations import canonical_location, location_xy
from corrigible.sim_envs.objects import DRAWER_INTERIOR, DRAWER_TRAVEL
from corrigible.sim_envs.predicates import WorldState, _in, _on
from corrigible.sim_envs.tabletop_env import TabletopEnv
from corrigible.sim_envs.vocabulary import kind_names

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


# -- declarations (the one source of truth for skills; see specs.py) ------------------------------
_OBJ = ArgSpec(name="obj", kind="object")
_TARGET = ArgSpec(name="target", kind="target")
_DRAWER = ArgSpec(name="drawer", kind="object", default="drawer")
_OFFSET = (-0.15, 0.15)  # m: a correction further off than this misses any object on the table
# m/s. Slowest: a 30 cm move takes 30 s (slower cannot finish a skill in a sane time; the
# slippery-cylinder knowledge goes down to 0.0156). Fastest: the safety envelope's default
# limit (SafetyConfig.max_speed), which the arm enforces on the measured motion anyway.
_SPEED = (0.01, 0.6)
_APPROACH = (0.02, 0.30)  # m
_PUSH_DISTANCE = (0.01, 0.40)  # m: shorter moves nothing measurable; longer leaves the table


def _param(
    name: str,
    default: float,
    bounds: tuple[float, float],
    doc: str,
    generic: str | None = None,
    unit: str = "m",
) -> ParamSpec:
    """One correctable parameter, on one line of a declaration."""
    return ParamSpec(name=name, default=default, unit=unit, bounds=bounds, doc=doc, generic=generic)


def _speed(default: float, doc: str, name: str = "speed") -> ParamSpec:
    return _param(name, default, _SPEED, doc, generic=name, unit="m/s")


_PICK = SkillSpec(
    name="pick",
    doc="pick an object up (a bowl is held by its rim)",
    args=(_OBJ,),
    params=(
        _param(
            "approach_height",
            0.10,
            _APPROACH,
            "above the object's top before descending",
            "approach_height",
        ),
        _param(
            "grasp_height",
            0.0,
            (-0.10, 0.10),
            "relative to the object's centre (negative: lower)",
            "height",
        ),
        _param("grasp_offset_x", 0.0, _OFFSET, "world x offset of the grasp point", "offset_x"),
        _param("grasp_offset_y", 0.0, _OFFSET, "world y offset of the grasp point", "offset_y"),
        _param("lift_height", 0.15, (0.02, 0.40), "lifted after grasping", "lift_height"),
        _speed(0.25, "for transit and lifting"),
        _speed(0.12, "for the final approach", name="descend_speed"),
        yaw_param("grasp_yaw", "gripper turn at the grasp, added to the clearest grasp angle"),
    ),
    verbs="grasp|grab|grabbing|grip|pick|pinch|hold|holding|grasping|gripping",
    verb_rank=0,
)
_PLACE = SkillSpec(
    name="place",
    doc=(
        "place the held object in/on a bowl, object, 'drawer', named spot or [x, y]; "
        "a held bowl goes on another bowl or a spot"
    ),
    args=(_OBJ, _TARGET),
    params=(
        _param(
            "approach_height",
            0.10,
            _APPROACH,
            "above the target surface while carrying",
            "approach_height",
        ),
        _param(
            "release_height",
            0.015,
            (-0.05, 0.20),
            "between the object's bottom and the surface at release",
            "height",
        ),
        _param("offset_x", 0.0, _OFFSET, "world x offset from the target's centre", "offset_x"),
        _param("offset_y", 0.0, _OFFSET, "world y offset from the target's centre", "offset_y"),
        _speed(0.25, "while carrying"),
        _speed(0.12, "for the final approach", name="descend_speed"),
        yaw_param("place_yaw", "gripper (and held object) turn before setting it down"),
    ),
    verbs="release|drop|let go|place|put|set it down",
    verb_rank=1,
)
_PUT = SkillSpec(
    name="put_first_on_second",
    doc="pick obj and place it in/on target (a bowl may go on another bowl)",
    args=(_OBJ, _TARGET),
    subskills=("pick", "place"),
)
_PUSH = SkillSpec(
    name="push",
    doc="push along the table: 'left', 'right', 'forward', 'backward' (m)",
    args=(
        _OBJ,
        ArgSpec(name="direction", kind="direction"),
        ArgSpec(name="distance", kind="distance", default=None),
    ),
    params=(
        _param("distance", 0.10, _PUSH_DISTANCE, "pushed when the caller names none", "distance"),
        _param(
            "standoff", 0.05, (0.01, 0.15), "behind the object's centre where the fingers come down"
        ),
        _param(
            "contact_height",
            0.015,
            (0.0, 0.10),
            "above the table of the pushing fingertips",
            "height",
        ),
        _speed(0.10, "while pushing"),
    ),
    verbs="push|shove|slide",
    verb_rank=3,
)
_MOVE_EE = SkillSpec(
    name="move_ee",
    doc="move the gripper by a small offset in metres",
    args=tuple(
        ArgSpec(name=n, kind="number", default=0.0, doc_default=False) for n in ("dx", "dy", "dz")
    ),
    params=(_speed(0.15, "while nudging the end effector"),),
)
_DRAWER_PARAMS = (
    _param(
        "pull_distance",
        0.14,
        (0.02, 0.30),
        "the handle is pulled (open) or pushed (close), at most the slide's travel",
        "pull_distance",
    ),
    _param(
        "approach_height", 0.08, _APPROACH, "above the handle before descending", "approach_height"
    ),
    _param("grasp_height", 0.0, (-0.05, 0.05), "relative to the handle bar's centre", "height"),
    _param("grasp_offset_y", 0.0, _OFFSET, "along the handle (off-centre handles)", "offset_y"),
    _speed(0.10, "while pulling or pushing"),
)
_OPEN_DRAWER = SkillSpec(
    name="open_drawer",
    doc="open the drawer",
    args=(_DRAWER,),
    params=_DRAWER_PARAMS,
    verbs="pull|yank|drawer|handle",
    verb_rank=2,
)
_CLOSE_DRAWER = SkillSpec(
    name="close_drawer", doc="close the drawer", args=(_DRAWER,), params=_DRAWER_PARAMS
)
_POINT_AT = SkillSpec(
    name="point_at",
    doc="hold the gripper above an object, pointing down at it (the arm stays there)",
    args=(_OBJ,),
    params=(
        _param("hover_height", 0.10, (0.03, 0.30), "above the object's top", "hover_height"),
        _speed(0.25, "while moving over the object"),
    ),
    command_verbs=tuple(
        f"{verb} {tool}{prep}"
        for verb in ("point", "aim")
        for tool in ("the gripper ", "your gripper ", "the arm ", "the hand ", "")
        for prep in ("at", "to", "towards")
    )
    + ("hover over", "hover above", "hold the gripper over", "hold the gripper above"),
    keeps_pose=True,
)
_GO_HOME = SkillSpec(
    name="go_home",
    doc="move the arm to its home pose",
    params=(_speed(0.3, "back to the home pose"),),
)


_SLIP_LAG = 0.02  # m an object trails the rising hand before the pick lets go (`_lift`)
# Rim grasp (bowls, `_rim_grasp`): the fingers straddle the wall this fraction of its height up.
# Measured lifting a bowl (0.4 kg, 4.5 cm wall) 15 cm in MuJoCo: gripped 3.5 cm up (the pads
# mostly above the rim) it swings down in the fingers to 26 deg and keeps turning (29 deg after
# 1 s); at 2.8 cm 12-13 deg; at 2.0 cm 5 deg; at 1.6 and 1.2 cm 4 deg, steady. The pads' height
# along the wall is the lever that holds its weight off-centre. PyBullet holds it level (0.5 deg)
# at every height. 0.4 x 4.5 cm = 1.8 cm keeps the fingertips well above the base disc (0.8 cm).
_RIM_GRASP_FRACTION = 0.4
_FINGER_REACH = 0.045  # m, the open fingertip's outer face from the grasp point
_RIM_CLEARANCE = 0.01  # m an outer fingertip keeps from a neighbour's footprint at a rim grasp


class _Sliding(Exception):
    """Raised from a control tick: the lifted object trails the hand (caught in `_lift`)."""


class SkillLibrary:
    """Skills bound to one environment; `params` holds the current (correctable) parameters.

    Args:
        env: a reset `TabletopEnv`.
        params: per-skill parameters; missing skills use their declared defaults.
    """

    def __init__(
        self,
        env: TabletopEnv,
        params: dict[str, SkillParams] | None = None,
        locator: ObjectLocator | None = None,
    ) -> None:
        self.env = env
        self.params: dict[str, SkillParams] = default_params()
        self.params.update(params or {})
        # Where skills aim. Success checks (did it lift, is it in the bowl) use the simulator's
        # state, as a monitor would; aiming uses this locator (the camera in programs).
        self.locator: ObjectLocator = locator or PrivilegedLocator(env.backend)
        self._grasp_dz: dict[str, float] = {}
        # Rim-grasped object -> its grasp point less its centre (xy, m) when it was picked: the
        # hand holds a bowl off-centre, so a place moves the hand by this past the target.
        self._in_hand: dict[str, np.ndarray] = {}

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

    def check_object(self, name: str, *, kinds: tuple[str, ...] | None = None) -> str:
        """`name` if it is in the scene (and of one of `kinds`); raises before the arm moves."""
        names = self.object_names()
        if name not in names:
            raise UnknownObjectError(
                f"there is no {name!r} on the table; objects: {names}." + did_you_mean(name, names)
            )
        kind = self.env.scene.object(name).kind
        if kinds is not None and kind not in kinds:
            raise SkillError(f"{name!r} is a {kind}; this skill needs one of {list(kinds)}")
        return name

    def invoke(self, name: str, *args: Any, **overrides: float) -> SkillResult:
        """Runs the declared skill `name` (UnknownNameError with a suggestion if there is none)."""
        run = skill_spec(name).run
        assert run is not None  # register_skill refuses a spec without one
        return run(self, *args, **overrides)

    def params_for(self, skill: str, overrides: dict[str, float] | None) -> SkillParams:
        """The skill's current parameters with this call's overrides, inside declared bounds.

        Values outside a parameter's `bounds` (from overrides, corrections or recalled
        knowledge: `SkillParams` clips them wherever they came from) are traced as one
        `skill.param_clipped` event each, with the value asked for and the value used.
        """
        params = self.params[skill]
        if overrides:
            params = params.with_updates(overrides)
        for name, (asked, used) in params.clipped.items():
            self.env.trace.emit(
                "skill.param_clipped",
                skill=skill,
                param=name,
                asked=asked,
                used=used,
                bounds=list(skill_spec(skill).param(name).bounds),
            )
        return params

    def _state(self, *objects: str) -> dict[str, Any]:
        w = self.world()
        return {
            "ee_pos": self.arm.ee_pose().pos.round(4).tolist(),
            "holding": self.arm.holding(),
            "objects": {o: w.positions[o].round(4).tolist() for o in objects if o in w.positions},
            "articulations": {k: round(v, 4) for k, v in w.articulations.items()},
        }

    def execute(
        self,
        skill: str,
        args: dict[str, Any],
        params: SkillParams,
        objects: tuple[str, ...],
        body: Callable[[], tuple[bool, str]],
    ) -> SkillResult:
        """Runs a skill's motion `body` and records it: every skill ends here.

        Args:
            skill: the skill's name.
            args: its arguments as traced.
            params: the parameters it ran with.
            objects: the objects whose start and end state the result records.
            body: the motion; returns (success, message). A `MotionError` is a failure.

        Returns:
            The result, also written as one "skill" trace event.
        """
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
    @skill(_PICK)
    def pick(self, obj: str, **overrides: float) -> SkillResult:
        """Picks `obj` up from above and lifts it."""
        self.check_object(obj, kinds=(*kind_names(pickable=True), "other"))
        p = self.params_for("pick", overrides)

        def body() -> tuple[bool, str]:
            already = self._already_held(obj)
            if already is not None:
                return already
            pos, obj_yaw = self.locator.pose(obj)
            spec = self.env.scene.object(obj)
            offset = np.array([p.grasp_offset_x, p.grasp_offset_y])
            if self._rim_grasped(obj):
                rim_xy, yaw, grasp_z, top = self._rim_grasp(obj, pos, obj_yaw)
                xy = rim_xy + offset
                self._in_hand[obj] = xy - pos[:2]
            else:
                world = self.world()
                xy = pos[:2] + offset
                base_yaw = obj_yaw if spec.shape == "cube" else 0.0
                yaw = self._clearest_yaw(obj, xy, base_yaw)
                grasp_z, top = pos[2], pos[2] + world.half_height(obj)
                self._in_hand.pop(obj, None)
            yaw += p.grasp_yaw
            if self.arm._gripper_closed:
                self.arm.release()
            above = self._safe_z(top + p.approach_height)
            self.arm.move_to(Pose([xy[0], xy[1], above], yaw), speed=p.speed)
            grasp_z = self._safe_z(grasp_z + p.grasp_height)
            self.arm.move_to(Pose([xy[0], xy[1], grasp_z], yaw), speed=p.descend_speed)
            grip = self.arm.grasp()
            if grip.holding != obj:
                self.arm.release()
                self.arm.move_by([0, 0, p.approach_height], speed=p.speed)
                return False, f"grasp missed {obj!r} (fingers touched {grip.contacts or 'nothing'})"
            self.locator.picked(obj)
            obj_z0 = float(self.env.backend.object_poses()[obj][0][2])
            self._grasp_dz[obj] = float(self.arm.ee_pose().pos[2] - obj_z0)
            lag = self._lift(obj, obj_z0, p)
            if lag is not None:
                return (
                    False,
                    f"{obj!r} slipped down in the gripper while lifting ({lag * 100:.1f} cm behind "
                    "the hand); set it down",
                )
            self.arm.wait(0.2)
            lifted = float(self.env.backend.object_poses()[obj][0][2]) - obj_z0
            if self.arm.holding() != obj or lifted < 0.5 * p.lift_height:
                return (
                    False,
                    f"{obj!r} slipped out of the gripper while lifting "
                    f"(rose {lifted * 100:.1f} cm)",
                )
            if self._rim_grasped(obj):
                # Held off-centre, a bowl hangs a little lower on its far side than where it
                # stood (MuJoCo: 4-5 deg): the hand's height over its base is measured as it
                # hangs, so a place lets go `release_height` above the surface, not pressed on it.
                hung = float(self.env.backend.object_poses()[obj][0][2])
                self._grasp_dz[obj] = float(self.arm.ee_pose().pos[2]) - hung
            return True, f"picked {obj!r} and lifted it {lifted * 100:.1f} cm"

        return self.execute("pick", {"obj": obj}, p, (obj,), body)

    def _already_held(self, obj: str) -> tuple[bool, str] | None:
        """A pick's outcome decided by what the hand holds already (None: go and pick)."""
        held = self.arm.holding()
        if held is not None and held != obj:
            return False, f"already holding {held!r}; place it first"
        if held == obj:
            return True, f"already holding {obj!r}"
        return None

    def _lift(self, obj: str, obj_z0: float, p: SkillParams) -> float | None:
        """Lifts the grasped object by `lift_height`; on a slip, lets go: the lag, else None.

        A slippery object that slides down between the fingers as the hand rises is dragged by
        the fingertips at its top edge and tipped over (PyBullet: on its side or off the table),
        after which no correction can bring it back. Watching how far it trails the hand, as a
        wrist force or a fingertip sensor would tell, the skill stops as soon as it trails by
        `_SLIP_LAG` and opens the gripper: the object settles back upright where it stood, and a
        slower lift can be tried.
        """
        hand_z0 = float(self.arm.ee_pose().pos[2])
        lag = [0.0]

        def watch(arm: Any) -> None:
            rise = float(arm.ee_pose().pos[2]) - hand_z0
            obj_rise = float(self.env.backend.object_poses()[obj][0][2]) - obj_z0
            lag[0] = rise - obj_rise
            if lag[0] > _SLIP_LAG:
                raise _Sliding

        self.arm.add_tick_hook(watch)
        try:
            self.arm.move_by([0, 0, p.lift_height], speed=p.speed)
            return None
        except _Sliding:
            pass
        finally:
            self.arm.remove_tick_hook(watch)
        self.env.trace.emit("skill.slip_detected", obj=obj, lag_m=lag[0])
        self.arm.release()
        self.arm.move_by([0, 0, p.approach_height], speed=p.speed)
        return lag[0]

    def _neighbours(self, obj: str) -> list[tuple[np.ndarray, float]]:
        """(xy, footprint radius) of every other object the locator sees, m."""
        world = self.world()
        others = []
        for n in self.locator.names():
            if n == obj or self.env.scene.object_kind(n) is None:
                continue
            radius = 0.075 if self.env.scene.object_kind(n) == "bowl" else world.half_width(n)
            others.append((self.locator.pose(n)[0][:2], radius))
        return others

    def _clearest_yaw(self, obj: str, xy: np.ndarray, base_yaw: float) -> float:
        """Of the two top-down grasps of a square footprint, the one with the most clearance.

        That is the one whose fingers land farthest from neighbouring objects (the open fingers
        reach ~5 cm either side).
        """
        others = self._neighbours(obj)
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

    def _rim_grasped(self, obj: str) -> bool:
        """Whether pick holds `obj` by its wall at the rim (its kind's `rim_grasp`)."""
        kind = self.env.scene.object_kind(obj)
        return kind in kind_names(rim_grasp=True)

    def _rim_grasp(
        self, obj: str, pos: np.ndarray, obj_yaw: float
    ) -> tuple[np.ndarray, float, float, float]:
        """Where the fingers straddle the wall of a rim-grasped object (a bowl).

        The wall is the object's box geoms (`sim_envs.objects.make_bowl`: a ring of upright
        segments on a base disc, its origin on the base's underside). The grasp is at the
        middle of one segment, the gripper turned so the fingers close across it (one inside
        the bowl, one outside), at `_RIM_GRASP_FRACTION` of the wall's height. Of the segments
        whose outer finger lands clear of the neighbours, the one nearest the robot's base is
        taken (the shortest reach); with none clear, the clearest.

        Returns:
            (grasp xy m, gripper yaw rad, grasp height m, the object's top m), in the world.
        """
        spec = self.env.scene.object(obj)
        walls = [g for g in spec.geoms if g.type == "box"]
        if not walls:
            raise SkillError(f"{obj!r} has no wall to hold it by (no box geoms)")
        rot = np.array([[np.cos(obj_yaw), -np.sin(obj_yaw)], [np.sin(obj_yaw), np.cos(obj_yaw)]])
        base = np.asarray(self.env.scene.robot.base_pos[:2], dtype=np.float64)
        others = self._neighbours(obj)
        candidates = []
        for wall in walls:
            point = pos[:2] + rot @ np.asarray(wall.pos[:2])
            radial = (point - pos[:2]) / max(float(np.linalg.norm(point - pos[:2])), 1e-9)
            outer = point + radial * _FINGER_REACH
            clearance = min((np.linalg.norm(outer - c) - r for c, r in others), default=np.inf)
            reach = float(np.linalg.norm(point - base))
            candidates.append((clearance < _RIM_CLEARANCE, reach, -clearance, point, radial))
        if all(blocked for blocked, *_ in candidates):
            candidates.sort(key=lambda c: c[2])  # the clearest
        else:
            candidates.sort(key=lambda c: (c[0], c[1]))  # clear ones, nearest the robot first
        _, _, _, point, radial = candidates[0]
        # The fingers open along the hand's y axis, (-sin yaw, cos yaw): along the radius.
        yaw = float(np.arctan2(-radial[0], radial[1]))
        yaw = (yaw + np.pi / 2) % np.pi - np.pi / 2  # the gripper is symmetric
        wall = walls[0]
        bottom, height = wall.pos[2] - wall.size[2], 2 * wall.size[2]
        grasp_z = pos[2] + bottom + _RIM_GRASP_FRACTION * height
        return point, yaw, float(grasp_z), float(pos[2] + spec.top_above_origin())

    def _contents_top(self, bowl: str, obj: str, pos: np.ndarray, floor: float) -> float:
        """The highest of `floor` and the tops of the objects lying in `bowl` (at `pos`), m."""
        world = self.world()
        surface = floor
        for other in self.locator.names():
            if other in (obj, bowl) or self.env.scene.object_kind(other) in (
                None,
                "bowl",
                "drawer",
            ):
                continue
            opos = self.locator.pose(other)[0]
            if np.linalg.norm(opos[:2] - pos[:2]) < 0.06:
                surface = max(surface, float(opos[2]) + world.half_height(other))
        return surface

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
            if self._rim_grasped(obj):
                if not self._rim_grasped(target):
                    kind = self.env.scene.object(obj).kind
                    raise SkillError(
                        f"a {kind} can be set on another {kind} or on the table (a named spot "
                        f"or [x, y]), not on the {target}; nothing was moved"
                    )
                # On the lower bowl's rim, or on what sticks out of it.
                rim = pos[2] + spec.top_above_origin()
                return pos[:2], self._contents_top(target, obj, pos, rim), "stack"
            if spec.kind == "bowl":
                # Land on whatever already lies in the bowl rather than through it.
                return pos[:2], self._contents_top(target, obj, pos, pos[2] + 0.008), "bowl"
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

    def _extent(self, obj: str) -> tuple[float, float]:
        """How far `obj` reaches below and above its body origin, m.

        A block or a cylinder has its origin at its centre (half its height each way); a
        rim-grasped bowl has it on its base's underside (`sim_envs.objects.make_bowl`).
        """
        if self._rim_grasped(obj):
            return 0.0, self.env.scene.object(obj).top_above_origin()
        half_h = self.world().half_height(obj)
        return half_h, half_h

    @skill(_PLACE)
    def place(self, obj: str, target: str | list[float], **overrides: float) -> SkillResult:
        """Places the held `obj` in or on `target` (bowl, object, drawer or named location)."""
        self.check_object(obj)
        p = self.params_for("place", overrides)
        xy, surface, kind = self._place_target(target, obj)

        def body() -> tuple[bool, str]:
            if self.arm.holding() != obj:
                return False, f"not holding {obj!r}; pick it first"
            below, above = self._extent(obj)
            grasp_dz = self._grasp_dz.get(obj, 0.0)
            goal = xy + np.array([p.offset_x, p.offset_y])
            carry_z = self._safe_z(
                max(self.arm.ee_pose().pos[2], surface + p.approach_height + (below + above))
            )
            # The held object turns with the hand: place_yaw turns it before it is set down,
            # and one held off-centre (a bowl by its rim) swings round the hand as it turns.
            yaw = self.arm.ee_pose().yaw + p.place_yaw
            turn = np.array(
                [
                    [np.cos(p.place_yaw), -np.sin(p.place_yaw)],
                    [np.sin(p.place_yaw), np.cos(p.place_yaw)],
                ]
            )
            hand = goal + turn @ self._in_hand.get(obj, np.zeros(2))
            self.arm.move_to(Pose([hand[0], hand[1], carry_z], yaw), speed=p.speed)
            release_z = self._safe_z(surface + p.release_height + below + grasp_dz)
            self.arm.move_to(Pose([hand[0], hand[1], release_z], yaw), speed=p.descend_speed)
            self.arm.release()
            released = np.array([goal[0], goal[1], surface + below])
            self.arm.move_by([0, 0, p.approach_height], speed=p.speed)
            self.arm.wait(0.3)
            self.locator.placed(obj, released)
            return self._placed(obj, target, kind)

        return self.execute(
            "place", {"obj": obj, "target": _jsonable_target(target)}, p, (obj,), body
        )

    def _placed(self, obj: str, target: str, kind: str) -> tuple[bool, str]:
        world = self.world()
        if kind in ("bowl", "drawer"):
            ok, why = _in(world, obj, target)
        elif kind in ("object", "stack"):
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

    @skill(_PUT)
    def put_first_on_second(
        self, obj: str, target: str | list[float], **overrides: float
    ) -> SkillResult:
        """Picks `obj` and places it in or on `target` (Code as Policies' primitive)."""
        self.check_object(obj, kinds=(*kind_names(pickable=True), "other"))
        self._place_target(target, obj)  # validate before moving
        picked = self.pick(obj)
        if not picked.success:
            return picked
        return self.place(obj, target)

    @skill(_PUSH)
    def push(
        self, obj: str, direction: str, distance: float | None = None, **overrides: float
    ) -> SkillResult:
        """Pushes `obj` along the table towards `direction` (left/right/forward/backward)."""
        self.check_object(obj, kinds=(*kind_names(pushable=True), "other"))
        if direction not in ("left", "right", "forward", "backward"):
            raise SkillError(
                f"push direction must be left, right, forward or backward, got {direction!r}"
            )
        p = self.params_for("push", overrides)
        dist = p.distance if distance is None else self._push_distance(distance)
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

        return self.execute(
            "push", {"obj": obj, "direction": direction, "distance": dist}, p, (obj,), body
        )

    def _push_distance(self, distance: Any) -> float:
        """A caller's push distance, m: refused unless a positive finite number; then bounded."""
        bounds = _PUSH.param("distance").bounds
        if (
            isinstance(distance, bool)
            or not isinstance(distance, int | float | np.floating | np.integer)
            or not np.isfinite(distance)
            or distance <= 0
        ):
            raise SkillError(
                f"push distance must be a positive number of metres (at most {bounds[1]:g}), "
                f"got {distance!r}; nothing was moved"
            )
        used = float(np.clip(distance, *bounds))
        if used != distance:
            self.env.trace.emit(
                "skill.param_clipped",
                skill="push",
                param="distance",
                asked=float(distance),
                used=used,
                bounds=list(bounds),
            )
        return used

    @skill(_MOVE_EE)
    def move_ee(
        self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0, **overrides: float
    ) -> SkillResult:
        """Moves the end effector by (dx, dy, dz) m, clipped to the safety envelope."""
        try:
            delta = np.array([dx, dy, dz], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SkillError(
                f"move_ee offsets must be numbers in metres, got {[dx, dy, dz]!r}"
            ) from exc
        if not np.all(np.isfinite(delta)):
            raise SkillError(
                f"move_ee offsets must be finite numbers in metres, got {delta.tolist()}; "
                "nothing was moved"
            )
        p = self.params_for("move_ee", overrides)

        def body() -> tuple[bool, str]:
            r = self.arm.move_by(delta, speed=p.speed)
            note = " (clipped by the safety envelope)" if r.clipped else ""
            return r.reached, f"moved by {np.round(r.applied, 3).tolist()} m{note}"

        return self.execute("move_ee", {"delta": delta.round(4).tolist()}, p, (), body)

    def _handle(self, drawer: str, p: SkillParams) -> tuple[np.ndarray, np.ndarray]:
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

    def world_bounds(self, skill: str, obj: str | None) -> dict[str, tuple[float, float]]:
        """Ranges the world allows a skill's parameters on `obj`, tighter than the declared bounds.

        What the robot knows of its own workspace (an articulation's limits in the scene
        description), never a hidden property: a drawer's `pull_distance` is at most its slide's
        travel. Corrections and remembered knowledge are merged inside these ranges, so a
        stored value never grows past what the skill can carry out.
        """
        params = {p.name: p for p in skill_spec(skill).params} if skill in SKILLS else {}
        if "pull_distance" not in params or obj is None:
            return {}
        if obj not in {o.name for o in self.env.scene.objects}:
            return {}
        joint = getattr(self.env.scene.object(obj), "joint", None)
        if joint is None:
            return {}
        lo, hi = joint.range
        low = params["pull_distance"].bounds[0]
        return {"pull_distance": (min(low, hi - lo), hi - lo)}

    def _pull_distance(self, drawer: str, p: SkillParams) -> float:
        """`pull_distance`, at most the drawer slide's travel (traced when that is shorter).

        The world's limit is tighter than the declared bounds: the hand never pulls or pushes
        the handle further than the slide can move (a stiff slide lags the hand, so the hand
        may need most of the travel to open it well, never more).
        """
        lo, hi = self.env.scene.object(drawer).joint.range
        travel = hi - lo
        if p.pull_distance <= travel:
            return p.pull_distance
        self.env.trace.emit(
            "skill.param_clipped",
            skill=p.skill,
            param="pull_distance",
            asked=p.pull_distance,
            used=travel,
            bounds=[0.0, travel],
            why=f"the {drawer}'s slide travels {travel * 100:.0f} cm",
        )
        return travel

    def _drawer_motion(self, drawer: str, p: SkillParams, sign: float) -> tuple[bool, str]:
        if self.arm.holding() is not None:
            return False, "holding an object; place it before using the drawer"
        handle, axis = self._handle(drawer, p)
        yaw = np.pi / 2  # fingers close along x, across the bar that runs along y
        self.arm.release(width=0.022)  # a narrow opening clears the cabinet front
        self.arm.move_to(Pose(handle + [0, 0, p.approach_height], yaw), speed=0.25)
        self.arm.move_to(Pose(handle, yaw), speed=0.08)
        self.arm.grasp()
        self.arm.move_by(axis * self._pull_distance(drawer, p) * sign, speed=p.speed)
        self.arm.release()
        self.arm.move_by([0, 0, p.approach_height], speed=0.2)
        opening = self.world().articulations[drawer]
        return opening, f"{drawer} is open {opening * 100:.1f} cm"

    @skill(_OPEN_DRAWER)
    def open_drawer(self, drawer: str = "drawer", **overrides: float) -> SkillResult:
        """Grips the handle and pulls the drawer out by `pull_distance`."""
        self.check_object(drawer, kinds=("drawer",))
        p = self.params_for("open_drawer", overrides)

        def body() -> tuple[bool, str]:
            opening, msg = self._drawer_motion(drawer, p, +1.0)
            return opening > 0.6 * DRAWER_TRAVEL, msg

        return self.execute("open_drawer", {"drawer": drawer}, p, (), body)

    @skill(_CLOSE_DRAWER)
    def close_drawer(self, drawer: str = "drawer", **overrides: float) -> SkillResult:
        """Grips the handle and pushes the drawer shut."""
        self.check_object(drawer, kinds=("drawer",))
        p = self.params_for("close_drawer", overrides)

        def body() -> tuple[bool, str]:
            opening, msg = self._drawer_motion(drawer, p, -1.0)
            return opening < 0.01, msg

        return self.execute("close_drawer", {"drawer": drawer}, p, (), body)

    @skill(_POINT_AT)
    def point_at(self, obj: str, **overrides: float) -> SkillResult:
        """Moves the gripper over `obj`, `hover_height` above its top, fingers pointing down.

        Code as Policies' "point the gripper at the red block": the top-down gripper points at
        what lies below it, so pointing is hovering over it. The arm stays there (the skill
        `keeps_pose`); the next motion starts from it.
        """
        self.check_object(obj, kinds=(*kind_names(graspable=True), "bowl", "other"))
        p = self.params_for("point_at", overrides)

        def body() -> tuple[bool, str]:
            if self.arm.holding() is not None:
                return False, f"holding {self.arm.holding()!r}; place it before pointing"
            pos, _ = self.locator.pose(obj)
            top = pos[2] + self.env.scene.object(obj).top_above_origin()
            z = self._safe_z(top + p.hover_height)
            r = self.arm.move_to(Pose([pos[0], pos[1], z], 0.0), speed=p.speed)
            return r.reached, f"pointing at {obj!r} from {(z - top) * 100:.0f} cm above it"

        return self.execute("point_at", {"obj": obj}, p, (obj,), body)

    @skill(_GO_HOME)
    def go_home(self, **overrides: float) -> SkillResult:
        """Returns the end effector to the home pose above the table."""
        p = self.params_for("go_home", overrides)

        def body() -> tuple[bool, str]:
            tf = self.arm.kin.forward(np.asarray(self.env.scene.robot.home_q))
            r = self.arm.move_to(Pose(tf[:3, 3], 0.0), speed=p.speed)
            return r.reached, "at home"

        return self.execute("go_home", {}, p, (), body)
