"""The perception and skill API that planner programs call (Code as Policies' robot API).

One `RobotAPI` binds a `TabletopEnv`, its `SkillLibrary` and a locator. `functions()` returns
the name -> callable mapping handed to the sandbox; every call is recorded in the episode trace
with its arguments, result and timing. Perception is the camera unless privileged state is asked
for explicitly.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from corrigible.errors import ParseError, SkillError, UnknownObjectError, did_you_mean
from corrigible.policies.middleware import SkillCall, SkillMiddleware, run_chain
from corrigible.policies.perception import CameraLocator, ObjectLocator, PrivilegedLocator
from corrigible.policies.skills import SkillLibrary
from corrigible.policies.skills.specs import SKILLS, SkillSpec, skill_spec
from corrigible.policies.skills.specs import api_doc as skill_api_doc
from corrigible.sim_envs.locations import canonical_location, location_names, location_xy
from corrigible.sim_envs.predicates import parse_predicate
from corrigible.sim_envs.tabletop_env import TabletopEnv
from corrigible.sim_envs.vocabulary import OBJECT_KINDS, object_kind

# What each non-skill API function does, for prompts and `corrigible exec --help`. The skills'
# lines come from their declarations (`policies.skills.specs`), so `api_doc()` lists them all.
_PERCEPTION_DOC: dict[str, str] = {
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
}
_TALK_DOC: dict[str, str] = {
    "say(text)": "tell the user something",
    "checkpoint(name, expect=None)": (
        "mark a finished subgoal; expect is a predicate like 'in(red block, blue bowl)'"
    ),
}


def api_doc() -> dict[str, str]:
    """Signature -> one-line documentation of every function a program may call."""
    return {**_PERCEPTION_DOC, **skill_api_doc(), **_TALK_DOC}


def api_names() -> list[str]:
    """The names of every function a program may call."""
    return [signature.split("(")[0] for signature in api_doc()]


def _is_furniture(kind: str | None) -> bool:
    return kind in OBJECT_KINDS and object_kind(kind).furniture  # type: ignore[arg-type]


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
        self.middleware: list[SkillMiddleware] = []  # around every skill, outermost first

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
        return names + [f for f in self._furniture() if f not in names]

    def _furniture(self) -> list[str]:
        """The furniture in the scene (the drawer): fixed, always known, not seen by colour."""
        return [o.name for o in self.env.scene.objects if _is_furniture(o.kind)]

    def get_obj_pos(self, name: str) -> np.ndarray:
        """Centre (x, y, z) of an object in metres."""
        name = self._known(name)
        if _is_furniture(self.env.scene.object_kind(name)):
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
        kind = self.env.scene.object_kind(name)
        if _is_furniture(kind):
            return object_kind(kind).default_color or "brown"  # type: ignore[arg-type]
        return name.split()[0]

    def is_obj_visible(self, name: str) -> bool:
        """True if the camera sees the object now (the drawer always counts as visible)."""
        visible = getattr(self.locator, "visible", None)
        names = visible() if visible is not None else self.locator.names()
        return name in names or name in self._furniture()

    def get_location_pos(self, name: str) -> np.ndarray:
        """(x, y) of a named spot on the table."""
        return location_xy(canonical_location(name))

    def get_location_names(self) -> list[str]:
        """The named spots on the table."""
        return location_names()

    # -- skills ----------------------------------------------------------------------------
    def use(self, middleware: SkillMiddleware, *, before: type | None = None) -> None:
        """Adds a link to the around-skill chain.

        Args:
            middleware: the link.
            before: insert it before the first link of this type; None: at the end (innermost).
        """
        index = next(
            (i for i, m in enumerate(self.middleware) if before and isinstance(m, before)),
            len(self.middleware),
        )
        self.middleware.insert(index, middleware)

    def describe_middleware(self) -> list[str]:
        """The chain's links, outermost first (for traces and debugging)."""
        return [type(m).__name__ for m in self.middleware]

    def _skill(self, name: str, *args: Any) -> bool:
        """Runs a resolved skill call through the middleware chain."""
        call = SkillCall(spec=skill_spec(name), args=list(args))
        return run_chain(self.middleware, call, self._execute)

    def _execute(self, call: SkillCall) -> bool:
        """The innermost link: the library skill, with the call's parameter overrides set."""
        saved = dict(self.skills.params)
        try:
            for skill, values in call.overrides().items():
                self.skills.params[skill] = saved[skill].with_updates(values)
            result = self.skills.invoke(call.name, *call.args)
        finally:
            self.skills.params.clear()
            self.skills.params.update(saved)
        self.skill_results.append(result)
        if not result.success:
            raise SkillError(f"{call.name} failed: {result.message}")
        return True

    def _resolve(self, spec: SkillSpec, bound: inspect.BoundArguments) -> list[Any]:
        """The call's arguments, each checked the way its declaration says."""
        resolved = []
        for arg in spec.args:
            value = bound.arguments[arg.name]
            if arg.kind == "object":
                value = self._known(value)
            elif arg.kind == "target":
                value = self._target(value)
            elif arg.kind == "number":
                value = float(value)
            resolved.append(value)
        return resolved

    def _skill_function(self, spec: SkillSpec) -> Callable[..., bool]:
        """The API function of a declared skill: binds, resolves, then runs the chain."""
        signature = inspect.Signature(
            [
                inspect.Parameter(
                    a.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=inspect.Parameter.empty if a.is_required else a.default,
                )
                for a in spec.args
            ]
        )

        def call(*args: Any, **kwargs: Any) -> bool:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{spec.name}(): {exc}") from None
            bound.apply_defaults()
            return self._skill(spec.name, *self._resolve(spec, bound))

        call.__name__ = spec.name
        call.__doc__ = f"{spec.doc}; raises `SkillError` if the skill fails."
        call.__signature__ = signature  # type: ignore[attr-defined]
        return call

    def __getattr__(self, name: str) -> Callable[..., bool]:
        """`api.pick("red block")`: every declared skill is an API function."""
        if name.startswith("_") or name not in SKILLS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self._skill_function(skill_spec(name))

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
            predicate = parse_predicate(str(expect), self.env.scene)
            holds, details = predicate.evaluate(self.env.world_state())
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
        return {name: self._traced(name, getattr(self, name)) for name in api_names()}

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
