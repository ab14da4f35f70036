"""Skill declarations: what each skill is called, takes and lets a person correct.

A `SkillSpec` names a skill, its arguments as programs call it, its correctable parameters
(with units, defaults and bounds), the library skills whose parameters it uses, the line that
documents it to planners, and the words that name it in a correction. Everything else is derived
from the registered specs:

- the robot API's skill functions (`policies.robot_api`) and their documentation in the LLM
  prompt (`api_doc()`),
- the default parameters (`default_params()`) and the skill-neutral parameter aliases that
  corrections use when they do not say which skill they mean (`generic_params()`: "height" is
  `grasp_height` for pick and `release_height` for place),
- which skills a correction may act on (`correctable_skills()`), which of them place something
  (`placing_skills()`), and which skill a correction's verb names (`skill_of_words()`).

Built-in skills are declared on their implementations in `policies/skills/library.py` with the
`skill` decorator; a new skill is one decorated function (see tests/policies/test_extending.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Literal

from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.registry import Registry

ArgKind = Literal["object", "target", "direction", "distance", "number"]
_NO_DEFAULT: Any = object()


@dataclass(frozen=True, kw_only=True)
class ArgSpec:
    """One argument of a skill as a program calls it.

    Attributes:
        name: the argument's name in the API signature ("obj").
        kind: how the robot API resolves it: "object" (a visible object name), "target" (an
            object, a named location or [x, y] in m), "direction" (a word), "distance" (m or
            None), "number" (a float).
        default: the default value; absent: required.
        doc_default: show the default in the API documentation.
    """

    name: str
    kind: ArgKind
    default: Any = _NO_DEFAULT
    doc_default: bool = True

    @property
    def is_required(self) -> bool:
        """Whether a call must give this argument."""
        return self.default is _NO_DEFAULT

    def doc(self) -> str:
        """How the argument reads in a signature ("drawer='drawer'")."""
        if self.is_required or not self.doc_default:
            return self.name
        return f"{self.name}={self.default!r}"


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One correctable parameter of a skill.

    Attributes:
        name: the parameter ("grasp_height").
        default: its value before any correction.
        unit: "m", "m/s" (or "" for pure numbers).
        bounds: the physically meaningful range; every value the parameter takes (defaults,
            overrides, corrections, recalled knowledge) is clipped into it (`bound_params`).
        doc: what it does, one line.
        generic: the skill-neutral name a correction may use for it when it does not say which
            skill it means ("height"); None when only the skill's own name addresses it.
    """

    name: str
    default: float
    unit: str
    bounds: tuple[float, float]
    doc: str
    generic: str | None = None

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ConfigError(
                f"ParamSpec {self.name!r}: bounds must be finite (low, high) with low <= high, "
                f"got {self.bounds}"
            )
        if not lo <= self.default <= hi:
            raise ConfigError(
                f"ParamSpec {self.name!r}: default {self.default} is outside bounds {self.bounds}"
            )

    def clip(self, value: float) -> float:
        """`value` clipped into the bounds (an infinite value goes to the nearer bound).

        Raises:
            ConfigError: `value` is not a number (NaN has no place in a range).
        """
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ConfigError(
                f"parameter {self.name!r} must be a number in {self.unit or 'units'} within "
                f"{list(self.bounds)}, got {value!r}"
            )
        lo, hi = self.bounds
        return min(max(float(value), lo), hi)


