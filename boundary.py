r"""What crosses the boundary from a person: files read as data, and text shown on a terminal.

Every file a person hands to corrigible (scenario and suite YAML, labelled correction JSONL,
launch files) is read through `read_text`, `load_yaml` and `load_json`, so that whatever the
bytes are, the answer is one `ConfigError` naming the file, the place (byte offset, line,
column) and the fix: never a `UnicodeDecodeError`, a `RecursionError` or an exponential
"billion laughs" expansion. Every piece of outside text printed to a terminal (instructions,
typed corrections, object names, messages quoting them) goes through `escape` first, so an
ANSI escape sequence, a bell or a carriage return is shown as `\x1b`, `\x07`, `\r` and never
acts on the terminal.

    from corrigible.boundary import escape, load_yaml

    data = load_yaml(Path("my_scenario.yaml"), what="scenario")
    print(escape(instruction))
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from corrigible.errors import ConfigError

MAX_FILE_BYTES = 16 * 1024 * 1024  # bytes; a larger input file is refused before it is read
MAX_DEPTH = 32  # nesting levels of mappings and lists a YAML or JSON input may use
MAX_NODES = 200_000  # values in one YAML document, counting every use of an alias

# Characters that act on a terminal or hide text: C0 controls (but tab and, where a caller
# keeps lines, newline), DEL and C1 controls (ESC starts ANSI sequences, CSI is C1), line and
# paragraph separators, the bidirectional overrides and isolates ("Trojan source") and lone
# surrogates (undecodable bytes in argv; printing one raises UnicodeEncodeError).
_UNSAFE = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
)
_UNSAFE_ONE_LINE = re.compile(f"[\n{_UNSAFE}]")
_UNSAFE_LINES = re.compile(f"[{_UNSAFE}]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: object, *, keep_newlines: bool = False) -> str:
    r"""`text` made safe to print: control characters shown as `\x1b`-style escapes.

    Printable text of any script is kept as it is ("把红色方块" stays readable); only characters
    that would act on the terminal are replaced. Backslashes are not doubled: this is for
    reading, not a round trip.

    Args:
        text: anything; non-strings are `str()`-ed first.
        keep_newlines: keep "\n" (a multi-line block whose lines are all safe); otherwise a
            newline is shown as `\n` too, so one message stays one line.
    """
    pattern = _UNSAFE_LINES if keep_newlines else _UNSAFE_ONE_LINE
    return pattern.sub(_escaped, text if isinstance(text, str) else str(text))


def read_text(path: str | Path, *, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a file a person gave (a leading BOM is dropped).

    Raises:
        ConfigError: the file is missing, unreadable, a directory, larger than `max_bytes`, or
            not UTF-8 (the message names the byte offset, line and column of the first bad
            byte).
    """
    path = Path(path)
    shown = escape(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{shown}: the {what} is a directory; give a file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(
                f"{shown}: the {what} is {size} bytes, more than the {max_bytes}-byte limit; "
                "split it or give a smaller file"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(
            f"{shown}: cannot read the {what} ({escape(exc.strerror or exc)}); check the path"
        ) from exc
    if len(data) > max_bytes:  # it grew while we looked
        raise ConfigError(f"{shown}: the {what} is larger than the {max_bytes}-byte limit")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise ConfigError(
            f"{shown}: the {what} is not UTF-8 text: byte 0x{data[start]:02x} at byte offset "
            f"{start} (line {line}, column {column}) ({exc.reason}); save the file as UTF-8"
        ) from None


def check_output_path(path: str | Path, *, option: str) -> None:
    """Refuses, before any work, an output file that could never be written.

    The run behind a verb may take minutes; a `--out` that names a directory, or lies under a
    file, is refused at the start rather than failing with a traceback at the end.

    Raises:
        ConfigError: naming `option`, the path and the fix.
    """
    path = Path(path)
    shown = escape(path)
    if path.is_dir():
        raise ConfigError(f"{option} {shown} is a directory; give a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"{option} {shown}: {escape(parent)} is a file, not a folder; give a path "
                    "in a folder"
                )
            break


def load_yaml(
    source: str | Path,
    *,
    what: str = "file",
    text: str | None = None,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Any:
    """One YAML document from a file a person gave, within depth and size limits.

    Args:
        source: the file (read with `read_text` unless `text` is given); names it in errors.
        what: what the file is, for messages ("scenario", "suite").
        text: the file's text, when already read.
        max_depth: nesting levels allowed.
        max_nodes: values allowed, counting each use of an alias (a "billion laughs" file
            expands to far more than it holds).

    Raises:
        ConfigError: unreadable, not UTF-8, not YAML (line and column), nested deeper than
            `max_depth`, or more than `max_nodes` values.
    """
    import yaml

    shown = escape(source)
    if text is None:
        text = read_text(source, what=what)

    class _Loader(yaml.SafeLoader):
        """The safe loader, refusing deep nesting while it composes (before any recursion)."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > max_depth:
                    mark = self.peek_event().start_mark
                    raise ConfigError(
                        f"{shown}: line {mark.line + 1}, column {mark.column + 1}: the {what} is "
                        f"nested deeper than {max_depth} levels; flatten it"
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(
            f"{shown}: {where}the {what} is not valid YAML ({escape(problem)}); fix the syntax"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{shown}: the {what} is not valid YAML ({escape(exc)}); fix the syntax"
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar the constructor refuses
        # e.g. an integer of more than 4300 digits, or a date such as 2024-13-45
        raise ConfigError(
            f"{shown}: the {what} holds a value that cannot be read ({escape(exc)}); fix it"
        ) from None
    except RecursionError:  # a guard above should have stopped it; never a traceback
        raise ConfigError(f"{shown}: the {what} is nested too deeply to read; flatten it") from None
    _check_size(data, f"{shown}: the {what}", max_depth=max_depth, max_nodes=max_nodes)
    return data


def load_json(
    text: str, *, where: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
) -> Any:
    """One JSON value (a line of a JSONL file), within depth and size limits.

    Args:
        text: the JSON text. Raw U+2028 / U+2029 inside strings are valid JSON and accepted.
        where: the place for messages, e.g. "corrections.jsonl:12".

    Raises:
        ConfigError: not JSON (with the column), or nested deeper than `max_depth`.
    """
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc.msg}; column {exc.colno})") from None
    except ValueError as exc:  # NaN / Infinity, refused by `_no_constant`
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{where}: JSON nested too deeply to read; flatten it") from None
    _check_size(value, where, max_depth=max_depth, max_nodes=max_nodes)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; write a finite number")


def _check_size(value: Any, where: str, *, max_depth: int, max_nodes: int) -> None:
    """Refuses a loaded value deeper than `max_depth` or with more than `max_nodes` values."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise ConfigError(
                f"{where} holds more than {max_nodes} values (counting each use of a YAML "
                "alias); make it smaller"
            )
        if depth > max_depth:
            raise ConfigError(f"{where} is nested deeper than {max_depth} levels; flatten it")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            stack.extend((k, depth + 1) for k in item)
        elif isinstance(item, list | tuple | set):
            stack.extend((v, depth + 1) for v in item)


__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "check_output_path",
    "escape",
    "load_json",
    "load_yaml",
    "read_text",
]
