"""The event-camera evaluation's configuration: a pydantic model of `event_camera.yaml`.

`load_eval_config` reads the shipped YAML, overlays a user file, the file's `quick:` section
(with `--quick`) and dotted `--set` overrides on the raw data, and only then validates the
result through `EventCameraEvalConfig`, so every source is checked the same way. Unknown keys
are refused at every level (`extra="forbid"` here; the library sections `emulator`,
`controllers`, `vpr` and `routes.<name>` are the event-camera dataclasses, which refuse them
too), and an error names the field, the value received and what to write instead.

`events_config_schema()` returns the JSON Schema of the YAML file (field descriptions and units
included) for publishing.

Example:
    cfg = load_eval_config(quick=True, overrides={"controllers": {"slow": {"step": 10}}})
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from corrigible.config import config_error, field_comments
from corrigible.errors import ConfigError, UnknownNameError, did_you_mean
from corrigible.sim_envs.event_camera.biases import DavisBiases
from corrigible.sim_envs.event_camera.controllers import (
    ControllersConfig,
    FastLoopConfig,
    HysteresisConfig,
    SlowLoopConfig,
)
from corrigible.sim_envs.event_camera.emulator import EmulatorConfig
from corrigible.sim_envs.event_camera.route import LightingConfig, RouteConfig
from corrigible.sim_envs.event_camera.vpr import VprConfig

__all__ = [
    "REPEAT_SEED_STRIDE",
    "YAML_VERSION",
    "EventCameraEvalConfig",
    "default_config_path",
    "events_config_schema",
    "load_eval_config",
]

YAML_VERSION = 1  # layout version of event_camera.yaml that this model reads
REPEAT_SEED_STRIDE = 1000  # repeat r of a condition uses traversal seed  base + r * stride


class EventCameraEvalConfig(BaseModel):
    """Everything `corrigible events eval` runs; the fields are `event_camera.yaml`'s keys.

    Field order is the order of the `config` section in the results JSON.
    """

    model_config = ConfigDict(extra="forbid")

    render_fps: float = Field(50.0, description="MuJoCo renders per second of traversal, Hz")
    emulate_fps: float = Field(
        100.0, description="emulator frame rate, Hz; an integer multiple of render_fps"
    )
    warmup_s: float = Field(
        6.0, description="controller warm-up before each recorded traversal, s (>= 0)"
    )
    eval_route: str = Field("test", description="key of `routes` to score")
    routes: dict[str, RouteConfig] = Field(
        default_factory=dict, description="route name -> textured street and traversal wobble"
    )
    lighting: dict[str, LightingConfig] = Field(
        default_factory=dict,
        description="condition -> [[t_s, gain], ...]: piecewise-linear gain on linear intensity",
    )
    reference_lighting: str = Field("high", description="lighting of the reference traversal")
    conditions: list[str] = Field(
        default_factory=lambda: ["low", "medium", "high", "changing"],
        description="lighting conditions of the query traversals, in report order",
    )
    traversal_seeds: dict[str, int] = Field(
        default_factory=dict,
        description="'reference' or condition -> traversal seed (default 1000 + its index)",
    )
    repeats: int = Field(
        5,
        description=f"query traversals per condition, 1..{REPEAT_SEED_STRIDE - 1}; repeat r "
        f"uses seed + r * {REPEAT_SEED_STRIDE}",
    )
    common_band: tuple[float, float] = Field(
        (5e5, 2.5e6), description="[low, high] events/s at 346x260, scored for every controller"
    )
    initial_biases_jaer: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description="bias name -> jAER [coarse, fine] codes at the start (empty: the paper's)",
    )
    emulator: EmulatorConfig = Field(
        default_factory=EmulatorConfig, description="sensor geometry and pixel noise model"
    )
    controllers: ControllersConfig = Field(
        default_factory=ControllersConfig, description="bias controllers and their parameters"
    )
    vpr: VprConfig = Field(default_factory=VprConfig, description="place-recognition scoring")
    cache_dir: str | None = Field(
        None, description="directory caching rendered traversals (null: render every time)"
    )
    workers: int = Field(
        2, description="processes running a traversal's controllers in parallel (fork), >= 1"
    )

    # -- names from the keys --------------------------------------------------------------
    @field_validator("routes", mode="before")
    @classmethod
    def _name_routes(cls, value: Any) -> Any:
        """A route's name is its key: `routes: {test: {seed: 23}}` is route "test"."""
        return _named(value, "routes")

    @field_validator("lighting", mode="before")
    @classmethod
    def _name_lighting(cls, value: Any) -> Any:
        """`lighting: {low: [[0, 0.04]]}` is the condition "low" with those points."""
        return _named(value, "lighting")

    # -- single fields --------------------------------------------------------------------
    # (field, test, what a good value looks like): one check each, one message form.
    _RANGES: ClassVar[tuple[tuple[str, Callable[[Any], bool], str], ...]] = (
        ("render_fps", lambda v: v > 0, "must be > 0 Hz, e.g. 50."),
        ("warmup_s", lambda v: v >= 0, "must be >= 0 s; 0 turns the warm-up off."),
        ("workers", lambda v: v >= 1, "must be an int >= 1; 1 runs in-process."),
        (
            "repeats",
            lambda v: 1 <= v < REPEAT_SEED_STRIDE,
            f"must be an int in 1..{REPEAT_SEED_STRIDE - 1} (query traversals per condition).",
        ),
    )

    @field_validator("render_fps", "warmup_s", "workers", "repeats")
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        for name, test, good in cls._RANGES:
            if name == info.field_name and not test(value):
                raise ValueError(f"{name}={value!r} {good}")
        return value

    @field_validator("common_band")
    @classmethod
    def _ordered_band(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1]:
            raise ValueError(
                f"common_band={list(value)!r} must satisfy 0 < low < high (events/s), "
                "e.g. [5.0e+5, 2.5e+6]."
            )
        return value

    @field_validator("initial_biases_jaer")
    @classmethod
    def _valid_bias_codes(cls, value: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        DavisBiases.from_jaer(value or None)  # raises naming the bias, the code and the range
        return value

    # -- fields that depend on each other -------------------------------------------------
    @model_validator(mode="after")
    def _consistent(self) -> EventCameraEvalConfig:
        if self.eval_route not in self.routes:
            raise UnknownNameError(
                f"eval_route={self.eval_route!r} is not in routes {sorted(self.routes)}; "
                "name one of them or define it under `routes`."
                + did_you_mean(self.eval_route, self.routes)
            )
        for name in [self.reference_lighting, *self.conditions]:
            if name not in self.lighting:
                raise UnknownNameError(
                    f"lighting condition {name!r} is not defined; define it under `lighting` "
                    f"(have {sorted(self.lighting)})." + did_you_mean(name, self.lighting)
                )
        ratio = self.emulate_fps / self.render_fps
        if not (ratio >= 1 and abs(ratio - round(ratio)) < 1e-9):
            raise ValueError(
                f"emulate_fps={self.emulate_fps!r} must be a positive integer multiple of "
                f"render_fps={self.render_fps!r}, e.g. {2 * self.render_fps:g}."
            )
        window_frames = self.controllers.window_s * self.emulate_fps
        if abs(window_frames - round(window_frames)) > 1e-6:
            raise ValueError(
                f"controllers.window_s={self.controllers.window_s} s must hold a whole number of "
                f"emulator frames at emulate_fps={self.emulate_fps}."
            )
        return self


def _named(value: Any, section: str) -> Any:
    """Gives each entry of a name-keyed section (`routes`, `lighting`) its key as its name."""
    if not isinstance(value, Mapping):
        return value  # not a mapping: pydantic reports the wrong type
    out: dict[Any, Any] = {}
    for key, entry in value.items():
        if isinstance(entry, RouteConfig | LightingConfig):
            out[key] = entry
        elif section == "lighting":
            out[key] = {"name": key, "points": entry}
        elif isinstance(entry, Mapping):
            if "name" in entry and entry["name"] != key:
                raise ValueError(
                    f"{section}.{key}.name={entry['name']!r}: the key is the name; leave "
                    "`name` out."
                )
            out[key] = {**entry, "name": key}
        else:
            out[key] = entry  # not a mapping: pydantic reports the wrong type
    return out


# ---------------------------------------------------------------------------------- loading
def default_config_path() -> Path:
    """The shipped `event_camera.yaml`, beside this module."""
    return Path(__file__).with_name("event_camera.yaml")


def _deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_eval_config(
    path: str | Path | None = None,
    *,
    quick: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> EventCameraEvalConfig:
    """Reads the eval YAML (the shipped one by default), applies `quick:` and overrides.

    Every layer is merged into the raw data first; the result is validated once, by the model.

    Args:
        path: a YAML file with the same layout as `event_camera.yaml`; keys it leaves out keep
            the shipped values.
        quick: also apply the file's `quick:` section (a small version for smoke tests).
        overrides: nested dict applied last (what `--set a.b=value` parses into).

    Raises:
        ConfigError: a value or key is invalid; the message names the field, the value and a fix.
        UnknownNameError: a route or lighting condition is named but not defined.
    """
    raw = yaml.safe_load(default_config_path().read_text())
    if path is not None:
        user = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path} must hold a YAML mapping, got {type(user).__name__}.")
        _deep_update(raw, user)
    quick_section = raw.pop("quick", {}) or {}
    if quick:
        _deep_update(raw, quick_section)
    if overrides:
        _deep_update(raw, overrides)
    version = raw.pop("version", YAML_VERSION)
    if version != YAML_VERSION:
        raise ConfigError(
            f"version={version!r}: this corrigible reads event-camera eval YAML version "
            f"{YAML_VERSION}; update the file to that layout."
        )
    try:
        return EventCameraEvalConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(EventCameraEvalConfig, exc.errors(), what="eval config") from exc


# ------------------------------------------------------------------------------- JSON Schema
_LIGHTING_POINTS = {
    "type": "array",
    "minItems": 1,
    "description": "[[t_s, gain], ...]: time (s, not decreasing) and gain (> 0) on linear "
    "intensity; linear in between, held outside",
    "items": {
        "type": "array",
        "prefixItems": [{"type": "number"}, {"type": "number", "exclusiveMinimum": 0}],
        "minItems": 2,
        "maxItems": 2,
    },
}


def events_config_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of `event_camera.yaml`, every field described with its unit.

    The model's schema, with three adjustments for the file's layout: a route's `name` and a
    lighting condition's `name` come from their keys; lighting values are lists of points; and
    the file may hold `version` and a `quick:` overlay (a partial file applied by `--quick`).
    """
    schema = EventCameraEvalConfig.model_json_schema(mode="validation")
    defs = schema["$defs"]
    for title, definition in defs.items():
        cls = _SECTION_CLASSES.get(title)
        if cls is None:
            continue
        comments = field_comments(cls) | _UNCOMMENTED.get(title, {})
        for name, prop in definition.get("properties", {}).items():
            ref = prop.get("$ref", "").rpartition("/")[2]
            text = comments.get(name) or defs.get(ref, {}).get("description")
            if text and "description" not in prop:
                prop["description"] = text
    route = defs["RouteConfig"]
    route["properties"].pop("name", None)
    route["required"] = [r for r in route.get("required", []) if r != "name"]
    route["additionalProperties"] = False
    for title in _SECTION_CLASSES:
        if title in defs:
            defs[title]["additionalProperties"] = False
    defs.pop("LightingConfig", None)
    schema["properties"]["lighting"]["additionalProperties"] = _LIGHTING_POINTS
    schema["properties"]["version"] = {
        "const": YAML_VERSION,
        "description": "layout version of this file",
    }
    schema["properties"]["quick"] = {
        "type": "object",
        "description": "partial file of the same layout, merged on top by `--quick` before "
        "validation",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


_SECTION_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RouteConfig,
        EmulatorConfig,
        ControllersConfig,
        VprConfig,
        FastLoopConfig,
        SlowLoopConfig,
        HysteresisConfig,
    )
}

# Library fields without a comment of their own.
_UNCOMMENTED: dict[str, dict[str, str]] = {
    "ControllersConfig": {"enabled": "controllers to run, in this order (registered names)"},
}