@dataclass(frozen=True, kw_only=True)
class SkillSpec:
    """Everything declared about one skill.

    Attributes:
        name: the skill's name in programs, traces and knowledge ("pick").
        doc: the API documentation line ("pick an object up").
        args: the arguments as a program calls it.
        params: its correctable parameters (empty for a skill made of others).
        subskills: the skills whose parameters it runs with; () means itself
            (put_first_on_second runs with pick's and place's).
        verbs: regex alternation of the words that name it in a correction ("grasp|grab").
        verb_rank: when a correction's words name several skills, the lowest rank wins.
        command_verbs: imperative verbs that call it on one object ("tap the red block"); the
            built-in skills' richer phrasings live in `policies.language` instead.
        keeps_pose: the arm's end pose is the skill's result (pointing at an object): a
            program that ends with it leaves the arm there instead of sending it home.
        run: the implementation, `run(library, *args, **param_overrides) -> SkillResult`.
    """

    name: str
    doc: str
    args: tuple[ArgSpec, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    subskills: tuple[str, ...] = ()
    verbs: str = ""
    verb_rank: int = 100
    command_verbs: tuple[str, ...] = ()
    keeps_pose: bool = False
    run: Callable[..., Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ConfigError(f"SkillSpec.name must be a snake_case identifier, got {self.name!r}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ConfigError(f"SkillSpec {self.name!r} declares a parameter twice: {names}")

    @property
    def uses(self) -> tuple[str, ...]:
        """The skills whose parameters a call of this one runs with."""
        return self.subskills or (self.name,)

    @property
    def acts_on_object(self) -> bool:
        """Whether its first argument is an object (corrections act on such calls)."""
        return bool(self.args) and self.args[0].kind == "object"

    @property
    def places(self) -> bool:
        """Whether it takes a place target."""
        return any(a.kind == "target" for a in self.args)

    def signature(self) -> str:
        """The API signature, e.g. "push(obj, direction, distance=None)"."""
        return f"{self.name}({', '.join(a.doc() for a in self.args)})"

    def param(self, name: str) -> ParamSpec:
        """The declared parameter `name` (UnknownNameError with a suggestion)."""
        for p in self.params:
            if p.name == name:
                return p
        known = [p.name for p in self.params]
        raise UnknownNameError(
            f"skill {self.name!r} has no parameter {name!r}; parameters: {sorted(known)}."
            + did_you_mean(name, known)
        )


# Gripper yaw corrections, rad: a turn about the vertical added to the angle the skill would
# choose itself. A quarter turn either way covers every distinct top-down grasp of the
# two-finger gripper (it is symmetric under a half turn) and keeps the wrist inside its joint
# range; positive is counter-clockwise seen from above (the camera's and the operator's view).
YAW_BOUNDS = (-math.pi / 2, math.pi / 2)


def yaw_param(name: str, doc: str) -> ParamSpec:
    """A gripper-yaw parameter: rad, `YAW_BOUNDS`, default 0 (the skill's own angle).

    Declared once here so the pick's and the place's yaw share unit, bounds and the
    skill-neutral name "yaw" that corrections use ("turn the gripper 90 degrees").
    """
    return ParamSpec(name=name, default=0.0, unit="rad", bounds=YAW_BOUNDS, doc=doc, generic="yaw")


SKILLS: Registry[SkillSpec] = Registry("skill")


def skill(spec: SkillSpec) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declares a skill on its implementation and registers it.

    Example:
        @skill(SkillSpec(name="tap", doc="tap an object", args=(ArgSpec(name="obj",
                         kind="object"),), params=(...)))
        def tap(library, obj, **overrides): ...
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        register_skill(replace(spec, run=fn))
        return fn

    return register


def register_skill(spec: SkillSpec) -> SkillSpec:
    """Adds a declared skill (its implementation in `spec.run`) to the registry.

    Remove one again with `SKILLS.unregister(name)` (tests that add a skill do).
    """
    if spec.run is None:
        raise ConfigError(f"skill {spec.name!r} has no implementation (SkillSpec.run)")
    for sub in spec.subskills:
        if sub not in SKILLS:
            raise ConfigError(f"skill {spec.name!r} uses {sub!r}, which is not declared yet")
    SKILLS.register(spec.name, spec)
    return spec


def skill_specs() -> list[SkillSpec]:
    """The declared skills, in declaration order."""
    return SKILLS.values()


def skill_spec(name: str) -> SkillSpec:
    """The declared skill `name` (UnknownNameError with a "did you mean")."""
    return SKILLS.get(name)


# -- parameters --------------------------------------------------------------------------------
def bound_params(
    skill: str, values: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """`values` of `skill`'s parameters clipped into their declared bounds.

    This is the one place bounds are applied: every `SkillParams` is built through it, so
    defaults, a call's overrides, corrections and recalled or distilled knowledge alike can
    only hold values inside `ParamSpec.bounds`. A skill not (or no longer) registered has no
    bounds to apply; its values pass unchanged.

    Args:
        skill: the declared skill ("pick").
        values: parameter -> number (SI units).

    Returns:
        (the bounded values, parameter -> (asked, used) for each value the bounds changed).

    Raises:
        UnknownNameError: a parameter `skill` does not declare (with a suggestion).
        ConfigError: a value that is not a number, NaN included.
    """
    if skill not in SKILLS:
        return {k: float(v) for k, v in values.items()}, {}
    spec = SKILLS.get(skill)
    bounded: dict[str, float] = {}
    clipped: dict[str, tuple[float, float]] = {}
    for name, value in values.items():
        param = spec.param(name)
        try:
            used = param.clip(value)
        except ConfigError:
            raise ConfigError(
                f"{skill}.{name} must be a number within {list(param.bounds)} {param.unit}, "
                f"got {value!r}"
            ) from None
        bounded[name] = used
        if used != value:
            clipped[name] = (float(value), used)
    return bounded, clipped


def stored_params(skill: str, values: Mapping[str, Any]) -> tuple[dict[str, float], dict]:
    """Stored knowledge's parameters as a call may use them: inside the declared bounds.

    Knowledge may predate a bound (or be edited by hand): a value outside its parameter's
    range is clipped into it (`bound_params`), and a value that cannot be used at all (a
    parameter the skill does not declare, not a number) is left out rather than failing the
    skill. Both are reported, so a trace says what memory really contributed.

    Returns:
        (the usable values, {"clipped": {name: [asked, used]}, "dropped": {name: why}} holding
        only the non-empty parts).
    """
    usable: dict[str, float] = {}
    clipped: dict[str, list[float]] = {}
    dropped: dict[str, str] = {}
    for name, value in values.items():
        try:
            bounded, changed = bound_params(skill, {name: value})
        except (ConfigError, UnknownNameError) as exc:
            dropped[name] = str(exc).strip("'\"")
            continue
        usable.update(bounded)
        clipped.update({k: [asked, used] for k, (asked, used) in changed.items()})
    notes = {k: v for k, v in (("clipped", clipped), ("dropped", dropped)) if v}
    return usable, notes


class SkillParams:
    """The current values of one skill's correctable parameters; immutable, read as attributes.

    Values are clipped into the declared bounds on construction (`bound_params`); `clipped`
    says which were, so the caller that runs the skill can trace it.

    Args:
        skill: the skill they belong to.
        values: parameter -> value (SI units), every declared parameter present.
    """

    __slots__ = ("_clipped", "_skill", "_values")

    def __init__(self, skill: str, values: Mapping[str, float]) -> None:
        bounded, clipped = bound_params(skill, values)
        object.__setattr__(self, "_skill", skill)
        object.__setattr__(self, "_values", bounded)
        object.__setattr__(self, "_clipped", clipped)

    @property
    def clipped(self) -> dict[str, tuple[float, float]]:
        """Parameter -> (asked, used) for the values this construction clipped into bounds."""
        return dict(self._clipped)

    @property
    def skill(self) -> str:
        """The skill these parameters belong to."""
        return self._skill

    def __getattr__(self, name: str) -> float:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"skill {self._skill!r} has no parameter {name!r}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SkillParams are immutable; use with_updates()")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SkillParams)
            and other._skill == self._skill
            and other._values == self._values
        )

    def __hash__(self) -> int:
        return hash((self._skill, tuple(sorted(self._values.items()))))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"SkillParams({self._skill!r}, {inner})"

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the parameters, in declaration order."""
        return dict(self._values)

    def with_updates(self, updates: Mapping[str, Any]) -> SkillParams:
        """A copy with some parameters changed; unknown names and non-numbers are clear errors."""
        for key, value in updates.items():
            if key not in self._values:
                known = sorted(self._values)
                raise UnknownNameError(
                    f"skill {self._skill!r} has no parameter {key!r}; parameters: {known}."
                    + did_you_mean(key, known)
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ConfigError(f"{self._skill}.{key} must be a number, got {value!r}")
        return SkillParams(self._skill, {**self._values, **updates})


def default_params() -> dict[str, SkillParams]:
    """Skill -> its parameters before any correction, for every skill that has parameters."""
    return {
        s.name: SkillParams(s.name, {p.name: p.default for p in s.params})
        for s in skill_specs()
        if s.params
    }


@cache
def generic_params() -> dict[str, dict[str, str]]:
    """Skill-neutral parameter name -> {skill: that skill's parameter}.

    Corrections that do not say which skill they mean ("lower", "slower") use these names; the
    skill running at the time decides the concrete parameter.
    """
    table: dict[str, dict[str, str]] = {}
    for s in skill_specs():
        for p in s.params:
            if p.generic is not None:
                table.setdefault(p.generic, {})[s.name] = p.name
    return table


def correctable_skills() -> dict[str, tuple[str, ...]]:
    """API skill acting on an object -> the skills whose parameters it runs with."""
    return {s.name: s.uses for s in skill_specs() if s.acts_on_object}


def placing_skills() -> tuple[str, ...]:
    """The skills that take a place target."""
    return tuple(s.name for s in skill_specs() if s.places)


@cache
def _verb_table() -> tuple[tuple[re.Pattern[str], str], ...]:
    ranked = sorted((s for s in skill_specs() if s.verbs), key=lambda s: s.verb_rank)
    return tuple((re.compile(rf"\b(?:{s.verbs})\b"), s.name) for s in ranked)


for _derived in (generic_params, _verb_table):
    SKILLS.on_change(_derived.cache_clear)


def skill_of_words(text: str) -> str | None:
    """The skill a (normalised) correction's words name ("grab it lower" -> "pick"), or None."""
    for pattern, name in _verb_table():
        if pattern.search(text):
            return name
    return None


def api_doc() -> dict[str, str]:
    """Signature -> documentation line of every skill, in declaration order."""
    return {s.signature(): s.doc for s in skill_specs()}


__all__ = [
    "ArgSpec",
    "ParamSpec",
    "SKILLS",
    "SkillParams",
    "SkillSpec",
    "api_doc",
    "bound_params",
    "correctable_skills",
    "default_params",
    "generic_params",
    "placing_skills",
    "register_skill",
    "skill",
    "skill_of_words",
    "skill_spec",
    "skill_specs",
    "stored_params",
    "yaw_param",
    "YAW_BOUNDS",
]
