"""The perception and skill API that planner programs call (Code as Policies' robot API).

One `RobotAPI` binds a `TabletopEnv`, its `SkillLibrary` and a locator. `functions()` returns
the name -> callable mapping handed to the sandbox; every call is recorded in the episode trace
with its arguments, result and timing. Perception is the camera unless privileged state is asked
for explicitly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from corrigible.errors import ParseError, SkillError, UnknownObjectError, did_you_mean
from corrigible.policies.perception import CameraLocator, ObjectLocator, PrivilegedLocator
from corrigible.policies.skills import SkillLibrary
from corrigible.sim_envs.locations import canonical_location, location_names, location_xy
from corrigible.sim_envs.predicates import parse_predicate
from corrigible.sim_envs.tabletop_env import TabletopEnv

# What each API function does, for prompts and `corrigible exec --help`.
API_DOC: dict[str, str] = {
    "get_obj_names()": "names of the objects the robot sees, e.g. ['red block', 'blue bowl']",
    "get_obj_pos(name)": (
        "np.array([x, y, z]) centre of an object in metres (x away from the robot, y to its left)"
    ),
    "get_bbox(name)": "[x_min, y_min, z_min, x_max, y_max, z_max] of an object in metres",
    "get_color(name)": "colour word of an object, e.g. 'red'",
    "is_obj_visible(name)": "True if the camera sees the object",
    "get_location_pos(name)": (
        "np.array([x, y]) of a named spot: 'top left corner', 'middle', 'left side', ..."
    ),
    "get_location_names()": "the named spots",
    "pick(obj)": "pick an object up",
    "place(obj, target)": (
        "place the held object in/on a bowl, object, 'drawer', named spot or [x, y]"
    ),
    "put_first_on_second(obj, target)": "pick obj and place it in/on target",
    "push(obj, direction, distance=None)": (
        "push along the table: 'left', 'right', 'forward', 'backward' (m)"
    ),
    "move_ee(dx, dy, dz)": "move the gripper by a small offset in metres",
    "open_drawer(drawer='drawer')": "open the drawer",
    "close_drawer(drawer='drawer')": "close the drawer",
    "go_home()": "move the arm to its home pose",
    "say(text)": "tell the user something",
    "checkpoint(name, expect=None)": (
        "mark a finished subgoal; expect is a predicate like 'in(red block, blue bowl)'"
    ),
}


class RobotAPI:
    """The functions a program may call, bound to one episode.

    Args:
        env: a reset environment.
        skills: the skill library (its parameters are what corrections change).
        perception: "camera" (default) or "privileged".
        camera_bias: offset (m) of a miscalibrated camera, for scenarios.
    """

    def __init__(
        self,
        env: TabletopEnv,
        skills: SkillLibrary | None = None,
        *,
        perception: str = "camera",
        camera_bias: np.ndarray | None = None,
    ) -> None:
        if perception not in ("camera", "privileged"):
            raise ParseError(f"perception must be 'camera' or 'privileged', got {perception!r}")
        self.env = env
        self.locator: ObjectLocator = (
            CameraLocator(env.backend, env.camera, bias=camera_bias)
            if perception == "camera"
            else PrivilegedLocator(env.backend)
        )
        self.skills = skills or SkillLibrary(env)
        self.skills.locator = self.locator
        self.said: list[str] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.skill_results: list[Any] = []
        self.hooks: list[Callable[[str, dict[str, Any]], None]] = []  # before every call

    # -- perception ------------------------------------------------------------------------
    def _known(self, name: str) -> str:
        names = self.get_obj_names()
        if name in names:
            return name
        raise UnknownObjectError(
            f"no object {name!r} is visible; visible: {names}." + did_you_mean(name, names)
        )

    def get_obj_names(self) -> list[str]:
        """Names of the objects the robot sees, plus the furniture (the drawer)."""
        names = self.locator.names()
        furniture = [o.name for o in self.env.scene.objects if o.kind == "drawer"]
        return names + [f for f in furniture if f not in names]

    def get_obj_pos(self, name: str) -> np.ndarray:
        """Centre (x, y, z) of an object in metres."""
        name = self._known(name)
        if self.env.scene.object_kind(name) == "drawer":
            return np.asarray(self.env.scene.object(name).pos, dtype=np.float64)
        return self.locator.pose(name)[0]

    def get_bbox(self, name: str) -> list[float]:
        """Axis-aligned bounds [x_min, y_min, z_min, x_max, y_max, z_max] of an object in metres."""
        name = self._known(name)
        det = self.locator.detections().get(name)
        if det is not None:
            return [float(v) for v in det.bbox]
        pos = self.get_obj_pos(name)
        spec = self.env.scene.object(name)
        g = spec.geoms[0]
        half = np.array(g.size if g.type == "box" else (g.size[0], g.size[0], g.size[1]))
        if spec.kind == "bowl":
            half = np.array([0.075, 0.075, 0.0225])
            pos = pos + [0, 0, 0.0225]
        return [float(v) for v in np.concatenate([pos - half, pos + half])]

    def get_color(self, name: str) -> str:
        """Colour word of an object (the drawer is brown)."""
        name = self._known(name)
        return name.split()[0] if self.env.scene.object_kind(name) != "drawer" else "brown"

    def is_obj_visible(self, name: str) -> bool:
        """True if the camera sees the object now (the drawer always counts as visible)."""
        visible = getattr(self.locator, "visible", None)
        names = visible() if visible is not None else self.locator.names()
        return name in names or name in [
            o.name for o in self.env.scene.objects if o.kind == "drawer"
        ]

    def get_location_pos(self, name: str) -> np.ndarray:
        """(x, y) of a named spot on the table."""
        return location_xy(canonical_location(name))

    def get_location_names(self) -> list[str]:
        """The named spots on the table."""
        return location_names()

    # -- skills ----------------------------------------------------------------------------
    def _skill(self, name: str, *args: Any, **kwargs: Any) -> bool:
        result = getattr(self.skills, name)(*args, **kwargs)
        self.skill_results.append(result)
        if not result.success:
            raise SkillError(f"{name} failed: {result.message}")
        return True

    def pick(self, obj: str) -> bool:
        """Picks an object up; raises `SkillError` if the skill fails."""
        return self._skill("pick", self._known(obj))

    def place(self, obj: str, target: Any) -> bool:
        """Places the held object at a target; raises `SkillError` if the skill fails."""
        return self._skill("place", self._known(obj), self._target(target))

    def put_first_on_second(self, obj: str, target: Any) -> bool:
        """Picks `obj` and places it at `target`; raises `SkillError` if the skill fails."""
        return self._skill("put_first_on_second", self._known(obj), self._target(target))

    def push(self, obj: str, direction: str, distance: float | None = None) -> bool:
        """Pushes an object along the table; raises `SkillError` if the skill fails."""
        return self._skill("push", self._known(obj), direction, distance)

    def move_ee(self, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> bool:
        """Moves the gripper by a small offset in metres."""
        return self._skill("move_ee", [float(dx), float(dy), float(dz)])

    def open_drawer(self, drawer: str = "drawer") -> bool:
        """Opens the drawer; raises `SkillError` if the skill fails."""
        return self._skill("open_drawer", self._known(drawer))

    def close_drawer(self, drawer: str = "drawer") -> bool:
        """Closes the drawer; raises `SkillError` if the skill fails."""
        return self._skill("close_drawer", self._known(drawer))

    def go_home(self) -> bool:
        """Moves the arm to its home pose."""
        return self._skill("go_home")

    def _target(self, target: Any) -> Any:
        if isinstance(target, str):
            if target in self.get_obj_names():
                return target
            try:
                return canonical_location(target)
            except Exception:
                names = self.get_obj_names()
                raise UnknownObjectError(
                    f"no object or location {target!r}; objects: {names}, "
                    f"locations: {location_names()}."
                    + did_you_mean(target, names + location_names())
                ) from None
        arr = np.asarray(target, dtype=np.float64).reshape(-1)
        if arr.size not in (2, 3) or not np.all(np.isfinite(arr)):
            raise SkillError(f"a target position must be [x, y] in metres, got {target!r}")
        return arr[:2].tolist()

    # -- talking and monitoring ------------------------------------------------------------
    def say(self, text: str) -> None:
        """Tells the user something (recorded and traced, truncated to 500 characters)."""
        self.said.append(str(text)[:500])
        self.env.trace.emit("say", text=str(text)[:500])

    def checkpoint(self, name: str, expect: str | None = None) -> bool:
        """Records a subgoal; with `expect`, judges it on the simulator's state (the monitor)."""
        holds, details = None, []
        if expect is not None:
            from corrigible.sim_envs.predicates import WorldState

            predicate = parse_predicate(str(expect), self.env.scene)
            holds, details = predicate.evaluate(
                WorldState.from_info(self.env.scene, self.env._info())
            )
        record = {
            "name": str(name)[:200],
            "expect": expect,
            "holds": holds,
            "details": details,
            "sim_time_s": self.env.backend.time,
        }
        self.checkpoints.append(record)
        self.env.trace.emit("checkpoint", **record)
        return True if holds is None else bool(holds)

    # -- the mapping the sandbox gets --------------------------------------------------------
    def functions(self) -> dict[str, Callable[..., Any]]:
        """Name -> traced callable for every API function."""
        names = [doc.split("(")[0] for doc in API_DOC]
        return {name: self._traced(name, getattr(self, name)) for name in names}

    def _traced(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            for hook in self.hooks:
                hook(name, {"args": args, "kwargs": kwargs})
            t0 = time.perf_counter()
            error, result = None, None
            try:
                result = fn(*args, **kwargs)
                return result
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self.env.trace.emit(
                    "api",
                    name=name,
                    args=list(args),
                    kwargs=kwargs,
                    result=result,
                    error=error,
                    duration_s=time.perf_counter() - t0,
                    sim_time_s=self.env.backend.time,
                    perception=self.locator.source,
                )

        call.__name__ = name
        return call
