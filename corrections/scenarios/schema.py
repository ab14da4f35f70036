"""The scenario file format (YAML, one scenario per file) and its loader.

A scenario hides a problem in the world (a slippery heavy object, a miscalibrated camera, a
stiff drawer, a user preference) and lists rounds of task instances. The simulated corrector
knows the hidden truth; the robot only learns it through corrections.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corrigible.boundary import escape, load_yaml
from corrigible.errors import (
    ConfigError,
    CorrigibleError,
    ParseError,
    UnknownNameError,
    UnknownObjectError,
    did_you_mean,
)
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest, sample_layout
from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.vocabulary import kind_names, object_kind, object_name, requestable_kind

BUILTIN_DIR = Path(__file__).parent / "builtin"
CAMERA_BIAS_LIMIT_M = 0.1  # m; |each component| of a camera bias (a miscalibration, not a move)
MAX_SEED = 2**32 - 1  # layout seeds are 32-bit

# One component of a camera bias: finite and within the limit (NaN, inf and 1e9 are refused).
BiasComponent = Annotated[
    float, Field(ge=-CAMERA_BIAS_LIMIT_M, le=CAMERA_BIAS_LIMIT_M, allow_inf_nan=False)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectModel(_Model):
    """One object of the layout, with the properties the robot cannot see."""

    kind: str  # a requestable kind of `sim_envs.vocabulary` ("block", "cylinder", "bowl")
    color: str  # palette colour
    size: Literal["small", "medium", "large"] = "medium"
    friction: float | None = Field(default=None, gt=0.0, le=2.0)  # sliding coefficient
    mass: float | None = Field(default=None, gt=0.0, le=5.0)  # kg
    # A name for a hidden property this object shares with others ("slippery"): the demo counts
    # a task on an object never corrected before as transfer when an object corrected earlier
    # shares it (hidden friction/mass, a matching preference and a camera bias count without it).
    property: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("kind")
    @classmethod
    def _check_kind(cls, value: str) -> str:
        return requestable_kind(value)

    @field_validator("color")
    @classmethod
    def _check_color(cls, value: str) -> str:
        if value not in COLORS:
            raise ValueError(f"color {value!r} is not a palette colour {sorted(COLORS)}")
        return value

    def request(self) -> ObjectRequest:
        """The layout request for this object."""
        return ObjectRequest(
            kind=self.kind,
            color=self.color,
            size_class=self.size,
            friction=self.friction,
            mass=self.mass,
        )


class DrawerModel(_Model):
    """The cabinet drawer's hidden mechanics."""

    handle_offset_y: float = Field(default=0.0, ge=-0.1, le=0.1)  # m, off-centre handle, +y = left
    frictionloss: float = Field(default=0.5, ge=0.0, le=50.0)  # N, dry friction (weak in MuJoCo)
    damping: float = Field(default=2.0, ge=0.0, le=10000.0)  # N*s/m, a stiff slide


class PreferenceModel(_Model):
    """The user's standing wish: objects matching color/shape/size belong in `target`.

    With `avoid`, the wish is the opposite: those objects must never go in `target` ("never
    use the green bowl"). Wishes about shape or size, and places to avoid, are said as standing
    rules (`corrections.plan_corrector`).
    """

    color: str | None = None
    shape: str | None = None  # the shape of a graspable kind ("cube", "cylinder"); None: any
    size: Literal["small", "medium", "large"] | None = None  # size class; None: any
    target: str = Field(min_length=1)  # scene object name, e.g. "blue bowl"
    avoid: bool = False  # True: matching objects must never go in `target`

    @field_validator("color")
    @classmethod
    def _check_color(cls, value: str | None) -> str | None:
        if value is not None and value not in COLORS:
            raise ValueError(
                f"color {value!r} is not a palette colour {sorted(COLORS)}."
                + did_you_mean(value, COLORS)
            )
        return value

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, value: str | None) -> str | None:
        shapes = list(dict.fromkeys(object_kind(k).shape for k in kind_names(graspable=True)))
        if value is not None and value not in shapes:
            raise ValueError(
                f"shape must be the shape of a graspable kind {shapes}, got {value!r}."
                + did_you_mean(value, shapes)
            )
        return value

    def matches(self, color: str, shape: str, size: str | None = None) -> bool:
        """Whether an object with this colour, shape (and size) falls under the preference."""
        sized = self.size is None or size is None or self.size == size
        return (self.color in (None, color)) and (self.shape in (None, shape)) and sized


class TaskInstance(_Model):
    """One task: an instruction the planner parses and the predicate that judges success."""

    instruction: str = Field(min_length=1)
    expect: str = Field(min_length=1)  # predicate, e.g. "in(red cylinder, green bowl)"
    seed: int = Field(ge=0, le=MAX_SEED)  # layout seed
    objects: list[ObjectModel] | None = None  # replaces the scenario's objects for this task
    control: bool = False  # stored knowledge must NOT be applied here
    # The task's object shares a corrected property without being one corrected before: the
    # demo reports it as transfer, not recall (see `property` on objects for the inferred case).
    transfer: bool = False

    @field_validator("instruction", "expect")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank; write the words, e.g. 'put the red block ...'")
        return value


Persona = Literal["plain", "terse", "polite"]


