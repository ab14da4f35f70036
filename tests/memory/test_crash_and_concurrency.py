"""Real crashes (SIGKILL mid-stream) and real concurrent processes on one directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from corrigible.errors import LostRecordsError
from corrigible.memory.knowledge_base import KnowledgeBase
from corrigible.memory.store import ACK_NAME, INDEX_META_NAME, INDEX_NAME, LOG_NAME

_HERE = Path(__file__).parent
_WRITER = _HERE / "kb_writer_proc.py"
_READER = _HERE / "kb_reader_proc.py"


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _kill_writer_after(path: Path, start: int, acks_before_kill: int) -> list[str]:
    """Runs a writer, SIGKILLs it once it has acknowledged `acks_before_kill` ids.

    Returns:
        Every id the writer acknowledged (printed after `add` returned), including lines still
        in the pipe when it died.
    """
    proc = subprocess.Popen(
        [sys.executable, str(_WRITER), str(path), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        text=True,
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 60
    while len(acked) < acks_before_kill and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() != "ready":
            acked.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    rest, stderr = proc.communicate(timeout=30)
    acked += [line.strip() for line in rest.splitlines() if line.strip() not in ("", "ready")]
    assert proc.returncode == -signal.SIGKILL, stderr
    assert len(acked) >= acks_before_kill, stderr
    return acked


def test_sigkill_mid_stream_loses_no_acknowledged_entry(tmp_path, embedder):
    path = tmp_path / "kb"
    rng = np.random.default_rng(1234)
    acknowledged: list[str] = []
    torn_tails = 0
    for round_no in range(4):
        acknowledged += _kill_writer_after(
            path, start=1000 * round_no, acks_before_kill=int(rng.integers(5, 60))
        )
        log_size = (path / LOG_NAME).stat().st_size
        with KnowledgeBase.open(path, text_embedder=embedder) as kb:
            ids = {entry.id for entry in kb.list()}
            missing = [i for i in acknowledged if i not in ids]
            assert not missing, f"round {round_no}: acknowledged ids lost: {missing[:3]}"
            # Anything beyond the acknowledged ids is at most the one add in flight at each kill
            # so far (each round's kill can leave one durable but unacknowledged entry).
            assert len(ids) - len(acknowledged) <= round_no + 1
            torn_tails += kb.open_report.torn_tail_bytes > 0
            assert (path / LOG_NAME).stat().st_size <= log_size
            assert not list(path.glob(".*.tmp"))  # orphaned snapshot temporaries cleaned
    # Index snapshots were being replaced during the kills too: search still works.
    with KnowledgeBase.open(path, read_only=True, text_embedder=embedder) as kb:
        assert len(kb) >= len(acknowledged)
        assert kb.search("entry 3", k=1, text_threshold=-1.0)


def test_writer_killed_inside_a_record_write(tmp_path, embedder, make_entry):
    """A record cut anywhere (simulating a kill during write()) is dropped, nothing else.

    The kill comes before the acknowledgement, so entries.ack and the snapshot still name the
    first record as the last acknowledged one: they are put back as they were then.
    """
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        kept = kb.add(make_entry("kept"))
    before_second = {p: (path / p).read_bytes() for p in (ACK_NAME, INDEX_NAME, INDEX_META_NAME)}
    with KnowledgeBase.open(path, text_embedder=embedder) as kb:
        kb.add(make_entry("cut short"))
    after_second = (path / ACK_NAME).read_bytes()
    full = (path / LOG_NAME).read_bytes()
    first_end = full.index(b"\n") + 1
    for cut in (first_end + 1, first_end + 50, len(full) - 2, len(full) - 1):
        for name, data in before_second.items():
            (path / name).write_bytes(data)
        (path / LOG_NAME).write_bytes(full[:cut])
        with KnowledgeBase.open(path, text_embedder=embedder) as kb:
            assert [entry.id for entry in kb.list()] == [kept], cut
            assert "never acknowledged" in kb.open_report.messages[0]
        assert (path / LOG_NAME).read_bytes() == full[:first_end]
    # Once acknowledged, the same cut is damage to an acknowledged record, never dropped.
    (path / LOG_NAME).write_bytes(full[: len(full) - 2])
    (path / ACK_NAME).write_bytes(after_second)
    with pytest.raises(LostRecordsError, match="damaged: seq 1"):
        KnowledgeBase.open(path, text_embedder=embedder)
    assert (path / LOG_NAME).read_bytes() == full[: len(full) - 2]


def test_two_readers_follow_one_writer(tmp_path):
    """Two reader processes see consistent, growing prefixes while a writer appends."""
    path = tmp_path / "kb"
    expected = 150
    go_file = tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, str(_WRITER), str(path), "0", str(expected), "9", str(go_file), "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "ready"  # the directory exists now
    ready_files = [tmp_path / f"reader-{i}.ready" for i in range(2)]
    readers = [
        subprocess.Popen(
            [sys.executable, str(_READER), str(path), str(expected), "90", str(ready)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            text=True,
        )
        for ready in ready_files
    ]
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in ready_files) and time.monotonic() < deadline:
        time.sleep(0.02)
    go_file.touch()  # both readers are attached: start writing
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert len(out.split()) == expected
    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, out + err
        status, seen, _reads, distinct = out.split()
        assert status == "OK" and int(seen) == expected
        assert int(distinct) >= 3  # it really read while the writer was appending
