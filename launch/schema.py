"""`corrigible schema NAME`: the JSON Schema of a YAML file or of a verb's configuration.

Example:
    corrigible schema                        # the names, with what each describes
    corrigible schema suite                  # JSON Schema of a suite YAML (policies/suites/)
    corrigible schema launch --out launch.schema.json

Every file corrigible reads and every verb's options are a pydantic model (library dataclasses
nested in the event-camera config are published through pydantic's `TypeAdapter`). Fields are
documented by a one-line comment with the unit; `json_schema` copies those comments into the
schema's `description`s, so the comment stays the one place the text is written.

This module also holds `VerbConfig`, the base of the verb configs (a
`corrigible.config.StrictConfig`): unknown fields are refused, and a check that raises a
corrigible error (a `ConfigError` naming the field, the value and the fix) reaches the caller as
that error rather than wrapped in pydantic's `ValidationError`, so every verb keeps its messages
and exit codes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import (
    BaseModel,
    TypeAdapter,
    field_validator,
    model_validator,
)

from corrigible.config import StrictConfig, field_comments
from corrigible.errors import ConfigError, UnknownNameError
from corrigible.registry import Registry

_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# name -> (what the schema describes, "module:attribute" of a model class, a dataclass or a
# function returning a schema dict), in the order `corrigible schema` lists them.
_TABLE: tuple[tuple[str, str, str], ...] = (
    ("suite", "a suite YAML file (policies/suites/*.yaml)", "policies.suites.schema:Suite"),
    (
        "scenario",
        "a scenario YAML file (corrections/scenarios/builtin/*.yaml)",
        "corrections.scenarios.schema:Scenario",
    ),
    ("launch", "a launch file: one session configuration, YAML or JSON", "session:SessionConfig"),
    (
        "events",
        "the event-camera evaluation YAML (launch/evaluations/event_camera.yaml)",
        "launch.evaluations.config_event_camera:events_config_schema",
    ),
    (
        "kb-entry",
        "one knowledge-base entry (a line of `kb export`)",
        "memory.schema:KnowledgeEntry",
    ),
    ("run", "`corrigible run` options", "launch.run:RunConfig"),
    ("demo", "`corrigible demo` options", "launch.demo:DemoConfig"),
    ("eval", "`corrigible eval` options", "launch.eval:EvalConfig"),
    ("bench", "`corrigible bench` options", "launch.bench:BenchConfig"),
    ("exec", "`corrigible exec` options", "launch.exec_program:ExecConfig"),
    ("trace", "`corrigible trace show` options", "launch.trace:TraceShowConfig"),
    ("kb", "`corrigible kb` options (every sub-command)", "launch.kb:KbConfig"),
    ("events-eval", "`corrigible events eval` options", "launch.events:EventsEvalConfig"),
    ("route", "`corrigible route` options", "launch.route:RouteConfig"),
    ("learn", "`corrigible learn` options", "launch.learn:LearnConfig"),
    ("schema", "`corrigible schema` options", "launch.schema:SchemaConfig"),
    ("bridge", "`corrigible bridge` options", "launch.bridge:BridgeConfig"),
    ("console", "`corrigible console` options", "launch.console:ConsoleConfig"),
    ("launch-options", "`corrigible launch` options", "launch.launch_file:LaunchConfig"),
    ("repair", "`corrigible repair` options", "launch.evaluations.repair:RepairRunConfig"),
    (
        "repair-eval",
        "options of the repair evaluation (`python -m corrigible.launch.evaluations.repair eval`)",
        "launch.evaluations.repair:RepairEvalConfig",
    ),
    (
        "launch-file",
        "a `corrigible launch` file (kind: console|bridge|sim_robot|real_arm)",
        "launch.launch_file:launch_file_schema",
    ),
    ("train-ll", "`corrigible train ll` options", "launch.train_ll:TrainLowLevelConfig"),
    ("train-hl", "`corrigible train hl` options", "launch.train_hl:TrainHLConfig"),
    ("dataset-record", "`corrigible dataset record` options", "launch.dataset:DatasetRecordConfig"),
    ("dataset-export", "`corrigible dataset export` options", "launch.dataset:DatasetExportConfig"),
    ("dataset-info", "`corrigible dataset info` options", "launch.dataset:DatasetInfoConfig"),
)

# name -> what the schema describes: a model class, a dataclass, or a function giving the
# schema; imported on first use.
SCHEMAS: Registry[type | Callable[[], dict[str, Any]]] = Registry("schema")
for _name, _what, _target in _TABLE:
    SCHEMAS.register(_name, f"corrigible.{_target}")
_WHAT = {name: what for name, what, _ in _TABLE}


class VerbConfig(StrictConfig):
    """Base of every verb's config (a `corrigible.config.StrictConfig`).

    Unknown fields are refused, a validator's own error is raised as it is, and other problems
    become one `ConfigError`.
    """


def choices(values: typing.Iterable[str] | Callable[[], typing.Iterable[str]]) -> Any:
    """`json_schema_extra` listing a `str` field's allowed values as its schema `enum`.

    For fields whose check lives in a validator with the verb's own message (pydantic's
    `Literal` would answer first, with its own); a callable is evaluated when the schema is
    made (a registry's names).
    """

    def extra(schema: dict[str, Any]) -> None:
        names = list(values() if callable(values) else values)
        target = schema
        if "anyOf" in schema:  # `str | None`: the enum belongs to the string branch
            target = next((s for s in schema["anyOf"] if s.get("type") == "string"), schema)
        target["enum"] = names

    return extra


# ------------------------------------------------------------------------------- JSON Schema
def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) published under `name`, field comments as descriptions.

    Raises:
        UnknownNameError: no schema is published under `name`; suggests the closest name.
    """
    target = SCHEMAS.get(name)
    if not isinstance(target, type):
        return {"$schema": _DRAFT, **target()}  # a function that builds its own schema
    schema = TypeAdapter(target).json_schema(mode="validation")
    classes = _model_classes(target)
    _describe(schema, target)
    for key, definition in schema.get("$defs", {}).items():
        cls = classes.get(key) or classes.get(definition.get("title", ""))
        if cls is not None:
            _describe(definition, cls)
    return {"$schema": _DRAFT, **schema}


def _describe(schema: dict[str, Any], cls: type) -> None:
    """Adds each field's comment as its description; a dataclass refuses unknown fields too."""
    comments = field_comments(cls)
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and comments.get(name):
            prop["description"] = comments[name]
    if dataclasses.is_dataclass(cls):
        schema.setdefault("additionalProperties", False)  # its constructor refuses them


def _model_classes(root: type) -> dict[str, type]:
    """Class name -> class of `root` and every model or dataclass its fields refer to."""
    found: dict[str, type] = {}

    def visit(tp: Any) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if not isinstance(tp, type) or tp.__name__ in found:
            return
        if issubclass(tp, BaseModel):
            found[tp.__name__] = tp
            for info in tp.model_fields.values():
                visit(info.annotation)
        elif dataclasses.is_dataclass(tp):
            found[tp.__name__] = tp
            try:
                hints = typing.get_type_hints(tp)
            except (NameError, TypeError):  # a hint under TYPE_CHECKING: no nested models there
                hints = {}
            for hint in hints.values():
                visit(hint)

    visit(root)
    return found


# ------------------------------------------------------------------------------- the verb
class SchemaConfig(VerbConfig):
    """One `corrigible schema` invocation."""

    name: str | None = None  # schema to print, a name of SCHEMAS; None lists the names
    out: Path | None = None  # write the schema to this file (JSON, indent 2) instead of stdout

    @field_validator("name")
    @classmethod
    def _published(cls, value: str | None) -> str | None:
        if value is not None:
            SCHEMAS.canonical(value)  # UnknownNameError with a "did you mean", no import
        return value

    @model_validator(mode="after")
    def _out_needs_name(self) -> SchemaConfig:
        if self.out is not None and self.name is None:
            raise ConfigError(
                f"--out {self.out} needs a schema NAME; `corrigible schema` lists the names."
            )
        return self


def run(cfg: SchemaConfig) -> dict[str, Any] | None:
    """Prints (or writes) the schema `cfg.name`; without a name, lists the names.

    Returns:
        The schema, or None when the names were listed.
    """
    if cfg.name is None:
        width = max(map(len, SCHEMAS))
        for name in SCHEMAS:
            print(f"{name:<{width}}  {_WHAT[name]}")
        return None
    schema = json_schema(cfg.name)
    text = json.dumps(schema, indent=2) + "\n"
    if cfg.out is None:
        sys.stdout.write(text)
    else:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(text, encoding="utf-8")
        print(f"wrote {cfg.out}", file=sys.stderr)
    return schema


def register(app: typer.Typer) -> None:
    """Adds the `schema` verb."""

    @app.command("schema")
    def schema_cmd(
        name: str | None = typer.Argument(None, help=f"one of: {SCHEMAS.describe()}"),
        out: Path | None = typer.Option(None, help="write the schema to this JSON file"),
    ) -> None:
        """Print the JSON Schema of a YAML file or a verb's options; no NAME lists them."""
        try:
            run(SchemaConfig(name=name, out=out))
        except (UnknownNameError, ConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
