"""The log directory on its own: framing, torn tails vs damage, editors, missing files, locks."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corrigible.errors import (
    CorruptStoreError,
    KnowledgeBaseClosedError,
    LostRecordsError,
    ReadOnlyError,
    SchemaVersionError,
    StoreLockedError,
    StoreUnreadableError,
)
from corrigible.memory.store import (
    ACK_NAME,
    INDEX_META_NAME,
    LOG_NAME,
    MANIFEST_NAME,
    LogStore,
    checksummed_json,
    decode_record,
    encode_record,
)


def write_records(path, n):
    store = LogStore(path)
    store.open_and_replay()
    store.append([{"op": "delete", "id": f"x{i}"} for i in range(n)])
    store.close()


def reopen(path, **kwargs):
    store = LogStore(path, **kwargs)
    records = store.open_and_replay()
    return store, records


def snapshot_files(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def never_acknowledged_claimed(store):
    return any("never acknowledged" in m for m in store.report.messages)


def test_record_framing_round_trips_and_detects_bit_flips():
    line = encode_record({"seq": 0, "op": "add", "entry": {"text": "héllo"}})
    assert line.endswith(b"\n")
    rec, _ = decode_record(line[:-1])
    assert rec["entry"]["text"] == "héllo"
    json.loads(line)  # every line is plain JSON too
    flipped = line.replace(b"h\xc3\xa9llo", b"hallo")
    assert decode_record(flipped[:-1]) is None
    assert decode_record(line[:-1].replace(line[8:16], line[8:16].upper()))  # hex case is free
    assert decode_record(line[:-1].replace(line[8:10], b" 0")) is None  # but only hex digits


def test_append_is_durable_acknowledged_and_replayed_in_order(tmp_path):
    write_records(tmp_path / "kb", 5)
    store, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(5))
    assert store.report.is_clean and store.report.messages == []
    assert store.watermark.exact and store.watermark.seq == 4
    store.append([{"op": "delete", "id": "more"}])
    store.close()
    store.close()  # idempotent
    slots = (tmp_path / "kb" / ACK_NAME).read_bytes().splitlines()
    assert sorted(json.loads(slot)["seq"] for slot in slots) == [4, 5]  # newest two acks
    _, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(6))


@pytest.mark.parametrize(
    "tail",
    [
        b'{"crc":"0000',
        b"\x00\x00\x00\x00",
        b'{"crc":"deadbeef","rec":{"seq":5,"op":"dele' + b"\x00" * 40 + b'"x"}}\n',
    ],
    ids=["torn-record", "zero-fill", "zero-filled-block"],
)
def test_torn_tail_is_dropped_with_a_backup_and_earlier_records_kept(tmp_path, tail):
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    good = log.read_bytes()
    log.write_bytes(good + tail)
    store, records = reopen(tmp_path / "kb")
    assert len(records) == 5
    assert store.report.torn_tail_bytes == len(tail) and store.report.lost == []
    assert store.report.backup is not None and store.report.backup.read_bytes() == tail
    assert ".corrupt-tail-" in store.report.backup.name
    assert "never acknowledged" in store.report.messages[0]  # seq 4 was the last acknowledged
    assert log.read_bytes() == good  # truncated back to the last complete record
    store.append([{"op": "delete", "id": "after"}])  # appends continue cleanly
    store.close()
    _, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(6))


def test_a_complete_bad_line_after_the_acknowledged_ones_is_damage_not_a_torn_write(tmp_path):
    """A write a crash cut is a record's first bytes; a whole line that fails its checksum
    is damage (it holds nothing acknowledged, so it is dropped, but not called a torn write)."""
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    good = log.read_bytes()
    tail = b'{"crc":"deadbeef","rec":{"seq":5,"op":"delete","id":"x"}}\n'
    log.write_bytes(good + tail)
    store, records = reopen(tmp_path / "kb")
    assert len(records) == 5 and store.report.lost == [] and store.report.torn_tail_bytes == 0
    assert store.report.junk_lines == [6] and not never_acknowledged_claimed(store)
    assert ".corrupt-damaged-" in store.report.backup.name
    assert store.report.backup.read_bytes() == tail and log.read_bytes() == good
    store.close()


def test_reader_ignores_a_torn_tail_without_touching_the_file(tmp_path):
    write_records(tmp_path / "kb", 3)
    log = tmp_path / "kb" / LOG_NAME
    log.write_bytes(log.read_bytes() + b'{"crc":"12')
    before = snapshot_files(tmp_path / "kb")
    store, records = reopen(tmp_path / "kb", read_only=True)
    assert len(records) == 3 and store.report.torn_tail_bytes == 10
    assert snapshot_files(tmp_path / "kb") == before


_REFORMATS = {
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "cr": lambda b: b.replace(b"\n", b"\r"),
    "trailing-whitespace": lambda b: b.replace(b"\n", b"  \t\n"),
    "leading-whitespace": lambda b: b.replace(b"\n", b"\n  "),
    "bom": lambda b: b"\xef\xbb\xbf" + b,
    "blank-lines": lambda b: b"\n" + b.replace(b"\n", b"\n\n"),
    "no-final-newline": lambda b: b[:-1],
    "crlf-no-final-newline": lambda b: b.replace(b"\n", b"\r\n")[:-2],
    "bom-crlf-trailing-spaces": lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b" \r\n") + b"   ",
}


@pytest.mark.parametrize("reformat", sorted(_REFORMATS), ids=str)
def test_line_ending_and_whitespace_changes_keep_every_record(tmp_path, reformat):
    """Regression: a CRLF log listed as empty and its records went to .corrupt-tail."""
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    log.write_bytes(_REFORMATS[reformat](log.read_bytes()))
    reader, records = reopen(tmp_path / "kb", read_only=True)
    assert [r.data["id"] for r in records] == [f"x{i}" for i in range(5)]
    assert reader.report.lost == [] and reader.report.format_notes
    store, records = reopen(tmp_path / "kb")  # the writer keeps them too, and moves nothing
    assert [r.seq for r in records] == list(range(5))
    assert store.report.backups == [] and not never_acknowledged_claimed(store)
    assert not list((tmp_path / "kb").glob(f"{LOG_NAME}.corrupt-*"))
    store.append([{"op": "delete", "id": "after"}])  # lands on a line of its own
    store.close()
    store, records = reopen(tmp_path / "kb")
    assert [r.data["id"] for r in records] == [f"x{i}" for i in range(5)] + ["after"]
    store.close()
    store, _ = reopen(tmp_path / "kb", on_corrupt="skip")  # repair normalises the file
    store.close()
    assert log.read_bytes().count(b"\n") == 6 and b"\r" not in log.read_bytes()


def flip_bit(path, offset, bit=0):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_a_bit_flip_in_the_last_acknowledged_record_is_damage_not_a_torn_write(tmp_path):
    """Regression: it was dropped as "never acknowledged" although entries.ack said otherwise."""
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    flip_bit(log, len(log.read_bytes()) - 20)
    before = snapshot_files(tmp_path / "kb")
    for read_only in (False, True):
        with pytest.raises(LostRecordsError, match=r"damaged: seq 4 \(line 5\).*kb repair") as err:
            reopen(tmp_path / "kb", read_only=read_only)
        assert err.value.damaged == [4] and err.value.missing == []
        assert "never acknowledged" not in str(err.value)
    assert snapshot_files(tmp_path / "kb") == before  # nothing changed
    store, records = reopen(tmp_path / "kb", on_corrupt="skip")
    assert [(r.seq, r.op) for r in records][-2:] == [(3, "delete"), (4, "lost")]
    assert records[-1].data["cause"] == "damaged" and records[-1].data["line"] == 5
    assert store.report.damaged == [{"seq": 4, "line": 5, "bytes": len(lines[4]) - 1}]
    (backup,) = store.report.backups
    assert ".corrupt-damaged-" in backup.name
    assert backup.read_bytes() == before[LOG_NAME].splitlines(keepends=True)[4]
    assert not never_acknowledged_claimed(store)
    store.close()
    store, records = reopen(tmp_path / "kb")  # clean from now on, the loss still visible
    assert store.report.is_clean and store.report.lost_markers[0]["cause"] == "damaged"
    store.close()


def damage_line(path, line_no, replacement=b"garbage that is not a record\n"):
    log = path / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    lines[line_no] = replacement
    log.write_bytes(b"".join(lines))
    return lines


def test_damage_in_the_middle_is_an_error_by_default_and_changes_nothing(tmp_path):
    write_records(tmp_path / "kb", 6)
    damage_line(tmp_path / "kb", 2)
    before = (tmp_path / "kb" / LOG_NAME).read_bytes()
    with pytest.raises(LostRecordsError, match=r"seq 2 \(line 3\).*on_corrupt='skip'"):
        reopen(tmp_path / "kb")
    assert (tmp_path / "kb" / LOG_NAME).read_bytes() == before
    # The failed open released the writer lock.
    store, _ = reopen(tmp_path / "kb", on_corrupt="skip")
    store.close()


def test_skip_keeps_every_valid_later_record_and_backs_up_the_damage(tmp_path):
    write_records(tmp_path / "kb", 6)
    damage_line(tmp_path / "kb", 2)
    log = tmp_path / "kb" / LOG_NAME
    log.write_bytes(log.read_bytes() + b'{"crc":"0a1b')  # a write cut by a crash
    store, records = reopen(tmp_path / "kb", on_corrupt="skip")
    assert [r.seq for r in records] == [0, 1, 2, 3, 4, 5]  # nothing valid lost
    assert [r.op for r in records][1:4] == ["delete", "lost", "delete"]  # the loss is marked
    assert store.report.skipped_lines == [3]
    saved = {p.name.split("-")[1]: p.read_bytes() for p in store.report.backups}
    assert b"garbage" in saved["damaged"] and saved["tail"] == b'{"crc":"0a1b'
    store.append([{"op": "delete", "id": "after-repair"}])
    store.close()
    store, records = reopen(tmp_path / "kb")  # now clean: default mode opens it
    assert [r.seq for r in records] == [0, 1, 2, 3, 4, 5, 6]
    assert store.report.is_clean
    store.close()


def test_removed_lines_are_detected_by_the_sequence_numbers(tmp_path):
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2] + lines[3:]))
    with pytest.raises(LostRecordsError, match=r"missing: seq 2 \(lines removed") as err:
        reopen(tmp_path / "kb")
    assert err.value.missing == [2]
    store, records = reopen(tmp_path / "kb", on_corrupt="skip", read_only=True)
    assert [r.seq for r in records] == [0, 1, 3, 4] and store.report.missing == [2]
    store.close()
    log.write_bytes(b"".join(lines[:-1]))  # the last line removed: entries.ack still knows it
    with pytest.raises(LostRecordsError, match="missing: seq 4"):
        reopen(tmp_path / "kb")
    other = encode_record({"seq": 1, "op": "delete", "id": "from another log"})
    log.write_bytes(b"".join(lines) + other)
    with pytest.raises(CorruptStoreError, match="concatenated"):
        reopen(tmp_path / "kb")


def test_a_truncated_log_reports_each_acknowledged_record_it_lost(tmp_path):
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2]) + lines[2][:40])
    with pytest.raises(LostRecordsError) as err:
        reopen(tmp_path / "kb")
    assert (err.value.damaged, err.value.missing) == ([2], [3, 4])
    store, records = reopen(tmp_path / "kb", on_corrupt="skip")
    assert [(r.seq, r.op, r.data.get("cause")) for r in records][2:] == [
        (2, "lost", "damaged"),
        (3, "lost", "missing"),
        (4, "lost", "missing"),
    ]
    assert store.report.backup.read_bytes() == lines[2][:40]  # exactly the damaged bytes
    store.close()


@pytest.mark.parametrize("bit", range(8))
def test_a_damaged_line_separator_keeps_both_records(tmp_path, bit):
    write_records(tmp_path / "kb", 4)
    log = tmp_path / "kb" / LOG_NAME
    first = log.read_bytes().index(b"\n")
    flip_bit(log, first, bit)
    store, records = reopen(tmp_path / "kb")
    assert [r.data["id"] for r in records] == ["x0", "x1", "x2", "x3"] and store.report.lost == []
    store.append([{"op": "delete", "id": "after"}])
    store.close()
    _, records = reopen(tmp_path / "kb", read_only=True)
    assert len(records) == 5


def test_duplicated_and_reordered_lines_keep_every_record_once(tmp_path):
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([lines[3], lines[0], lines[1], lines[1], lines[4], lines[2]]))
    store, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(5))
    assert store.report.duplicates == 1 and store.report.reordered and store.report.lost == []
    store.append([{"op": "delete", "id": "after"}])
    store.close()
    store, records = reopen(tmp_path / "kb", on_corrupt="skip")
    assert [r.seq for r in records] == list(range(6))
    store.close()
    assert log.read_bytes() == b"".join(lines) + encode_record(records[5].data)


def test_a_deleted_log_is_an_error_unless_the_directory_is_new(tmp_path):
    """Regression: a deleted log read as an empty knowledge base, with no message."""
    store, records = reopen(tmp_path / "new")  # a new directory: created, empty
    assert records == [] and store.report.messages == []
    store.close()
    (tmp_path / "new" / LOG_NAME).unlink()  # nothing was ever acknowledged: nothing lost
    store, records = reopen(tmp_path / "new")
    assert records == []
    store.close()
    write_records(tmp_path / "kb", 3)
    (tmp_path / "kb" / LOG_NAME).unlink()
    for read_only in (False, True):
        with pytest.raises(LostRecordsError, match=r"entries.jsonl is missing.*kb repair") as err:
            reopen(tmp_path / "kb", read_only=read_only)
        assert err.value.missing == [0, 1, 2]
    assert not (tmp_path / "kb" / LOG_NAME).exists()
    store, records = reopen(tmp_path / "kb", on_corrupt="skip")  # accept the loss
    assert [(r.seq, r.op, r.data["cause"]) for r in records] == [
        (i, "lost", "missing") for i in range(3)
    ]
    store.close()


def test_an_unreadable_log_is_an_error(tmp_path):
    write_records(tmp_path / "kb", 2)
    log = tmp_path / "kb" / LOG_NAME
    log.unlink()
    log.mkdir()
    with pytest.raises(StoreUnreadableError, match="entries.jsonl is a directory"):
        reopen(tmp_path / "kb", read_only=True)
    with pytest.raises(StoreUnreadableError, match="Move it aside"):
        reopen(tmp_path / "kb", on_corrupt="skip")
    log.rmdir()
    os.mkfifo(log)  # reading a FIFO would block forever
    with pytest.raises(StoreUnreadableError, match="not a regular file"):
        reopen(tmp_path / "kb", read_only=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_log_without_read_permission_is_an_error(tmp_path):
    write_records(tmp_path / "kb", 2)
    (tmp_path / "kb" / LOG_NAME).chmod(0)
    with pytest.raises(StoreUnreadableError, match="permissions"):
        reopen(tmp_path / "kb", read_only=True)


@pytest.mark.parametrize("damage", ["deleted", "garbage", "bit-flip", "empty", "directory"])
def test_a_damaged_manifest_with_an_intact_log_is_recovered(tmp_path, damage):
    write_records(tmp_path / "kb", 3)
    manifest = tmp_path / "kb" / MANIFEST_NAME
    original = json.loads(manifest.read_bytes())
    if damage == "deleted":
        manifest.unlink()
    elif damage == "garbage":
        manifest.write_bytes(b"{not json")
    elif damage == "bit-flip":  # still valid JSON: the checksum catches it
        version = json.dumps(original["schema_version"]).encode()
        manifest.write_bytes(manifest.read_bytes().replace(version, b'"99.0"'))
    elif damage == "empty":
        manifest.write_bytes(b"")
    else:
        manifest.unlink()
        manifest.mkdir()
        with pytest.raises(StoreUnreadableError, match="manifest.json is a directory"):
            reopen(tmp_path / "kb", read_only=True)
        return
    before = snapshot_files(tmp_path / "kb")
    reader, records = reopen(tmp_path / "kb", read_only=True)
    assert len(records) == 3 and reader.report.manifest_problem
    assert "recovered" in reader.report.messages[0]
    assert snapshot_files(tmp_path / "kb") == before  # a reader writes nothing
    store, records = reopen(tmp_path / "kb")
    assert len(records) == 3 and "rewritten" in store.report.messages[0]
    store.close()
    rewritten = json.loads(manifest.read_bytes())
    assert rewritten["format"] == original["format"]
    assert rewritten["schema_version"] == original["schema_version"]
    store, _ = reopen(tmp_path / "kb")
    assert store.report.is_clean
    store.close()


def test_manifest_version_checks(tmp_path):
    write_records(tmp_path / "kb", 1)
    manifest_path = tmp_path / "kb" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = "99.0"  # a newer major version than this code reads
    manifest_path.write_bytes(checksummed_json(manifest))  # as a newer writer would
    with pytest.raises(SchemaVersionError, match="newer than this corrigible"):
        reopen(tmp_path / "kb")
    del manifest["crc"]  # manifests of older versions carry no checksum
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SchemaVersionError, match="newer than this corrigible"):
        reopen(tmp_path / "kb", read_only=True)


def test_refuses_a_directory_that_is_not_a_knowledge_base(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(CorruptStoreError, match="not a knowledge base"):
        reopen(tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt", "writer.lock"]
    with pytest.raises(FileNotFoundError, match="no knowledge base"):
        reopen(tmp_path / "missing", read_only=True)
    (tmp_path / "other" / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CorruptStoreError, match="no record to recover it from"):
        reopen(tmp_path / "other", read_only=True)


@pytest.mark.parametrize("damage", ["deleted", "garbage", "one-slot", "truncated"])
def test_a_damaged_ack_file_keeps_every_record_and_is_rewritten(tmp_path, damage):
    write_records(tmp_path / "kb", 4)
    ack = tmp_path / "kb" / ACK_NAME
    raw = ack.read_bytes()
    if damage == "deleted":
        ack.unlink()
    elif damage == "garbage":
        ack.write_bytes(b"\x00" * 7)
    elif damage == "one-slot":
        ack.write_bytes(raw[:80] + b"x" * 80)
    else:
        ack.write_bytes(raw[:100])
    store, records = reopen(tmp_path / "kb")
    assert len(records) == 4 and store.report.lost == []
    assert not store.report.ack_exact and "cannot be confirmed" in " ".join(store.report.messages)
    store.close()
    store, _ = reopen(tmp_path / "kb")  # the writer rewrote it: exact again
    assert store.report.ack_exact and store.report.acknowledged_seq == 3
    store.close()


def test_without_the_ack_file_the_snapshot_meta_still_marks_acknowledged_records(tmp_path):
    store, _ = reopen(tmp_path / "kb")
    store.append([{"op": "delete", "id": f"x{i}"} for i in range(4)])
    store.write_snapshot(b"index bytes", {"text_model": "m"})
    store.close()
    (tmp_path / "kb" / ACK_NAME).unlink()
    log = tmp_path / "kb" / LOG_NAME
    flip_bit(log, len(log.read_bytes()) - 10)
    with pytest.raises(LostRecordsError, match="seq 3") as err:
        reopen(tmp_path / "kb")
    assert err.value.damaged == [3]
    meta = json.loads((tmp_path / "kb" / INDEX_META_NAME).read_bytes())
    assert meta["covered_seq"] == 3 and meta["crc"]


def test_with_no_acknowledgement_known_a_damaged_end_is_unconfirmed_not_unacknowledged(tmp_path):
    write_records(tmp_path / "kb", 4)
    (tmp_path / "kb" / ACK_NAME).unlink()
    log = tmp_path / "kb" / LOG_NAME
    log.write_bytes(log.read_bytes()[:-30])
    store, records = reopen(tmp_path / "kb")
    assert len(records) == 3 and not never_acknowledged_claimed(store)
    assert store.report.unconfirmed_tail_bytes > 0
    assert any("cannot be told" in message for message in store.report.messages)
    (backup,) = store.report.backups
    assert ".corrupt-unconfirmed-" in backup.name
    store.close()


def test_single_writer_lock_and_read_only_writes(tmp_path):
    writer, _ = reopen(tmp_path / "kb")
    with pytest.raises(StoreLockedError, match="another process is writing"):
        reopen(tmp_path / "kb")
    reader, _ = reopen(tmp_path / "kb", read_only=True)  # readers never block
    with pytest.raises(ReadOnlyError):
        reader.append([{"op": "delete", "id": "x"}])
    writer.append([{"op": "delete", "id": "a"}])
    assert [r.seq for r in reader.read_new()] == [0]
    writer.close()
    reader.close()
    with pytest.raises(KnowledgeBaseClosedError):
        reader.read_new()


def test_reader_waits_for_a_partial_line_in_progress(tmp_path):
    writer, _ = reopen(tmp_path / "kb")
    reader, _ = reopen(tmp_path / "kb", read_only=True)
    line = encode_record({"seq": 0, "op": "delete", "id": "x"})
    log = tmp_path / "kb" / LOG_NAME
    with open(log, "ab") as handle:  # simulate a write caught half-way
        handle.write(line[:10])
    assert reader.read_new() == []
    with open(log, "ab") as handle:
        handle.write(line[10:])
    assert [r.seq for r in reader.read_new()] == [0]
    writer.close()
    reader.close()


_payloads = st.lists(
    st.dictionaries(st.sampled_from(["id", "note", "x"]), st.text(max_size=30), max_size=3),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(acked=_payloads, in_flight=_payloads, cut_fraction=st.floats(0.0, 1.0))
def test_any_cut_keeps_what_was_acknowledged_or_reports_its_loss(
    tmp_path_factory, acked, in_flight, cut_fraction
):
    """Cut the log at any byte, after some records were acknowledged and more were being
    written (appended to the log, but the ack never updated, as when a crash hits mid-batch).

    A cut among the unacknowledged records keeps every acknowledged one and every complete
    record, drops the partial one as never acknowledged; a cut among the acknowledged ones is
    reported as damaged (the one cut) and missing (those after it), never as unacknowledged.
    """
    path = tmp_path_factory.mktemp("kb")
    store = LogStore(path)
    store.open_and_replay()
    stored = store.append([{"op": "note", **payload} for payload in acked])
    store.close()
    log = path / LOG_NAME
    lines = [
        encode_record({"seq": len(acked) + i, "op": "note", **p}) for i, p in enumerate(in_flight)
    ]
    log.write_bytes(log.read_bytes() + b"".join(lines))
    data = log.read_bytes()
    cut = int(cut_fraction * len(data))
    log.write_bytes(data[:cut])
    ends = []
    for line in data.splitlines(keepends=True):
        ends.append((ends[-1] if ends else 0) + len(line))
    survivors = [seq for seq, end in enumerate(ends) if end - 1 <= cut]  # newline optional
    last_acked = stored[-1].seq
    lost = [seq for seq in range(last_acked + 1) if seq not in survivors]
    if lost:
        with pytest.raises(LostRecordsError) as err:
            reopen(path)
        cut_record = next(seq for seq, end in enumerate(ends) if end - 1 > cut)
        assert err.value.damaged == (
            [cut_record] if cut > (ends[cut_record - 1] if cut_record else 0) else []
        )
        assert sorted(err.value.damaged + err.value.missing) == lost
        store, records = reopen(path, on_corrupt="skip")
        assert [r.seq for r in records if r.op != "lost"] == survivors
        assert [r.seq for r in records if r.op == "lost"] == lost
    else:
        store, records = reopen(path)
        expected = [seq for seq in survivors if seq <= last_acked or ends[seq] <= cut]
        assert [r.seq for r in records] == expected
        assert not store.report.lost
        if store.report.torn_tail_bytes:
            assert never_acknowledged_claimed(store)
    store.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(3, 10),
    where=st.integers(0, 100),
    garbage=st.binary(min_size=1, max_size=40).filter(
        # not only whitespace and byte-order marks: such a line is formatting, not damage
        lambda b: b"\n" not in b and b"\r" not in b and b.replace(b"\xef\xbb\xbf", b"").strip()
    ),
)
def test_garbage_anywhere_never_loses_a_record_and_repair_removes_it(
    tmp_path_factory, count, where, garbage
):
    path = tmp_path_factory.mktemp("kb")
    write_records(path, count)
    log = path / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    position = where % (count - 1)  # at least one valid record follows
    lines.insert(position, garbage + b"\n")
    log.write_bytes(b"".join(lines))
    store, records = reopen(path)  # nothing acknowledged is lost, so no error
    assert [r.data["id"] for r in records] == [f"x{i}" for i in range(count)]
    assert store.report.junk_lines == [position + 1]
    store.close()
    store, records = reopen(path, on_corrupt="skip")
    assert [r.data["id"] for r in records] == [f"x{i}" for i in range(count)]
    assert garbage in store.report.backup.read_bytes()
    store.close()
    store, _ = reopen(path)
    assert store.report.is_clean
    store.close()


def test_reader_is_told_to_reopen_after_a_repair_replaced_the_log(tmp_path):
    write_records(tmp_path / "kb", 4)
    reader, _ = reopen(tmp_path / "kb", read_only=True)
    damage_line(tmp_path / "kb", 1)
    writer, records = reopen(tmp_path / "kb", on_corrupt="skip")
    assert [r.op for r in records][1] == "lost"
    with pytest.raises(CorruptStoreError, match="reopen"):
        reader.read_new()
    writer.close()
    reader.close()
