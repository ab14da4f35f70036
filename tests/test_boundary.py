"""`corrigible.boundary`: files a person gives are read into clear errors; terminal text escaped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corrigible.boundary import check_output_path, escape, load_json, load_yaml, read_text
from corrigible.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("ding\x07", "ding\\x07"),
        ("over\rwrite", "over\\rwrite"),
        ("two\nlines", "two\\nlines"),
        ("csi\x9b2J del\x7f nul\x00", "csi\\x9b2J del\\x7f nul\\x00"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("bidi \u202eevil\u2066", "bidi \\u202eevil\\u2066"),
        ("argv byte \udcff", "argv byte \\udcff"),
    ],
    ids=[
        "ansi",
        "bell",
        "carriage-return",
        "newline",
        "c1-del-nul",
        "separators",
        "bidi",
        "lone-surrogate",
    ],
)
def test_escape_shows_control_characters(text, shown):
    assert escape(text) == shown
    assert escape(escape(text)) == shown  # escaping twice changes nothing


def test_escape_keeps_printable_text_of_any_script():
    for text in (
        "把红色方块放进蓝色碗里",
        "положи красный кубик",
        "tab\tstays",
        "a\\x1b literal",
        "🙂",
    ):
        assert escape(text) == text
    assert escape("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
    assert escape(ValueError("x\x07")) == "x\\x07"


def test_read_text_names_the_byte_offset_line_and_column_of_non_utf8(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: ok\ndescription: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        read_text(path, what="scenario")
    message = str(info.value)
    assert "bad.yaml" in message and "not UTF-8" in message
    assert "byte offset 25" in message and "line 2, column 17" in message and "0xe9" in message
    assert read_text(_write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello")) == "hello"


def test_read_text_refuses_directories_missing_and_oversized_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a directory"):
        read_text(tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_text(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="more than the 10-byte limit"):
        read_text(_write(tmp_path / "big.txt", b"x" * 11), max_bytes=10)


def test_load_yaml_limits_depth_and_alias_expansion_quickly(tmp_path: Path):
    deep = _write(tmp_path / "deep.yaml", b"a: " + b"[" * 50_000 + b"]" * 50_000)
    laughs = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        laughs.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    bomb = _write(tmp_path / "bomb.yaml", "\n".join(laughs).encode())
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"deep.yaml: line 1, column \d+: .*nested deeper than"):
        load_yaml(deep)
    with pytest.raises(ConfigError, match="bomb.yaml.*more than 200000 values"):
        load_yaml(bomb)
    assert time.perf_counter() - start < 10
    with pytest.raises(ConfigError, match=r"syntax.yaml: line 3, column 1: .*not valid YAML"):
        load_yaml(_write(tmp_path / "syntax.yaml", b"a: [1,\nb: {\n"))
    assert load_yaml(_write(tmp_path / "ok.yaml", b"a: &x [1]\nb: *x\n")) == {"a": [1], "b": [1]}


def test_load_json_accepts_raw_line_separators_and_refuses_deep_nesting():
    assert load_json('{"text": "a\u2028b\u2029"}', where="f:1") == {"text": "a\u2028b\u2029"}
    with pytest.raises(ConfigError, match="f:3: JSON nested too deeply"):
        load_json("[" * 100_000 + "]" * 100_000, where="f:3")
    with pytest.raises(ConfigError, match="f:3 is nested deeper than 32"):
        load_json("[" * 40 + "]" * 40, where="f:3")
    with pytest.raises(ConfigError, match="NaN is not a JSON number"):
        load_json('{"x": NaN}', where="f:1")


def test_check_output_path(tmp_path: Path):
    check_output_path(tmp_path / "new" / "out.json", option="--out")  # created later: fine
    with pytest.raises(ConfigError, match="--out .* is a directory"):
        check_output_path(tmp_path, option="--out")
    blocker = _write(tmp_path / "file", b"")
    with pytest.raises(ConfigError, match="--out .*file is a file, not a folder"):
        check_output_path(blocker / "out.json", option="--out")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
