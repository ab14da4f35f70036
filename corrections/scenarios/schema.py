"""The scenario file format (YAML, one scenario per file) and its loader.

A scenario hides a problem in the world (a slippery heavy object, a miscalibrated camera, a
stiff drawer, a user preference) and lists rounds of task instances. The simulated corrector
knows the hidden truth; the robot only learns it through corrections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corrigible.errors import ConfigError, did_you_mean
from corrigible.sim_envs.layout import LayoutConfig, ObjectRequest
from corrigible.sim_envs.palette import COLORS
from corrigible.sim_envs.vocabulary import kind_names, object_kind, requestable_kind

BUILTIN_DIR = Path(__file__).parent / "builtin"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectModel(_Model):
    """One object of the layout, with the properties the robot cannot see."""

    kind: str  # a requestable kind of `sim_envs.vocabulary` ("block", "cylinder", "bowl")
    color: str  # palette colour
    size: Literal["small", "medium", "large"] = "medium"
    friction: float | None = Field(default=None, gt=0.0, le=2.0)  # sliding coefficient
    mass: float | None = Field(default=None, gt=0.0, le=5.0)  # kg

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
    """The user's standing wish: objects matching color/shape belong in `target`."""

    color: str | None = None
    shape: str | None = None  # the shape of a graspable kind ("cube", "cylinder"); None: any
    target: str = Field(min_length=1)  # scene object name, e.g. "blue bowl"

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

    def matches(self, color: str, shape: str) -> bool:
        """Whether an object with this colour and shape falls under the preference."""
        return (self.color in (None, color)) and (self.shape in (None, shape))


class TaskInstance(_Model):
    """One task: an instruction the planner parses and the predicate that judges success."""

    instruction: str = Field(min_length=1)
    expect: str = Field(min_length=1)  # predicate, e.g. "in(red cylinder, green bowl)"
    seed: int = Field(ge=0)  # layout seed
    objects: list[ObjectModel] | None = None  # replaces the scenario's objects for this task
    control: bool = False  # stored knowledge must NOT be applied here


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
    camera_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # m added to perceived positions
    preferences: list[PreferenceModel] = Field(default_factory=list)
    rounds: list[list[TaskInstance]] = Field(min_length=1)

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
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read scenario YAML ({exc}); fix the file") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"{path}: field {_field(first['loc'])}: {first['msg']} (got {first.get('input')!r})"
            f"; {len(exc.errors())} problem(s) in all. See corrections/README.md#scenarios."
        ) from exc


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
        raise ConfigError(f"no scenario files (*.yaml) at {path}; pass --scenarios DIR")
    scenarios = [load_scenario(f) for f in files]
    names = [s.name for s in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: scenario names must be unique, repeated: {dupes}")
    return scenarios
