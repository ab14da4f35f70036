r"""The crash-safe knowledge-base directory: an append-only checksummed log plus snapshots.

Layout of a knowledge-base directory (see memory/README.md for the full argument):

    manifest.json       format name, schema version, embedder names and widths; written once,
                        atomically, before anything else.
    entries.jsonl       the source of truth: one record per line,
                        {"crc":"<crc32 of REC as 8 hex digits>","rec":REC}\n, where REC is the
                        compact JSON of {"seq": n, "op": "add"|"delete"|"supersede", ...}.
    index.faiss         a snapshot of the text index (rebuildable from the log at any time).
    index.meta.json     what the snapshot covers (last seq and its crc) and the sha256 of
                        index.faiss.
    writer.lock         flock()ed exclusively by the single writer.

Durability: `append` writes a whole record with one `os.write` on an O_APPEND descriptor and then
`os.fsync`s before returning, so an acknowledged record is on disk. A crash can leave at most one
incomplete record at the end of the log, which replay recognises (no newline, or a bad checksum
with nothing valid after it) and drops; the writer truncates it and keeps a `.corrupt-*` copy.

Damage *before* valid records cannot come from a crash (records are appended in order), so it is
reported as `CorruptStoreError` by default: silently skipping it could resurrect a deleted entry
(a lost delete record) or drop knowledge. `on_corrupt="skip"` keeps every valid record, moves the
bad lines to a `.corrupt-*` file and says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from corrigible.errors import (
    ConfigError,
    CorruptStoreError,
    KnowledgeBaseClosedError,
    ReadOnlyError,
    StoreLockedError,
)
from corrigible.memory.schema import SCHEMA_VERSION, check_readable

_LOG = logging.getLogger(__name__)

FORMAT_NAME = "corrigible-kb"
LOG_NAME = "entries.jsonl"
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.faiss"
INDEX_META_NAME = "index.meta.json"
LOCK_NAME = "writer.lock"
_PREFIX = b'{"crc":"'
_MIDDLE = b'","rec":'
_HEADER_LEN = len(_PREFIX) + 8 + len(_MIDDLE)

OnCorrupt = Literal["error", "skip"]


def fsync_dir(path: Path) -> None:
    """Fsyncs a directory so that a rename or a new file inside it survives power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` so that readers see the old or the new file, never a mix.

    Writes a temporary file in the same directory, fsyncs it, renames it over `path`
    (`os.replace` is atomic on POSIX) and fsyncs the directory so the rename is durable.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def encode_record(rec: dict[str, Any]) -> bytes:
    """One log line for `rec`: the checksum covers the exact bytes of the record's JSON."""
    body = json.dumps(rec, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    return _PREFIX + f"{zlib.crc32(body):08x}".encode() + _MIDDLE + body + b"}\n"


def decode_record(line: bytes) -> tuple[dict[str, Any], int] | None:
    """Parses one log line (without its newline).

    Returns:
        (record, crc) or None when the line is damaged: wrong framing, checksum mismatch, or
        not a JSON object with an integer `seq` and a string `op`.
    """
    if len(line) < _HEADER_LEN + 2 or not line.startswith(_PREFIX) or not line.endswith(b"}"):
        return None
    if line[len(_PREFIX) + 8 : _HEADER_LEN] != _MIDDLE:
        return None
    try:
        crc = int(line[len(_PREFIX) : len(_PREFIX) + 8], 16)
    except ValueError:
        return None
    body = line[_HEADER_LEN:-1]
    if zlib.crc32(body) != crc:
        return None
    try:
        rec = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int):
        return None
    if not isinstance(rec.get("op"), str):
        return None
    return rec, crc


@dataclass
class LogRecord:
    """A record read back from the log, with where it sits."""

    seq: int  # record sequence number, 0-based, stored in the record
    op: str  # "add" | "delete" | "supersede"
    data: dict[str, Any]  # the whole record
    crc: int  # its checksum
    end: int  # byte offset just past its line


@dataclass
class ReplayReport:
    """What opening the log found and did; `messages` are human-readable."""

    records: int = 0
    torn_tail_bytes: int = 0  # bytes of an incomplete final record (dropped)
    skipped_lines: list[int] = field(default_factory=list)  # 1-based line numbers skipped
    backup: Path | None = None  # where dropped bytes were copied
    messages: list[str] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        """True when nothing was dropped or skipped."""
        return not self.torn_tail_bytes and not self.skipped_lines


class LogStore:
    """The directory's files: manifest, log, snapshot and writer lock.

    Use `LogStore.open`; one process may hold a store open for writing, any number read-only.

    Args:
        path: the knowledge-base directory.
        read_only: open without the writer lock; the files are never modified.
        on_corrupt: "error" (default) refuses a log damaged before its last valid record;
            "skip" keeps every valid record and reports (and, when writable, moves aside) the
            damaged lines.
        lock_timeout_s: how long a writer waits for the lock before `StoreLockedError`.
        manifest_extra: fields stored in a new manifest (embedder names and widths).
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        on_corrupt: OnCorrupt = "error",
        lock_timeout_s: float = 0.0,
        manifest_extra: dict[str, Any] | None = None,
    ) -> None:
        if on_corrupt not in ("error", "skip"):
            raise ConfigError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
        self.path = Path(path)
        self.read_only = read_only
        self._on_corrupt = on_corrupt
        self._lock_timeout_s = lock_timeout_s
        self._manifest_extra = manifest_extra or {}
        self._lock_fd: int | None = None
        self._log_fd: int | None = None
        self._size = 0  # bytes of complete, valid records in the log
        self._next_seq = 0
        self._last_crc: int | None = None
        self._line_count = 0  # complete lines read so far
        self._inode: int | None = None  # identity of the log file this handle replayed
        self._closed = False
        self.manifest: dict[str, Any] = {}
        self.report = ReplayReport()

    # -- lifecycle -------------------------------------------------------------------------

    def open_and_replay(self) -> list[LogRecord]:
        """Takes the lock (writers), checks the manifest and replays the log.

        Returns:
            Every valid record in order.

        Raises:
            FileNotFoundError: read-only open of a directory that is not there.
            CorruptStoreError: the log is damaged mid-way (with on_corrupt="error"), or the
                manifest is unreadable.
            SchemaVersionError: the directory was written by a newer major schema.
            StoreLockedError: another writer holds the lock.
        """
        try:
            if not self.read_only:
                self.path.mkdir(parents=True, exist_ok=True)
                self._acquire_lock()
            self._load_or_create_manifest()
            if not self.read_only:
                self._remove_stale_temporaries()
            records = self._replay()
            if not self.read_only:
                self._log_fd = os.open(
                    self.path / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
                )
                self._ensure_log_durable()
            return records
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Releases the log and the lock. Safe to call more than once."""
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
        self._closed = True

    @property
    def is_closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def _acquire_lock(self) -> None:
        self._lock_fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._lock_timeout_s
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"another process is writing the knowledge base at {self.path} (it "
                        "holds writer.lock); close it first, or open this one read-only."
                    ) from exc
                time.sleep(0.05)

    def _remove_stale_temporaries(self) -> None:
        # A writer killed inside atomic_write leaves its temporary file; only writers create
        # them and we hold the writer lock, so any that exist now are orphans.
        for tmp in self.path.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                _LOG.info("removed %s left by an interrupted snapshot write", tmp.name)

    def _load_or_create_manifest(self) -> None:
        manifest_path = self.path / MANIFEST_NAME
        if not manifest_path.exists():
            if self.read_only:
                if not self.path.is_dir():
                    raise FileNotFoundError(
                        f"no knowledge base at {self.path}; create one by opening it for writing "
                        "(KnowledgeBase.open(path)) or pass the right --kb path."
                    )
                raise CorruptStoreError(
                    f"{self.path} has no {MANIFEST_NAME}; it is not a knowledge base (or was "
                    "never initialised by a writer)."
                )
            # A writer killed while creating the manifest leaves only the lock and a temporary.
            ours = {LOCK_NAME}
            ours.update(p.name for p in self.path.glob(f".{MANIFEST_NAME}.*.tmp"))
            others = [p.name for p in self.path.iterdir() if p.name not in ours]
            if others:
                raise CorruptStoreError(
                    f"{self.path} holds files {sorted(others)[:5]} but no {MANIFEST_NAME}; it is "
                    "not a knowledge base. Choose an empty or new directory. Nothing was changed."
                )
            self.manifest = {
                "format": FORMAT_NAME,
                "schema_version": SCHEMA_VERSION,
                "kb_id": str(uuid.uuid4()),
                "created_at": datetime.now(UTC).isoformat(),
                **self._manifest_extra,
            }
            atomic_write(manifest_path, json.dumps(self.manifest, indent=2).encode())
            return
        try:
            manifest = json.loads(manifest_path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            raise CorruptStoreError(
                f"{manifest_path} is not valid JSON ({exc}); restore it from a backup or recreate "
                f"it: it only names the format and schema version (see memory/README.md)."
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise CorruptStoreError(
                f"{manifest_path} does not describe a {FORMAT_NAME} directory: {manifest!r:.120}"
            )
        check_readable(str(manifest.get("schema_version", "")), what=str(self.path))
        self.manifest = manifest

    # -- reading -----------------------------------------------------------------------------

    def _replay(self) -> list[LogRecord]:
        log_path = self.path / LOG_NAME
        data = log_path.read_bytes() if log_path.exists() else b""
        self._inode = log_path.stat().st_ino if log_path.exists() else None
        records, bad, valid_end = self._scan(data, start=0)
        middle = [span for span in bad if span[2] <= valid_end]
        gaps = self._gaps(records)
        tail = data[valid_end:]
        if (middle or gaps) and self._on_corrupt == "error":
            if middle:
                lines = ", ".join(str(line) for line, _, _ in middle[:10])
                raise CorruptStoreError(
                    f"{log_path} has {len(middle)} damaged record(s) at line(s) {lines} followed "
                    "by valid records. A crash cannot do that (records are appended in order), "
                    "so the file was damaged. Nothing was changed. To keep every valid record "
                    "and move the damaged lines aside, open with on_corrupt='skip' (CLI: "
                    "corrigible kb repair)."
                )
            first, last = gaps[0]
            raise CorruptStoreError(
                f"{log_path}: records {first}..{last} are missing (lines were removed). Nothing "
                "was changed; restore the file, or open with on_corrupt='skip' (CLI: corrigible "
                "kb repair) to accept the loss."
            )
        if middle or gaps:
            records, valid_end, tail = self._skip_damage(data, records, middle, gaps, tail)
        if tail:
            self._drop_torn_tail(tail, valid_end)
        self._advance(records)
        self._size = valid_end
        return records

    def _gaps(self, records: list[LogRecord]) -> list[tuple[int, int]]:
        """Missing seq ranges (first, last), counting "lost" markers as present.

        Raises:
            CorruptStoreError: seq numbers go backwards (edited or concatenated logs).
        """
        gaps: list[tuple[int, int]] = []
        expected = self._next_seq
        for record in records:
            if record.seq < expected:
                raise CorruptStoreError(
                    f"{self.path / LOG_NAME}: record seq {record.seq} appears after seq "
                    f"{expected - 1}; the log was edited or two logs were concatenated. "
                    "Nothing was changed; restore the file from a backup."
                )
            if record.seq > expected:
                gaps.append((expected, record.seq - 1))
            expected = record.seq + 1
        return gaps

    def _skip_damage(
        self,
        data: bytes,
        records: list[LogRecord],
        middle: list[tuple[int, int, int]],
        gaps: list[tuple[int, int]],
        tail: bytes,
    ) -> tuple[list[LogRecord], int, bytes]:
        """Keeps every valid record of a damaged log (on_corrupt="skip").

        Writers rewrite the log atomically: the valid lines stay byte for byte, each missing seq
        gets a "lost" marker record (so later opens see a complete sequence and a reader can tell
        knowledge was lost there), and the damaged bytes go to a `.corrupt-*` backup first.

        Returns:
            (records, offset past the last record, torn tail still to drop).
        """
        lines = ", ".join(str(line) for line, _, _ in middle[:10]) or "none"
        missing = sum(last - first + 1 for first, last in gaps)
        self.report.skipped_lines = [line for line, _, _ in middle]
        message = (
            f"skipped {len(middle)} damaged line(s) (line(s) {lines}) of {LOG_NAME}; "
            f"{missing} record(s) lost, {len(records)} valid record(s) kept"
        )
        if self.read_only:
            message += " (read-only: the file was not changed)"
        else:
            backup = self._backup(b"".join(data[a:b] for _, a, b in middle) + tail, "middle")
            lost_at = {first: last for first, last in gaps}
            chunks: list[bytes] = []
            rebuilt: list[LogRecord] = []
            offset = 0

            def emit(line: bytes, record: LogRecord) -> None:
                nonlocal offset
                offset += len(line)
                record.end = offset
                chunks.append(line)
                rebuilt.append(record)

            expected = self._next_seq
            for record in records:
                if record.seq > expected and expected in lost_at:
                    for seq in range(expected, lost_at[expected] + 1):
                        marker = {"seq": seq, "op": "lost", "backup": backup.name}
                        line = encode_record(marker)
                        crc = zlib.crc32(line[_HEADER_LEN:-2])
                        emit(line, LogRecord(seq, "lost", marker, crc, 0))
                start, stop = _line_span(record, data)
                emit(data[start:stop], record)
                expected = record.seq + 1
            atomic_write(self.path / LOG_NAME, b"".join(chunks))
            records, tail = rebuilt, b""
            message += f"; damaged bytes saved to {backup.name} and the log rewritten"
            _LOG.warning(message)
            self.report.messages.append(message)
            return records, offset, tail
        _LOG.warning(message)
        self.report.messages.append(message)
        return records, len(data) - len(tail), tail

    def _scan(
        self, data: bytes, *, start: int
    ) -> tuple[list[LogRecord], list[tuple[int, int, int]], int]:
        """Splits log bytes (read from offset `start`) into complete lines and checks each.

        Returns:
            (valid records, damaged lines as (line number, start, end) offsets into `data`,
            offset into `data` just past the last valid record). An incomplete final line
            (no newline) is neither: it is a torn write or one still in progress.
        """
        records: list[LogRecord] = []
        bad: list[tuple[int, int, int]] = []
        offset = 0
        valid_end = 0
        while offset < len(data):
            newline = data.find(b"\n", offset)
            if newline < 0:
                break
            self._line_count += 1
            decoded = decode_record(data[offset:newline])
            if decoded is None:
                bad.append((self._line_count, offset, newline + 1))
            else:
                rec, crc = decoded
                records.append(LogRecord(rec["seq"], rec["op"], rec, crc, start + newline + 1))
                valid_end = newline + 1
            offset = newline + 1
        return records, bad, valid_end

    def _advance(self, records: list[LogRecord]) -> None:
        if records:
            self._next_seq = records[-1].seq + 1
            self._last_crc = records[-1].crc
        self.report.records += len(records)

    def _check_sequence(self, records: list[LogRecord]) -> None:
        """Refuses new records that do not continue the sequence (read-only followers)."""
        gaps = self._gaps(records)
        if gaps:
            first, last = gaps[0]
            raise CorruptStoreError(
                f"{self.path / LOG_NAME}: records {first}..{last} are missing; reopen the "
                "knowledge base to see the full report."
            )

    def _drop_torn_tail(self, tail: bytes, offset: int) -> None:
        self.report.torn_tail_bytes = len(tail)
        message = (
            f"{LOG_NAME} ends with {len(tail)} byte(s) of an incomplete or damaged record (a "
            "write interrupted by a crash; it was never acknowledged)"
        )
        if self.read_only:
            message += "; ignored (read-only)"
            _LOG.info(message)
        else:
            backup = self._backup(tail, "tail")
            with open(self.path / LOG_NAME, "r+b") as handle:
                handle.truncate(offset)
                handle.flush()
                os.fsync(handle.fileno())
            message += f"; removed, bytes saved to {backup.name}"
            _LOG.warning(message)
        self.report.messages.append(message)

    def _backup(self, data: bytes, what: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        backup = self.path / f"{LOG_NAME}.corrupt-{what}-{stamp}-{uuid.uuid4().hex[:6]}"
        with open(backup, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(self.path)
        self.report.backup = backup
        return backup

    def read_new(self) -> list[LogRecord]:
        """Records appended since the last read (for read-only stores following a writer).

        An incomplete final line is left for the next call: the writer may be mid-append.
        """
        self._check_open()
        log_path = self.path / LOG_NAME
        if not log_path.exists():
            return []
        with open(log_path, "rb") as handle:
            inode = os.fstat(handle.fileno()).st_ino
            if self._inode is not None and inode != self._inode:
                raise CorruptStoreError(
                    f"{log_path} was replaced (a writer repaired it) since this read-only handle "
                    "opened it; close and reopen the knowledge base to read the repaired log."
                )
            self._inode = inode
            handle.seek(self._size)
            data = handle.read()
        line_count = self._line_count
        records, bad, valid_end = self._scan(data, start=self._size)
        if any(end <= valid_end for _, _, end in bad):
            lines = [line for line, _, end in bad if end <= valid_end]
            raise CorruptStoreError(
                f"{self.path / LOG_NAME} has damaged record(s) at line(s) {lines[:10]} followed "
                "by valid records; reopen the knowledge base to see the full report."
            )
        # Damaged or partial lines at the end may be a write in progress: read them again later.
        self._line_count = line_count + len(records)
        self._check_sequence(records)
        self._advance(records)
        self._size += valid_end
        return records

    # -- writing -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise KnowledgeBaseClosedError(
                f"the knowledge base at {self.path} was closed; open it again to use it"
            )

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only or self._log_fd is None:
            raise ReadOnlyError(
                f"the knowledge base at {self.path} is open read-only; open it without "
                "read_only=True (only one writer at a time) to change it"
            )

    def _ensure_log_durable(self) -> None:
        # A freshly created log file must survive a crash too: fsync its directory entry.
        assert self._log_fd is not None
        os.fsync(self._log_fd)
        fsync_dir(self.path)

    def append(self, records: list[dict[str, Any]]) -> list[LogRecord]:
        """Appends records (each without "seq") durably, as one write and one fsync.

        Args:
            records: record dicts with "op" and their payload.

        Returns:
            The records as stored, with their seq numbers.

        Raises:
            ReadOnlyError: the store is read-only.
            OSError: the write or fsync failed; the log is rolled back to its previous length,
                so no partial record stays behind and nothing was acknowledged.
        """
        self._check_writable()
        assert self._log_fd is not None
        stored: list[LogRecord] = []
        chunks: list[bytes] = []
        offset = self._size
        for i, payload in enumerate(records):
            rec = {"seq": self._next_seq + i, **payload}
            line = encode_record(rec)
            offset += len(line)
            chunks.append(line)
            decoded = decode_record(line[:-1])
            assert decoded is not None
            stored.append(LogRecord(rec["seq"], rec["op"], rec, decoded[1], offset))
        data = b"".join(chunks)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._log_fd, data[written:])
            os.fsync(self._log_fd)
        except OSError:
            # Roll back a partial append so the next record does not land after garbage.
            with contextlib.suppress(OSError):
                os.ftruncate(self._log_fd, self._size)
                os.fsync(self._log_fd)
            raise
        self._size = offset
        if stored:
            self._next_seq = stored[-1].seq + 1
            self._last_crc = stored[-1].crc
        return stored

    # -- snapshot ----------------------------------------------------------------------------

    def write_snapshot(self, index_bytes: bytes, meta: dict[str, Any]) -> None:
        """Writes index.faiss and index.meta.json atomically; meta covers the log so far.

        The meta records the sha256 of the index bytes, so a reader that catches the two files
        from different snapshots notices and rebuilds instead of trusting a mismatch.
        """
        self._check_writable()
        meta = {
            **meta,
            "covered_seq": self._next_seq - 1,
            "covered_crc": self._last_crc,
            "index_sha256": hashlib.sha256(index_bytes).hexdigest(),
            "schema_version": SCHEMA_VERSION,
            "written_at": datetime.now(UTC).isoformat(),
        }
        atomic_write(self.path / INDEX_NAME, index_bytes)
        atomic_write(self.path / INDEX_META_NAME, json.dumps(meta, indent=2).encode())

    def read_snapshot(self) -> tuple[bytes, dict[str, Any]] | None:
        """The snapshot if both files exist and agree, else None (with the reason logged)."""
        index_path = self.path / INDEX_NAME
        meta_path = self.path / INDEX_META_NAME
        if not index_path.exists() or not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_bytes())
            data = index_path.read_bytes()
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            _LOG.warning("index snapshot unreadable (%s); rebuilding it from %s", exc, LOG_NAME)
            return None
        if not isinstance(meta, dict) or hashlib.sha256(data).hexdigest() != meta.get(
            "index_sha256"
        ):
            _LOG.warning(
                "%s does not match the checksum in %s (damaged or half-replaced); rebuilding "
                "the index from %s",
                INDEX_NAME,
                INDEX_META_NAME,
                LOG_NAME,
            )
            return None
        return data, meta


def _line_span(record: LogRecord, data: bytes) -> tuple[int, int]:
    """Byte range of a record's line inside `data` (the whole log)."""
    start = data.rfind(b"\n", 0, record.end - 1) + 1
    return start, record.end
