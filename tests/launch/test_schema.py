"""`corrigible schema`: every published JSON Schema is valid and describes the shipped files."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter
from typer.testing import CliRunner

import corrigible
from corrigible.errors import ConfigError, UnknownNameError
from corrigible.launch.bench import BenchConfig
from corrigible.launch.cli import VERBS, build_app
from corrigible.launch.exec_program import ExecConfig
from corrigible.launch.kb import KbConfig
from corrigible.launch.schema import SCHEMAS, VerbConfig, field_comments, json_schema

try:
    import jsonschema
except ImportError:  # pragma: no cover - jsonschema comes with the test dependencies
    jsonschema = None

ROOT = Path(corrigible.__file__).parent
SUITES = sorted((ROOT / "policies" / "suites").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "corrections" / "scenarios" / "builtin").glob("*.yaml"))
EVENTS_YAML = ROOT / "launch" / "evaluations" / "event_camera.yaml"
# launch/files holds session configs (`corrigible schema launch`, read by
# SessionConfig.from_file) and `corrigible launch` files, told apart by their `kind`
_ALL_LAUNCH = sorted((ROOT / "launch" / "files").glob("*.yaml"))
KIND_FILES = [p for p in _ALL_LAUNCH if "kind" in (yaml.safe_load(p.read_text()) or {})]
LAUNCH_FILES = [p for p in _ALL_LAUNCH if p not in KIND_FILES]
SHIPPED = (
    [("suite", path) for path in SUITES]
    + [("scenario", path) for path in SCENARIOS]
    + [("events", EVENTS_YAML)]
    + [("launch", path) for path in LAUNCH_FILES]
    + [("launch-file", path) for path in KIND_FILES]
)


def _validate(schema: dict[str, Any], document: Any) -> None:
    """Raises when `document` does not match `schema` (jsonschema, else a key-level check)."""
    if jsonschema is not None:
        jsonschema.Draft202012Validator(schema).validate(document)
    else:
        _check_keys(schema, document, schema.get("$defs", {}))


def _check_keys(node: dict[str, Any], value: Any, defs: dict[str, Any]) -> None:
    """Enums, required and unknown keys of every object, through $ref, anyOf, items and maps."""
    if "$ref" in node:
        node = defs[node["$ref"].rpartition("/")[2]]
    if "anyOf" in node:
        for branch in node["anyOf"]:
            try:
                return _check_keys(branch, value, defs)
            except ValueError:
                continue
        raise ValueError(f"{value!r} matches no branch")
    if "enum" in node and value not in node["enum"]:
        raise ValueError(f"{value!r} is not one of {node['enum']}")
    if isinstance(value, dict) and node.get("type") == "object":
        props = node.get("properties", {})
        missing = [key for key in node.get("required", []) if key not in value]
        extra = node.get("additionalProperties", True)
        unknown = [key for key in value if key not in props] if extra is False else []
        if missing or unknown:
            raise ValueError(f"missing {missing}, unknown {unknown}")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else {})
            _check_keys(sub, item, defs)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _check_keys(node["items"], item, defs)


def _refused(schema: dict[str, Any], document: Any) -> bool:
    try:
        _validate(schema, document)
    except (ValueError, getattr(jsonschema, "ValidationError", ValueError)):
        return True
    return False


def _check_schema(schema: dict[str, Any]) -> None:
    if jsonschema is not None:
        jsonschema.Draft202012Validator.check_schema(schema)
        return
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object" and isinstance(schema["properties"], dict)
    text = json.dumps(schema)
    for name in schema.get("$defs", {}):
        assert f'"#/$defs/{name}"' in text or name in schema["$defs"]
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}:
        assert ref in schema["$defs"], ref


# ------------------------------------------------------------------------------- schemas
@pytest.mark.parametrize("name", SCHEMAS.names())
def test_every_published_schema_is_valid_json_schema(name):
    schema = json_schema(name)
    _check_schema(schema)
    # a file of several kinds (launch files) is a tagged union of closed objects
    alternatives = [
        schema["$defs"][ref["$ref"].split("/")[-1]] for ref in schema.get("oneOf", [])
    ] or [schema]
    for alternative in alternatives:
        assert alternative["type"] == "object" and alternative["additionalProperties"] is False
    json.dumps(schema)  # printable as JSON


@pytest.mark.parametrize(
    ("name", "path"), SHIPPED, ids=[f"{name}-{path.stem}" for name, path in SHIPPED]
)
def test_shipped_files_validate(name, path):
    _validate(json_schema(name), yaml.safe_load(path.read_text()))


def test_every_shipped_file_is_covered():
    assert len(SUITES) >= 2 and len(SCENARIOS) >= 8 and EVENTS_YAML.is_file()
    assert LAUNCH_FILES, "no example launch file in launch/files/"


# a map of field names inside each kind of shipped file, for a typo below the top level
_NESTED = {
    "suite": lambda doc: doc["episodes"][0],
    "scenario": lambda doc: doc["rounds"][0][0],
    "events": lambda doc: doc["controllers"],
    "launch": lambda doc: doc,  # flat: the top level is its only level
    # a verb's `options` are checked by the verb's own config when the file loads
    # (tests/launch/test_launch_file.py); the schema closes every other mapping
    "launch-file": lambda doc: doc.get("robot", doc),
}


def _misspelt(mapping: dict[str, Any]) -> dict[str, Any]:
    """`mapping` with its first key written without its last letter ("objects" -> "object")."""
    key = next(iter(mapping))
    assert key[:-1] not in mapping
    return {(k[:-1] if k == key else k): v for k, v in mapping.items()}


@pytest.mark.parametrize(
    ("name", "path"), SHIPPED, ids=[f"{name}-{path.stem}" for name, path in SHIPPED]
)
def test_a_typo_in_a_shipped_file_is_refused(name, path):
    schema = json_schema(name)
    document = yaml.safe_load(path.read_text())
    assert _refused(schema, _misspelt(document))
    nested = copy.deepcopy(document)
    inner = _NESTED[name](nested)
    inner[next(iter(inner)) + "s"] = "typo"
    assert _refused(schema, nested)


def test_suite_typo_in_an_episode_is_refused():
    suite = yaml.safe_load(SUITES[0].read_text())
    suite["episodes"][0]["expcet"] = suite["episodes"][0].pop("expect")
    assert _refused(json_schema("suite"), suite)


def test_launch_file_is_one_session_config():
    from corrigible.session import SessionConfig

    schema = json_schema("launch")
    launch = {"engine": "pybullet", "seed": 3, "kb": "runs/kb", "corrections": ["no, left"]}
    _validate(schema, launch)
    assert SessionConfig.model_validate(launch).seed == 3
    assert _refused(schema, {**launch, "sede": 4})
    assert _refused(schema, {**launch, "perception": "eyes"})


def test_kb_entry_schema_matches_an_exported_entry():
    from corrigible.memory.schema import KnowledgeEntry

    entry = KnowledgeEntry(kind="preference", text="put red things in the gray bowl")
    schema = json_schema("kb-entry")
    _validate(schema, entry.model_dump(mode="json"))
    assert _refused(schema, {**entry.model_dump(mode="json"), "txt": "typo"})


# ------------------------------------------------------------------------------- verb configs
def _verb_config_classes() -> list[type]:
    """Every `*Config` model or dataclass defined in a verb module of the CLI."""
    from corrigible.launch.train import _SUBCOMMANDS

    found = []
    modules = [importlib.import_module(f"corrigible.launch.{verb}") for verb in VERBS]
    for sub in _SUBCOMMANDS:  # `train ll|hl` live in modules of their own
        modules.append(importlib.import_module(f"corrigible.launch.{sub}"))
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and value.__name__.endswith("Config")
                and value is not VerbConfig
                and (issubclass(value, BaseModel) or dataclasses.is_dataclass(value))
            ):
                found.append(value)
    return found


def test_every_verb_config_is_published():
    published = {id(SCHEMAS.get(name)) for name in SCHEMAS}
    missing = [cls.__qualname__ for cls in _verb_config_classes() if id(cls) not in published]
    assert not missing, f"add these to launch/schema.py's table: {missing}"


_REQUIRED = {
    "BenchConfig": {"name": "sim"},
    "ExecConfig": {"file": __file__},
    "TraceShowConfig": {"episode": "runs/x"},
    "KbConfig": {"action": "list"},
    "RouteConfig": {"text": "a bit more to the left"},
    "RunConfig": {"instruction": "put the red block in the blue bowl"},
    "LaunchConfig": {"file": "launch/files/bridge_sim.launch.yaml"},
    "DatasetRecordConfig": {"out": "runs/ds", "instructions": ["put the red block in the bowl"]},
    "DatasetExportConfig": {"source": "runs/ds", "out": "runs/ds-5hz"},
    "DatasetInfoConfig": {"root": "runs/ds"},
    "RepairRunConfig": {
        "file": __file__,
        "instruction": "put the red block in the blue bowl",
        "expect": "in(red block, blue bowl)",
    },
}


@pytest.mark.parametrize("cls", _verb_config_classes(), ids=lambda cls: cls.__name__)
def test_verb_config_defaults_validate_and_typos_are_refused(cls):
    name = next(name for name in SCHEMAS if SCHEMAS.get(name) is cls)
    schema = json_schema(name)
    required = _REQUIRED.get(cls.__name__, {})
    document = TypeAdapter(cls).dump_python(cls(**required), mode="json")
    _validate(schema, document)
    field = next(iter(document))
    assert _refused(schema, {**document, field + "s": document[field]})
    if issubclass(cls, VerbConfig):
        with pytest.raises(ConfigError, match=rf"unknown field '{field}s'.*mean '{field}'\?"):
            cls(**required, **{field + "s": document[field]})


@pytest.mark.parametrize("cls", VerbConfig.__subclasses__(), ids=lambda cls: cls.__name__)
def test_every_verb_config_field_has_a_description(cls):
    name = next(name for name in SCHEMAS if SCHEMAS.get(name) is cls)
    props = json_schema(name)["properties"]
    assert not [field for field, prop in props.items() if not prop.get("description")]


def test_a_check_keeps_its_own_error_and_message():
    with pytest.raises(ConfigError, match=r"^--kind must be one of .*got 'rules'$"):
        KbConfig(action="list", kind="rules")
    with pytest.raises(UnknownNameError, match="Did you mean 'sim'"):
        BenchConfig(name="simm")


def test_exec_config_names_every_unusable_option_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        ExecConfig(file=tmp_path / "none.py", sim="bullet", perception="eye", wall_time_s=0)
    assert str(info.value) == (
        "--sim must be mujoco or pybullet, got 'bullet'; --perception must be camera or "
        f"privileged, got 'eye'; no such program file: {tmp_path / 'none.py'}; --wall-time-s "
        "must be > 0 s, got 0"
    )


def test_several_pydantic_problems_become_one_config_error():
    with pytest.raises(ConfigError, match=r"invalid KbConfig: k='many': .*; unknown field 'q'"):
        KbConfig(action="list", k="many", q=1)


def test_field_comments_reads_trailing_continuation_and_block_comments():
    @dataclasses.dataclass
    class Example:
        """Docstring with a line that looks like a field:
        plain: not a comment
        """

        plain: int = 0  # a trailing comment, m
        # a block above,
        # two lines
        above: str = ""
        wrapped: tuple[str, ...] = "x"  # on a continuation line
        typed: float = 0.0  # type: ignore[assignment]  # kept after the pragma
        bare: bool = False

    assert field_comments(Example) == {
        "plain": "a trailing comment, m",
        "above": "a block above, two lines",
        "wrapped": "on a continuation line",
        "typed": "kept after the pragma",
    }


# ------------------------------------------------------------------------------- the verb
def _cli(*args: str):
    return CliRunner().invoke(build_app(), ["schema", *args])


def test_schema_without_a_name_lists_the_names():
    out = _cli()
    assert out.exit_code == 0, out.output
    listed = [line.split()[0] for line in out.output.splitlines()]
    assert listed == SCHEMAS.names()
    for name in ("suite", "scenario", "launch", "events", "kb-entry", "run", "bench"):
        assert name in listed


def test_schema_prints_indented_json_and_writes_out(tmp_path):
    out = _cli("suite")
    assert out.exit_code == 0
    assert json.loads(out.stdout) == json_schema("suite")
    assert out.stdout.startswith('{\n  "$schema"')
    path = tmp_path / "deep" / "launch.json"
    written = _cli("launch", "--out", str(path))
    assert written.exit_code == 0 and json.loads(path.read_text()) == json_schema("launch")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["suit"], "unknown schema 'suit'; choose one of"),
        (["suit"], "Did you mean 'suite'?"),
        (["--out", "x.json"], "needs a schema NAME"),
    ],
    ids=["unknown", "did-you-mean", "out-without-name"],
)
def test_bad_schema_requests_exit_2(args, needle):
    out = _cli(*args)
    assert out.exit_code == 2 and needle in out.stderr


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda path: path.stem)
def test_shipped_launch_files_load_as_session_configs(path):
    from corrigible.session import SessionConfig

    config = SessionConfig.from_file(path)
    assert config.engine in ("mujoco", "pybullet")


def test_a_bad_launch_file_is_a_clear_error(tmp_path):
    from corrigible.errors import ConfigError
    from corrigible.session import SessionConfig

    for text, message in (
        ("engin: mujoco\n", r"unknown field 'engin'.*Did you mean 'engine'"),
        ("- mujoco\n", "one mapping of settings"),
        ("engine: [unclosed\n", "not valid YAML"),
        ("seed: -1\n", "seed"),
    ):
        path = tmp_path / "bad.launch.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            SessionConfig.from_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        SessionConfig.from_file(tmp_path / "missing.yaml")
