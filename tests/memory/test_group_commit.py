"""Group commit: concurrent adds share fsyncs, each acknowledged only after its own is durable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from corrigible.memory import store as store_module
from corrigible.memory.knowledge_base import KnowledgeBase
from corrigible.memory.schema import KnowledgeEntry
from corrigible.memory.store import LOG_NAME, LogStore

_WRITER = Path(__file__).parent / "kb_group_writer_proc.py"


class _FixedEmbedder:
    """Random-vector stand-in for MiniLM (durability does not depend on the vector)."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def embed(self, texts):
        rng = np.random.default_rng(len(texts))
        rows = rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _entry(i: int) -> KnowledgeEntry:
    return KnowledgeEntry(kind="plan_rule", text=f"rule {i}")


def test_concurrent_adds_share_fsyncs_and_return_only_once_durable(tmp_path, monkeypatch):
    """Every add returns after an fsync that covered its record's bytes; fsyncs < adds."""
    synced = {"bytes": 0}
    real_fsync = os.fsync
    log_path = tmp_path / "kb" / LOG_NAME

    def recording_fsync(fd: int) -> None:
        size = os.fstat(fd).st_size
        real_fsync(fd)
        if os.path.exists(log_path) and os.fstat(fd).st_ino == log_path.stat().st_ino:
            synced["bytes"] = max(synced["bytes"], size)

    monkeypatch.setattr(store_module.os, "fsync", recording_fsync)
    threads, per_thread = 8, 25
    returned: dict[str, int] = {}
    lock = threading.Lock()
    with KnowledgeBase.open(tmp_path / "kb", text_embedder=_FixedEmbedder()) as kb:

        def work(slot: int) -> None:
            for i in range(per_thread):
                entry_id = kb.add(_entry(slot * 1000 + i))
                with lock:
                    returned[entry_id] = synced["bytes"]  # durable bytes when add returned

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert kb._store is not None
        stats = kb._store.commit_stats
        assert len(kb) == threads * per_thread
    assert stats["records"] == threads * per_thread
    assert stats["fsyncs"] < threads * per_thread  # groups formed
    assert stats["largest_group"] > 1
    data = log_path.read_bytes()
    for entry_id, durable_bytes in returned.items():
        end = data.index(b"\n", data.index(entry_id.encode())) + 1
        assert end <= durable_bytes, f"{entry_id} was acknowledged before its fsync"
    with KnowledgeBase.open(tmp_path / "kb", read_only=True, text_embedder=_FixedEmbedder()) as kb:
        assert {e.id for e in kb.list()} == set(returned)
        assert not kb.open_report.messages


def test_a_failed_group_fsync_fails_every_commit_in_it_and_rolls_back(tmp_path, monkeypatch):
    store = LogStore(tmp_path / "kb")
    store.open_and_replay()
    store.append([{"op": "delete", "id": "kept"}])
    size = (tmp_path / "kb" / LOG_NAME).stat().st_size
    first = store.write([{"op": "delete", "id": "a"}], track=True)
    second = store.write([{"op": "delete", "id": "b"}], track=True)
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(store_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="injected"):
        store.sync(first)
    monkeypatch.setattr(store_module.os, "fsync", real_fsync)
    with pytest.raises(OSError, match="was not acknowledged"):
        store.sync(second)  # written in the failed group: never acknowledged either
    assert (tmp_path / "kb" / LOG_NAME).stat().st_size == size
    assert store.take_durable() == []  # neither is ever handed out to be applied
    third = store.write([{"op": "delete", "id": "c"}], track=True)
    store.sync(third)
    assert third.records[0].seq == 1 and store.durable_seq == 1
    assert [r.seq for r in store.take_durable()] == [1]
    store.close()
    reopened = LogStore(tmp_path / "kb")
    records = reopened.open_and_replay()
    assert [r.data["id"] for r in records] == ["kept", "c"]
    assert not reopened.report.messages
    reopened.close()


def test_kb_add_that_fails_to_fsync_is_not_applied(tmp_path, monkeypatch):
    path = tmp_path / "kb"
    with KnowledgeBase.open(path, text_embedder=_FixedEmbedder()) as kb:
        kept = kb.add(_entry(0))
        real_fsync = os.fsync
        calls = {"n": 0}

        def failing_once(fd: int) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(28, "No space left on device (injected)")
            real_fsync(fd)

        monkeypatch.setattr(store_module.os, "fsync", failing_once)
        lost = _entry(1)
        with pytest.raises(OSError, match="injected"):
            kb.add(lost)
        assert [e.id for e in kb.list()] == [kept]
        again = kb.add(lost)  # the same entry can be added once the disk is back
        assert again == lost.id
    with KnowledgeBase.open(path, read_only=True, text_embedder=_FixedEmbedder()) as kb:
        assert [e.id for e in kb.list()] == [kept, lost.id]


def _kill_group_writer(path: Path, start: int, threads: int, acks: int) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, str(_WRITER), str(path), str(start), str(threads)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        text=True,
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 60
    while len(acked) < acks and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() != "ready":
            acked.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    # Read the rest through the same buffered reader: communicate() would skip the lines that
    # readline() already buffered (eight threads print fast).
    rest = proc.stdout.read()
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.wait(timeout=30)
    acked += [line.strip() for line in rest.splitlines() if line.strip() not in ("", "ready")]
    assert proc.returncode == -signal.SIGKILL, stderr
    assert len(acked) >= acks, stderr
    return acked


def test_sigkill_under_group_commit_loses_no_acknowledged_entry(tmp_path):
    """8 threads add at once; SIGKILL at random; every id printed after add returned survives."""
    path = tmp_path / "kb"
    threads = 8
    rng = np.random.default_rng(99)
    acknowledged: list[str] = []
    for round_no in range(3):
        acknowledged += _kill_group_writer(
            path, 100_000 * round_no, threads, acks=int(rng.integers(20, 120))
        )
        with KnowledgeBase.open(path, text_embedder=_FixedEmbedder()) as kb:
            ids = {entry.id for entry in kb.list()}
            missing = [i for i in acknowledged if i not in ids]
            assert not missing, f"round {round_no}: acknowledged ids lost: {missing[:3]}"
            # Beyond them: at most the adds in flight at each kill (one per thread).
            assert len(ids) - len(acknowledged) <= threads * (round_no + 1)
            assert not list(path.glob(".*.tmp"))
    with KnowledgeBase.open(path, read_only=True, text_embedder=_FixedEmbedder()) as kb:
        assert kb.search("entry 3", k=1, text_threshold=-1.0)
