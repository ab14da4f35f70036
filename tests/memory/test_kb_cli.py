"""`corrigible kb ...` end to end, through a real subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest

from corrigible.memory.knowledge_base import KnowledgeBase
from corrigible.memory.store import LOG_NAME, MANIFEST_NAME
from corrigible.memory.visual_embedder import render_crop

from .conftest import RED


def cli(*args, env_kb=None, check_rc=0):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    env.pop("CORRIGIBLE_KB", None)
    if env_kb is not None:
        env["CORRIGIBLE_KB"] = str(env_kb)
    proc = subprocess.run(
        [sys.executable, "-m", "corrigible.launch.cli", "kb", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def kb_dir(tmp_path, embedder, red_objects_kb_entries):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        kb.add_many(red_objects_kb_entries)
    return path


def test_list_show_export_delete(kb_dir, red_objects_kb_entries, tmp_path):
    cylinder, cube = red_objects_kb_entries
    rows = json.loads(cli("list", "--kb", kb_dir, "--json").stdout)
    assert [row["id"] for row in rows] == [cylinder.id, cube.id]
    table = cli("list", env_kb=kb_dir).stdout  # CORRIGIBLE_KB picks the directory
    assert "2 entries" in table and cylinder.id[:8] in table
    shown = json.loads(cli("show", cylinder.id[:8], "--kb", kb_dir).stdout)
    assert shown["id"] == cylinder.id and shown["provenance"][0]["episode"] == "ep-1"
    assert shown["lineage"] == [cylinder.id]
    out = tmp_path / "export.jsonl"
    assert json.loads(cli("export", out, "--kb", kb_dir).stdout)["exported"] == 2
    assert len(out.read_text().splitlines()) == 2
    assert json.loads(cli("delete", cube.id, "--kb", kb_dir).stdout) == {"deleted": cube.id}
    rows = json.loads(cli("list", "--kb", kb_dir, "--json").stdout)
    assert [row["id"] for row in rows] == [cylinder.id]


def test_unknown_ids_and_bad_options_exit_2(kb_dir):
    for command in (("show", "nope"), ("delete", "nope")):
        proc = cli(*command, "--kb", kb_dir, check_rc=2)
        assert "error: no knowledge entry with id 'nope'" in proc.stderr
    proc = cli("search", "x", "--kb", kb_dir, "--mode", "text+visual", check_rc=2)
    assert "needs --image" in proc.stderr
    proc = cli("list", "--kb", kb_dir, "--kind", "rules", check_rc=2)
    assert "--kind must be one of" in proc.stderr


def test_search_text_and_hybrid(kb_dir, red_objects_kb_entries, tmp_path):
    cylinder, cube = red_objects_kb_entries
    hits = json.loads(cli("search", "slippery red cylinder", "--kb", kb_dir, "--k", "3").stdout)
    assert {hit["entry_id"] for hit in hits} == {cylinder.id, cube.id}
    assert all(hit["reason"].startswith("applies: text") for hit in hits)
    rgb, _ = render_crop("cylinder", RED, angle_deg=10, seed=5)
    crop = tmp_path / "cylinder.png"
    cv2.imwrite(str(crop), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    hits = json.loads(
        cli(
            "search",
            "slippery red cylinder",
            "--kb",
            kb_dir,
            "--mode",
            "text+visual",
            "--image",
            crop,
            "--metres-per-pixel",
            "0.001",
        ).stdout
    )
    assert [hit["entry_id"] for hit in hits] == [cylinder.id]
    assert hits[0]["params"] == {"grasp_height": -0.01, "speed": 0.05}


def test_damaged_log_is_reported_checked_then_repaired(kb_dir, red_objects_kb_entries):
    cylinder, cube = red_objects_kb_entries
    assert json.loads(cli("check", kb_dir).stdout)["status"] == "clean"  # exit 0
    log = kb_dir / LOG_NAME
    data = bytearray(log.read_bytes())
    data[-40] ^= 0x01  # one flipped bit in the last acknowledged record
    log.write_bytes(bytes(data))
    proc = cli("list", "--kb", kb_dir, check_rc=2)
    assert "seq 1 (line 2)" in proc.stderr and "kb repair" in proc.stderr
    assert "never acknowledged" not in proc.stderr
    proc = cli("check", kb_dir, check_rc=1)
    report = json.loads(proc.stdout)
    assert report["status"] == "damaged" and report["damaged"][0]["seq"] == 1
    assert report["acknowledged"]["seq"] == 1 and report["acknowledged"]["exact"]
    assert bytes(data) == log.read_bytes()  # check writes nothing
    repaired = json.loads(cli("repair", "--kb", kb_dir).stdout)
    assert repaired["damaged"][0]["seq"] == 1 and repaired["entries"] == 1
    assert ".corrupt-damaged-" in repaired["backups"][0]
    assert [row["id"] for row in json.loads(cli("list", "--kb", kb_dir, "--json").stdout)] == [
        cylinder.id
    ]
    report = json.loads(cli("check", "--kb", kb_dir).stdout)  # clean again, the loss recorded
    assert report["lost_earlier"][0]["cause"] == "damaged" and report["quarantined"]


def test_crlf_log_lists_every_entry(kb_dir, red_objects_kb_entries):
    log = kb_dir / LOG_NAME
    log.write_bytes(log.read_bytes().replace(b"\n", b"\r\n"))
    rows = json.loads(cli("list", "--kb", kb_dir, "--json").stdout)
    assert [row["id"] for row in rows] == [e.id for e in red_objects_kb_entries]
    report = json.loads(cli("check", kb_dir).stdout)
    assert report["status"] == "clean" and any("CRLF" in f["what"] for f in report["findings"])


def test_deleted_or_unreadable_log_is_an_error_not_an_empty_base(kb_dir):
    log = kb_dir / LOG_NAME
    saved = log.read_bytes()
    log.unlink()
    proc = cli("list", "--kb", kb_dir, "--json", check_rc=2)
    assert "entries.jsonl is missing" in proc.stderr and "backup" in proc.stderr
    assert proc.stdout == ""
    assert json.loads(cli("check", kb_dir, check_rc=1).stdout)["missing"] == [0, 1]
    log.mkdir()
    proc = cli("list", "--kb", kb_dir, check_rc=2)
    assert "entries.jsonl is a directory" in proc.stderr
    cli("check", kb_dir, check_rc=2)
    log.rmdir()
    log.write_bytes(saved)
    (kb_dir / MANIFEST_NAME).unlink()  # an intact log: the manifest is recovered
    rows = json.loads(cli("list", "--kb", kb_dir, "--json").stdout)
    assert len(rows) == 2


def test_missing_kb_reads_as_empty_and_a_held_lock_is_reported(tmp_path, embedder, kb_dir):
    proc = cli("list", "--kb", tmp_path / "none", "--json")
    assert json.loads(proc.stdout) == [] and "no knowledge base" in proc.stderr
    proc = cli("check", tmp_path / "none", check_rc=2)
    assert "no knowledge base" in proc.stderr
    with KnowledgeBase.open(kb_dir, text_embedder=embedder) as kb:
        entry_id = kb.list()[0].id
        proc = cli("delete", entry_id, "--kb", kb_dir, check_rc=2)
        assert "another process is writing" in proc.stderr
        cli("show", entry_id, "--kb", kb_dir)  # readers still work meanwhile
