"""`EventCameraEvalConfig`: the pydantic model of event_camera.yaml, its loader and its schema."""

from __future__ import annotations

import pytest
import yaml

from corrigible.errors import ConfigError, UnknownNameError
from corrigible.launch.evaluations.config_event_camera import (
    EventCameraEvalConfig,
    default_config_path,
    events_config_schema,
    load_eval_config,
)
from corrigible.launch.events import parse_overrides
from corrigible.sim_envs.event_camera.controllers import ControllersConfig
from corrigible.sim_envs.event_camera.route import LightingConfig, RouteConfig


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_shipped_yaml_validates_into_library_configs(quick):
    cfg = load_eval_config(quick=quick)
    assert isinstance(cfg, EventCameraEvalConfig)
    assert isinstance(cfg.routes["test"], RouteConfig) and cfg.routes["test"].name == "test"
    assert isinstance(cfg.lighting["changing"], LightingConfig)
    assert cfg.lighting["low"].name == "low" and cfg.lighting["low"].points == [(0.0, 0.04)]
    assert isinstance(cfg.controllers, ControllersConfig) and cfg.controllers.fast.fine_min == 35
    assert cfg.routes["test"].length_m == (17.5 if quick else 50.0)
    assert cfg.repeats == (1 if quick else 5)
    assert cfg.common_band == (5e5, 2.5e6) and cfg.initial_biases_jaer["PrBp"] == (6, 119)


def test_dotted_overrides_are_applied_before_validation():
    cfg = load_eval_config(
        overrides=parse_overrides(["controllers.slow.step=10", "conditions=[low, high]"])
    )
    assert cfg.controllers.slow.step == 10 and cfg.conditions == ["low", "high"]
    assert cfg.controllers.slow.step_ratio == 2.0  # the rest of the section is kept
    with pytest.raises(ConfigError, match=r"slow\.step=0 must be an int in 1\.\.255"):
        load_eval_config(overrides=parse_overrides(["controllers.slow.step=0"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"warmup_hz": 1}, r"unknown field 'warmup_hz' in eval config.*Did you mean 'warmup_s'"),
        (
            {"controllers": {"slow": {"stepp": 3}}},
            r"unknown field 'stepp' in controllers\.slow.*Did you mean 'step'",
        ),
        (
            {"routes": {"test": {"lenght_m": 3}}},
            r"unknown field 'lenght_m' in routes\.test.*Did you mean 'length_m'",
        ),
        ({"emulator": {"wdth": 3}}, r"unknown field 'wdth' in emulator.*Did you mean 'width'"),
        ({"warmup_s": "long"}, r"warmup_s='long': Input should be a valid number"),
        ({"warmup_s": -1}, r"warmup_s=-1\.0 must be >= 0 s; 0 turns the warm-up off"),
        ({"workers": 0}, r"workers=0 must be an int >= 1"),
        ({"repeats": 1000}, r"repeats=1000 must be an int in 1\.\.999"),
        ({"common_band": [3e6, 1e6]}, r"common_band=\[3000000\.0, 1000000\.0\] must satisfy"),
        ({"vpr": {"pool": 0}}, r"vpr\.pool=0 must be an int >= 1"),
        ({"initial_biases_jaer": {"PrBp": [9, 3]}}, r"initial_biases_jaer: jAER coarse=9 is"),
        ({"controllers": {"fast": {"hold_band": [1]}}}, r"fast\.hold_band\.1 is required"),
        ({"emulate_fps": 75}, r"emulate_fps=75\.0 must be a positive integer multiple"),
        ({"routes": {"test": {"name": "other"}}}, r"routes\.test\.name='other': the key is"),
        ({"version": 2}, r"version=2: this corrigible reads .* version 1"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_invalid_values_name_the_field_the_value_and_a_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_eval_config(overrides=overrides)


def test_undefined_names_raise_unknown_name_errors():
    with pytest.raises(UnknownNameError, match="eval_route='tst'.*Did you mean 'test'"):
        load_eval_config(overrides={"eval_route": "tst"})
    with pytest.raises(UnknownNameError, match="lighting condition 'dusk'"):
        load_eval_config(overrides={"conditions": ["dusk"]})
    with pytest.raises(UnknownNameError, match="unknown controller 'fast_slw'"):
        load_eval_config(overrides={"controllers": {"enabled": ["fast_slw"]}})


def test_a_user_file_overlays_the_shipped_one(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("warmup_s: 2.5\ncontrollers:\n  fast:\n    gain: 0.5\n")
    cfg = load_eval_config(path)
    assert cfg.warmup_s == 2.5 and cfg.controllers.fast.gain == 0.5
    assert cfg.controllers.fast.fine_min == 35
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="must hold a YAML mapping"):
        load_eval_config(path)


def test_schema_describes_every_field_and_accepts_the_shipped_file():
    jsonschema = pytest.importorskip("jsonschema")
    schema = events_config_schema()
    undescribed = [
        f"{where}.{name}"
        for where, section in [("", schema), *schema["$defs"].items()]
        for name, prop in section.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert not undescribed
    shipped = yaml.safe_load(default_config_path().read_text())
    jsonschema.Draft202012Validator(schema).validate(shipped)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**shipped, "warmup_hz": 1})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(
            {**shipped, "emulator": {**shipped["emulator"], "wdth": 3}}
        )
