"""The base of corrigible's typed configs, messages and file models (pydantic).

Unknown keys are refused (a typo in a launch file or a CLI option is an error, not a silently
ignored field), and a validator that raises one of corrigible's own errors (`ConfigError`,
`UnknownNameError`, ...) reaches the caller as that error, with its own message, rather than
wrapped in pydantic's `ValidationError`. `Model` keeps other validation problems as
`ValidationError`s (data read from files and wires); `StrictConfig` turns them into one
`ConfigError` naming each field, value and fix (configs a person types: CLI options, YAML).
`field_comments` reads each field's one-line comment, so that comment is the one place a
field's description (and unit) is written: JSON Schemas take their descriptions from it.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from corrigible.errors import ConfigError, CorrigibleError, did_you_mean


class Model(BaseModel):
    """A strict pydantic model whose own domain errors surface unwrapped."""

    model_config = ConfigDict(extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            cause = domain_error(exc)
            if cause is not None:
                raise cause from None
            raise


class StrictConfig(Model):
    """A config a person writes: every validation problem is a `ConfigError` saying the fix."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(type(self), exc.errors()) from exc


def config_error(
    cls: type[BaseModel], errors: Sequence[Any], *, what: str | None = None
) -> ConfigError:
    """One `ConfigError` naming, for each problem, the field (dotted path), the value and the fix.

    Args:
        cls: the model that was validated (its fields are the "known fields" of a typo).
        errors: `ValidationError.errors()`.
        what: how to call the whole config in messages (default: the class name).
    """
    problems = []
    for err in errors:
        path = [str(part) for part in err["loc"]]
        where = ".".join(path)
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, CorrigibleError):
            problems.append(f"{where}: {cause}" if where else str(cause))
        elif err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            known = known_fields(cls, path[:-1])
            parent = ".".join(path[:-1]) or what or cls.__name__
            problems.append(
                f"unknown field {path[-1]!r} in {parent}; known fields are {sorted(known)}."
                + did_you_mean(path[-1], known)
            )
        elif err["type"] == "missing":
            problems.append(f"{where} is required; add it.")
        elif err["type"] == "value_error":
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        else:
            problems.append(f"{where}={err.get('input')!r}: {err['msg']}.")
    if len(problems) == 1:
        return ConfigError(problems[0])
    return ConfigError(f"invalid {what or cls.__name__}: " + "; ".join(problems))


def known_fields(cls: type, path: Sequence[str]) -> list[str]:
    """The field names accepted at `path` (field names and dict keys) inside model `cls`."""
    tp: Any = cls
    for part in path:
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp).get(part)
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        else:
            return []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    if dataclasses.is_dataclass(tp):
        return [f.name for f in dataclasses.fields(tp)]
    return []


def domain_error(exc: ValidationError) -> CorrigibleError | None:
    """The corrigible error a validator raised, when it is the only problem found."""
    errors = exc.errors()
    cause = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
    return cause if isinstance(cause, CorrigibleError) else None


_FIELD = re.compile(r"^    (\w+)\s*:")


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its one-line comment, for a pydantic model or a dataclass.

    The comment is the one on the field's line (or on a continuation line of its default), else
    the comment block right above it. `# type: ...` and `# noqa` parts are left out.
    """
    if issubclass(cls, BaseModel):
        names = set(cls.model_fields)
    elif dataclasses.is_dataclass(cls):
        names = {f.name for f in dataclasses.fields(cls)}
    else:
        return {}
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen application): no descriptions
        return {}
    comments, in_string = _comment_lines(source)
    found: dict[str, str] = {}
    above: dict[str, str] = {}
    block: list[str] = []
    current: str | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        if not line.strip() or number in in_string:
            continue
        if len(line) - len(line.lstrip()) > 4 or line.lstrip().startswith((")", "]", "}")):
            # a continuation line (or a method's body)
            if current is not None and current not in found and number in comments:
                found[current] = comments[number]
            continue
        if line.lstrip().startswith("#"):
            block.append(comments.get(number, ""))
            current = None
            continue
        match = _FIELD.match(line)
        current = match.group(1) if match and match.group(1) in names else None
        if current is not None:
            if number in comments:
                found[current] = comments[number]
            elif block:
                above[current] = " ".join(part for part in block if part)
        block = []
    return {name: text for name, text in (above | found).items() if text}


def _comment_lines(source: str) -> tuple[dict[int, str], set[int]]:
    """Line number -> comment text, and the lines a multi-line string continues on."""
    comments: dict[int, str] = {}
    in_string: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            parts = [p.strip() for p in tok.string.split("#")]
            kept = [p for p in parts if p and not p.startswith(("type:", "noqa", "pragma"))]
            comments[tok.start[0]] = "; ".join(kept)
        elif tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            in_string.update(range(tok.start[0] + 1, tok.end[0] + 1))
    return comments, in_string


__all__ = [
    "Model",
    "StrictConfig",
    "config_error",
    "domain_error",
    "field_comments",
    "known_fields",
]