class Scenario(_Model):
    """A scenario file."""

    version: Literal[1] = 1  # file format version
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    description: str = ""
    family: Literal["preference", "hidden_property", "camera_bias", "lookalike", "other"] = (
        "other"  # what kind of problem it hides (for grouping results)
    )
    persona: Persona = "plain"  # the corrector's phrasing style: plain | terse | polite
    objects: list[ObjectModel] = Field(min_length=1)
    drawer: DrawerModel | None = None  # None: no cabinet in the scene
    # m added to perceived positions; each component finite, |x| <= CAMERA_BIAS_LIMIT_M
    camera_bias: tuple[BiasComponent, BiasComponent, BiasComponent] = (0.0, 0.0, 0.0)
    preferences: list[PreferenceModel] = Field(default_factory=list)
    # rounds of task instances: 1-20 rounds of 1-50 tasks (every task is checked at load)
    rounds: list[Annotated[list[TaskInstance], Field(min_length=1, max_length=50)]] = Field(
        min_length=1, max_length=20
    )

    def layout(self, task: TaskInstance) -> LayoutConfig:
        """The layout of one task instance."""
        objects = task.objects if task.objects is not None else self.objects
        drawer = self.drawer or DrawerModel()
        return LayoutConfig(
            objects=[o.request() for o in objects],
            include_drawer=self.drawer is not None,
            drawer_handle_offset_y=drawer.handle_offset_y,
            drawer_frictionloss=drawer.frictionloss,
            drawer_damping=drawer.damping,
        )

    def problems(self) -> Iterator[str]:
        """What no task of the file could run with, each naming the round, task and field.

        Every task's layout is drawn (`sample_layout`: pure and fast, no engine) and its
        `expect` parsed against it, so a predicate naming an object that is not in the layout,
        two objects with one name or an overcrowded table are found when the file is read,
        not minutes later inside a worker. Preference targets must name an object of the
        scenario.
        """
        from corrigible.sim_envs.predicates import parse_predicate

        names = {_name(o) for o in self.objects}
        names |= {_name(o) for rnd in self.rounds for t in rnd for o in t.objects or ()}
        if self.drawer is not None:
            names.add("drawer")  # a wish may name the cabinet's drawer ("cylinders go in it")
        for i, pref in enumerate(self.preferences):
            if pref.target not in names:
                yield (
                    f"preferences[{i}].target: {escape(repr(pref.target))} is no object of the "
                    f"scenario {sorted(names)}; name one of them."
                    + did_you_mean(pref.target, names)
                )
        for r, tasks in enumerate(self.rounds):
            for t, task in enumerate(tasks):
                where = f"round {r + 1}, task {t + 1}"
                try:
                    scene = sample_layout(task.seed, self.layout(task))
                except CorrigibleError as exc:
                    if task.objects is not None:
                        yield f"{where} (rounds[{r}][{t}].objects): {exc}"
                    else:
                        yield f"{where} (rounds[{r}][{t}], the scenario's objects): {exc}"
                    continue
                try:
                    parse_predicate(task.expect, scene)
                except (ParseError, UnknownNameError, UnknownObjectError) as exc:
                    yield f"{where} (rounds[{r}][{t}].expect {escape(repr(task.expect))}): {exc}"


def _name(obj: ObjectModel) -> str:
    return object_name(obj.color, obj.kind)


def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<file>"


def load_scenario(path: Path) -> Scenario:
    """Reads and validates one scenario file.

    Raises:
        ConfigError: the file is not YAML or a field is invalid; names the file and field.
    """
    shown = escape(path)
    data = load_yaml(path, what="scenario")  # ConfigError: not UTF-8, not YAML, too deep
    if data is None:
        raise ConfigError(
            f"{shown}: the scenario file is empty; `corrigible schema scenario` lists the fields"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}: a scenario must be a mapping of fields (`corrigible schema scenario`), "
            f"got {type(data).__name__}"
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        got = escape(repr(first.get("input")))[:200]
        message = escape(first["msg"].removeprefix("Value error, "))
        raise ConfigError(
            f"{shown}: field {escape(_field(first['loc']))}: {message} (got {got}); "
            f"{len(exc.errors())} problem(s) in all. See corrections/README.md#scenarios."
        ) from None
    except (CorrigibleError, RecursionError) as exc:  # a validator's own error, unwrapped
        raise ConfigError(f"{shown}: {escape(exc)}") from None
    problems = list(scenario.problems())
    if problems:
        more = f"; {len(problems)} problem(s) in all" if len(problems) > 1 else ""
        raise ConfigError(f"{shown}: {escape(problems[0])}{more}")
    return scenario


def load_scenarios(source: str | Path | None = None) -> list[Scenario]:
    """Every `*.yaml` scenario in a directory (default: the built-in ones), sorted by file name.

    Args:
        source: a directory, a single file, None or "builtin".

    Raises:
        ConfigError: missing directory, no scenarios, an invalid file, or duplicate names.
    """
    path = BUILTIN_DIR if source in (None, "builtin") else Path(source)
    files = [path] if path.is_file() else sorted(path.glob("*.yaml"))
    if not path.exists() or not files:
        raise ConfigError(f"no scenario files (*.yaml) at {escape(path)}; pass --scenarios DIR")
    scenarios = [load_scenario(f) for f in files]
    names = [s.name for s in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{escape(path)}: scenario names must be unique, repeated: {dupes}")
    return scenarios
