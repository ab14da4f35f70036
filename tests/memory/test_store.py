"""The log directory on its own: framing, torn tails, damage in the middle, versions, locks."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corrigible.errors import (
    CorruptStoreError,
    KnowledgeBaseClosedError,
    ReadOnlyError,
    SchemaVersionError,
    StoreLockedError,
)
from corrigible.memory.store import (
    LOG_NAME,
    MANIFEST_NAME,
    LogStore,
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


def test_record_framing_round_trips_and_detects_bit_flips():
    line = encode_record({"seq": 0, "op": "add", "entry": {"text": "héllo"}})
    assert line.endswith(b"\n")
    rec, _ = decode_record(line[:-1])
    assert rec["entry"]["text"] == "héllo"
    json.loads(line)  # every line is plain JSON too
    flipped = line.replace(b"h\xc3\xa9llo", b"hallo")
    assert decode_record(flipped[:-1]) is None


def test_append_is_durable_and_replayed_in_order(tmp_path):
    write_records(tmp_path / "kb", 5)
    store, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(5))
    assert store.report.is_clean
    store.append([{"op": "delete", "id": "more"}])
    store.close()
    store.close()  # idempotent
    _, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(6))


@pytest.mark.parametrize(
    "tail",
    [b'{"crc":"0000', b"\x00\x00\x00\x00", b'{"crc":"deadbeef","rec":{"seq":5}}\n'],
    ids=["torn-record", "zero-fill", "bad-checksum-line"],
)
def test_torn_tail_is_dropped_with_a_backup_and_earlier_records_kept(tmp_path, tail):
    write_records(tmp_path / "kb", 5)
    log = tmp_path / "kb" / LOG_NAME
    good = log.read_bytes()
    log.write_bytes(good + tail)
    store, records = reopen(tmp_path / "kb")
    assert len(records) == 5
    assert store.report.torn_tail_bytes == len(tail)
    assert store.report.backup is not None and store.report.backup.read_bytes() == tail
    assert "incomplete" in store.report.messages[0]
    assert log.read_bytes() == good  # truncated back to the last complete record
    store.append([{"op": "delete", "id": "after"}])  # appends continue cleanly
    store.close()
    _, records = reopen(tmp_path / "kb")
    assert [r.seq for r in records] == list(range(6))


def test_reader_ignores_a_torn_tail_without_touching_the_file(tmp_path):
    write_records(tmp_path / "kb", 3)
    log = tmp_path / "kb" / LOG_NAME
    log.write_bytes(log.read_bytes() + b'{"crc":"12')
    before = log.read_bytes()
    store, records = reopen(tmp_path / "kb", read_only=True)
    assert len(records) == 3 and store.report.torn_tail_bytes == 10
    assert log.read_bytes() == before


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
    with pytest.raises(CorruptStoreError, match=r"line\(s\) 3 .*on_corrupt='skip'"):
        reopen(tmp_path / "kb")
    assert (tmp_path / "kb" / LOG_NAME).read_bytes() == before
    # The failed open released the writer lock.
    store, _ = reopen(tmp_path / "kb", on_corrupt="skip")
    store.close()


def test_skip_keeps_every_valid_later_record_and_backs_up_the_damage(tmp_path):
    write_records(tmp_path / "kb", 6)
    damage_line(tmp_path / "kb", 2)
    log = tmp_path / "kb" / LOG_NAME
    log.write_bytes(log.read_bytes() + b'{"crc":"torn')
    store, records = reopen(tmp_path / "kb", on_corrupt="skip")
    assert [r.seq for r in records] == [0, 1, 2, 3, 4, 5]  # nothing valid lost
    assert [r.op for r in records][1:4] == ["delete", "lost", "delete"]  # the loss is marked
    assert store.report.skipped_lines == [3]
    backup = store.report.backup.read_bytes()
    assert b"garbage" in backup and b"torn" in backup
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
    with pytest.raises(CorruptStoreError, match="records 2..2 are missing"):
        reopen(tmp_path / "kb")
    store, records = reopen(tmp_path / "kb", on_corrupt="skip", read_only=True)
    assert [r.seq for r in records] == [0, 1, 3, 4] and "1 record(s) lost" in store.report.messages[
        0
    ]
    store.close()
    log.write_bytes(b"".join(lines + lines[:1]))
    with pytest.raises(CorruptStoreError, match="concatenated"):
        reopen(tmp_path / "kb")


def test_manifest_version_checks(tmp_path):
    write_records(tmp_path / "kb", 1)
    manifest_path = tmp_path / "kb" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = "99.0"  # a newer major version than this code reads
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(SchemaVersionError, match="newer than this corrigible"):
        reopen(tmp_path / "kb")
    manifest_path.write_text("{not json")
    with pytest.raises(CorruptStoreError, match="not valid JSON"):
        reopen(tmp_path / "kb", read_only=True)


def test_refuses_a_directory_that_is_not_a_knowledge_base(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(CorruptStoreError, match="not a knowledge base"):
        reopen(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="no knowledge base"):
        reopen(tmp_path / "missing", read_only=True)


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
@given(payloads=_payloads, cut_fraction=st.floats(0.0, 1.0))
def test_any_cut_keeps_exactly_the_complete_records(tmp_path_factory, payloads, cut_fraction):
    """Cutting the log at any byte keeps every record that ends before the cut, and no more."""
    path = tmp_path_factory.mktemp("kb")
    store = LogStore(path)
    store.open_and_replay()
    stored = store.append([{"op": "note", **payload} for payload in payloads])
    store.close()
    log = path / LOG_NAME
    data = log.read_bytes()
    cut = int(cut_fraction * len(data))
    log.write_bytes(data[:cut])
    store, records = reopen(path)
    expected = [r for r in stored if r.end <= cut]
    assert [r.data for r in records] == [r.data for r in expected]
    assert log.stat().st_size == (expected[-1].end if expected else 0)
    store.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(3, 10),
    where=st.integers(0, 100),
    garbage=st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b),
)
def test_garbage_anywhere_before_the_end_never_loses_a_valid_record(
    tmp_path_factory, count, where, garbage
):
    path = tmp_path_factory.mktemp("kb")
    write_records(path, count)
    log = path / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    position = where % (count - 1)  # at least one valid record follows
    lines.insert(position, garbage + b"\n")
    log.write_bytes(b"".join(lines))
    with pytest.raises(CorruptStoreError):
        reopen(path)
    store, records = reopen(path, on_corrupt="skip")
    assert [r.data["id"] for r in records] == [f"x{i}" for i in range(count)]
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
