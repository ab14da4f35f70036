r"""The crash-safe knowledge-base directory: an append-only checksummed log plus snapshots.

Layout of a knowledge-base directory (see memory/README.md for the full argument):

    manifest.json       format name, schema version, embedder names and widths, and a checksum
                        of those fields; written once, atomically, as the last step of creating
                        the directory (so a manifest means the log and the ack file exist).
    entries.jsonl       the source of truth: one record per line,
                        {"crc":"<crc32 of REC as 8 hex digits>","rec":REC}\n, where REC is the
                        compact JSON of {"seq": n, "op": "add"|"delete"|"supersede"|"lost", ...}.
    entries.ack         the last acknowledged record (seq and crc), in two checksummed slots
                        written alternately after each append's fsync.
    index.faiss         a snapshot of the text index (rebuildable from the log at any time).
    index.meta.json     what the snapshot covers (last seq and its crc), the sha256 of
                        index.faiss, and a checksum of itself.
    writer.lock         flock()ed exclusively by the single writer.

Durability: `write` appends whole records with `os.write` on an O_APPEND descriptor; `sync`
(group commit) `os.fsync`s the log, then records the last seq and crc in `entries.ack` (and
fsyncs that) before returning, so an acknowledged record is on disk *and* known to be
acknowledged. Concurrent writers share one leader's fsync; `append` is `write` + `sync`. A crash can
leave at most one incomplete record at the end of the log, after the acknowledged ones: replay
drops it (keeping a `.corrupt-tail-*` copy) and says it was never acknowledged. Anything else
that is wrong with a record at or below the acknowledged seq, or with a record followed by valid
ones, is damage to acknowledged data: it is reported as such (`LostRecordsError`) and never
silently dropped. `on_corrupt="skip"` (`corrigible kb repair`) keeps every intact record, moves
the damaged bytes to `.corrupt-damaged-*` and puts a `lost` marker in each lost seq.

Reading is tolerant of what editors and copies do to text files: CRLF or CR line endings,
trailing whitespace, blank lines, a byte-order mark, a missing final newline, duplicated or
reordered lines, and a damaged line separator between two intact records all keep every record.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from corrigible.errors import (
    ConfigError,
    CorruptStoreError,
    KnowledgeBaseClosedError,
    LostRecordsError,
    ReadOnlyError,
    SchemaVersionError,
    StoreLockedError,
    StoreUnreadableError,
)
from corrigible.memory.schema import SCHEMA_VERSION, check_readable, parse_version

_LOG = logging.getLogger(__name__)

FORMAT_NAME = "corrigible-kb"
LOG_NAME = "entries.jsonl"
ACK_NAME = "entries.ack"
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.faiss"
INDEX_META_NAME = "index.meta.json"
LOCK_NAME = "writer.lock"
_PREFIX = b'{"crc":"'
_MIDDLE = b'","rec":'
_HEADER_LEN = len(_PREFIX) + 8 + len(_MIDDLE)
_HEADER_MODEL = _PREFIX + b"00000000" + _MIDDLE + b'{"seq":'  # every record starts like this
_HEX8 = re.compile(rb"[0-9a-fA-F]{8}")
# Line terminators an editor may have written; JSON escapes both characters inside strings, so
# a raw CR or LF never occurs inside a record.
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BLANK = b" \t\r\n\x0b\x0c"
_BOM = b"\xef\xbb\xbf"
# The seq of a damaged record, if its first bytes survived (REC always starts with "seq").
_SEQ_HINT = re.compile(rb'"rec":\{"seq":(\d{1,18})[,}]')
_SALVAGE_TRIES = 64  # closing braces tried per record start when re-synchronising a line
_ACK_SLOT = 80  # bytes per slot of entries.ack (one JSON line, space-padded)
# More lost seqs than this means the seq numbers themselves were edited (an implausible size).
_MAX_MISSING = 10_000_000
# Fields of manifests and snapshot metas written before they carried a checksum: such a file
# with any other field was damaged (a newer version always writes the checksum).
_MANIFEST_FIELDS = frozenset(
    {"format", "schema_version", "kb_id", "created_at", "ack_file", "recovered_at", "crc",
     "text_model", "text_dim", "visual_descriptor", "visual_dim"}
)  # fmt: skip
_META_FIELDS = frozenset(
    {"text_model", "text_dim", "entries_indexed", "index_kind", "covered_seq", "covered_crc",
     "index_sha256", "schema_version", "written_at", "crc"}
)  # fmt: skip

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


def _fields_crc(fields: dict[str, Any]) -> str:
    """Checksum of a JSON object's fields other than "crc" (manifest, snapshot meta)."""
    body = {key: value for key, value in fields.items() if key != "crc"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{zlib.crc32(text.encode()):08x}"


def checksummed_json(fields: dict[str, Any]) -> bytes:
    """`fields` as indented JSON with a "crc" field over the others (see `_fields_crc`)."""
    body = {key: value for key, value in fields.items() if key != "crc"}
    return json.dumps({**body, "crc": _fields_crc(body)}, indent=2).encode()


def _read_regular(path: Path, what: str) -> bytes | None:
    """The bytes of a regular file; None when it does not exist.

    Raises:
        StoreUnreadableError: it is a directory, a FIFO or device, or cannot be read.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreUnreadableError(
            f"cannot read {path} ({exc.strerror or exc}); {what}. Check the path and its "
            "permissions."
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise StoreUnreadableError(
            f"{path} is {kind}, so it cannot be read; {what}. Move it aside and restore the "
            "file from a backup (corrigible never creates it like this)."
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StoreUnreadableError(
            f"cannot read {path} ({exc.strerror or exc}); {what}. Fix its permissions "
            "(the knowledge base needs to read it) or restore it from a backup."
        ) from exc


def encode_record(rec: dict[str, Any]) -> bytes:
    """One log line for `rec`: the checksum covers the exact bytes of the record's JSON."""
    body = json.dumps(rec, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    return _PREFIX + f"{zlib.crc32(body):08x}".encode() + _MIDDLE + body + b"}\n"


def decode_record(line: bytes) -> tuple[dict[str, Any], int] | None:
    """Parses one record (the bytes from its opening to its closing brace, no newline).

    Returns:
        (record, crc) or None when the bytes are damaged: wrong framing, checksum mismatch, or
        not a JSON object with a non-negative integer `seq` and a string `op`.
    """
    if len(line) < _HEADER_LEN + 2 or not line.startswith(_PREFIX) or not line.endswith(b"}"):
        return None
    if line[len(_PREFIX) + 8 : _HEADER_LEN] != _MIDDLE:
        return None
    digits = line[len(_PREFIX) : len(_PREFIX) + 8]
    if not _HEX8.fullmatch(digits):
        return None
    crc = int(digits, 16)
    body = line[_HEADER_LEN:-1]
    if zlib.crc32(body) != crc:
        return None
    try:
        rec = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON or UTF-8, huge ints, absurd nesting
        return None
    if not isinstance(rec, dict):
        return None
    seq = rec.get("seq")
    if type(seq) is not int or seq < 0 or not isinstance(rec.get("op"), str):
        return None
    return rec, crc


@dataclass
class LogRecord:
    """A record read back from the log, with where it sits."""

    seq: int  # record sequence number, 0-based, stored in the record
    op: str  # "add" | "delete" | "supersede" | "lost"
    data: dict[str, Any]  # the whole record
    crc: int  # its checksum
    end: int  # byte offset just past its line (terminator included)
    line: int = 0  # 1-based line number in the log (0: not read from a file)
    start: int = 0  # byte offset of its opening brace
    stop: int = 0  # byte offset just past its closing brace


@dataclass(frozen=True)
class PendingCommit:
    """Records written to the log but not yet durable: what `LogStore.sync` waits for."""

    records: list[LogRecord]  # as stored, in seq order
    epoch: int  # the store's failure epoch at write time (a failed group commit bumps it)


@dataclass
class Fragment:
    """Bytes of the log that are neither a valid record nor blank."""

    line: int  # 1-based line number
    start: int  # byte offsets into the log
    stop: int
    seq_hint: int | None  # the seq its damaged bytes still name, if readable
    crash_shaped: bool = False  # starts like a record or with NULs: what a torn write leaves
    cause: str = "junk"  # "damaged" | "junk" | "torn" | "unconfirmed"
    seq: int | None = None  # the acknowledged record it held, when attributed
    line_span: tuple[int, int] = (0, 0)  # its whole line, terminator included (quarantine)


@dataclass(frozen=True)
class Watermark:
    """What is known about the last acknowledged record."""

    seq: int = -1  # highest seq known to be acknowledged (-1: none)
    crc: int | None = None  # its checksum, when known
    exact: bool = False  # True: entries.ack is intact, so nothing after seq was acknowledged
    source: str = "none"  # "entries.ack", "index.meta.json" or "none"
    problem: str | None = None  # why it is not exact


@dataclass
class LogScan:
    """A log split into records and damaged fragments, with what an editor changed."""

    records: list[LogRecord] = field(default_factory=list)  # valid records, file order
    fragments: list[Fragment] = field(default_factory=list)  # damaged bytes, file order
    lines: int = 0  # line terminators seen
    crlf: int = 0  # lines ended by CRLF
    cr: int = 0  # lines ended by a lone CR
    bom: bool = False  # a byte-order mark before a record
    padded: int = 0  # lines with whitespace around their record
    blank: int = 0  # blank lines
    merged: int = 0  # lines holding more than one record (a damaged separator)
    unterminated: bool = False  # the last record has no line terminator after it


@dataclass
class LogAnalysis:
    """What the records and fragments of a scan mean, given the acknowledgement watermark."""

    records: list[LogRecord]  # one per seq, in seq order (lost markers included)
    damaged: list[Fragment]  # damaged acknowledged records (cause "damaged", seq set)
    missing: list[int]  # acknowledged seqs whose bytes are gone
    junk: list[Fragment]  # damaged bytes that hold no acknowledged record
    tail_junk: list[Fragment]  # the part of `junk` after the last record (dropped with a tail)
    torn: list[Fragment]  # after the last acknowledged record: a write cut by a crash
    unconfirmed: list[Fragment]  # at the end, watermark unknown: torn write or damage
    duplicates: int  # identical records read more than once
    reordered: bool  # records out of seq order in the file
    conflicts: list[int]  # seqs held by two different records
    unacknowledged: list[int]  # complete records after the watermark (crash before the ack)
    cut: int | None  # writers truncate the log here (start of the dropped tail), if anything
    ack_mismatch: bool  # the record at the watermark's seq is not the acknowledged one

    @property
    def lost(self) -> list[int]:
        """Acknowledged seqs that cannot be recovered (damaged or missing)."""
        return sorted([f.seq for f in self.damaged if f.seq is not None] + self.missing)


def _trim(data: bytes, start: int, stop: int) -> tuple[int, int, bool]:
    """Offsets of a line without surrounding whitespace and byte-order marks."""
    bom = False
    while True:
        while start < stop and data[start] in _BLANK:
            start += 1
        if data.startswith(_BOM, start, stop):
            start += len(_BOM)
            bom = True
            continue
        break
    while stop > start and data[stop - 1] in _BLANK:
        stop -= 1
    return start, stop, bom


def _seq_hint(data: bytes) -> int | None:
    match = _SEQ_HINT.search(data)
    return int(match.group(1)) if match else None


def _crash_shaped(data: bytes) -> bool:
    """Whether bytes could be what a write cut by a crash leaves.

    That is the first bytes of a record (its framing so far intact, and not a complete line:
    a complete write would verify), possibly followed by blocks the file system extended with
    zeros before the data reached them.
    """
    zeros = data.find(b"\0")
    if zeros < 0:
        try:
            json.loads(data)
        except (ValueError, RecursionError):
            pass
        else:
            return False  # complete, but does not verify: damage, not a cut
        zeros = len(data)
    head = data[: min(zeros, len(_HEADER_MODEL))]
    for i, byte in enumerate(head):
        if len(_PREFIX) <= i < len(_PREFIX) + 8:
            if byte not in b"0123456789abcdefABCDEF":
                return False
        elif byte != _HEADER_MODEL[i]:
            return False
    return True


def scan_log(data: bytes, *, offset: int = 0, first_line: int = 1) -> LogScan:
    """Splits log bytes into valid records and damaged fragments (pure; reads nothing).

    Each line (ended by LF, CRLF or CR) is trimmed of whitespace and byte-order marks and
    decoded. A line that does not decode is searched for records inside it, which recovers two
    intact records whose separating newline was damaged; what remains is a fragment.

    Args:
        data: log bytes.
        offset: where `data` starts in the file (for the offsets recorded).
        first_line: the line number of the first line in `data`.
    """
    scan = LogScan()
    number = first_line
    position = 0
    size = len(data)
    while position < size:
        match = _LINE_END.search(data, position)
        stop = match.start() if match else size
        end = match.end() if match else size
        if match:
            scan.lines += 1
            scan.crlf += match.group() == b"\r\n"
            scan.cr += match.group() == b"\r"
        start, content_stop, bom = _trim(data, position, stop)
        if start == content_stop:
            scan.blank += stop > position or match is not None
        else:
            scan.bom |= bom
            scan.padded += (start, content_stop) != (position, stop) and not bom
            decoded = decode_record(data[start:content_stop])
            if decoded is not None:
                rec, crc = decoded
                scan.records.append(
                    LogRecord(rec["seq"], rec["op"], rec, crc, offset + end, number,
                              offset + start, offset + content_stop)
                )  # fmt: skip
            else:
                _salvage(data, (position, start, content_stop, end), number, offset, scan)
        position = end
        number += 1
    if scan.records:
        last = scan.records[-1]
        after = data[last.stop - offset :]
        scan.unterminated = not any(ch in b"\r\n" for ch in after)
    return scan


def _salvage(
    data: bytes, span: tuple[int, int, int, int], number: int, offset: int, scan: LogScan
) -> None:
    """Finds intact records inside a damaged line; the rest becomes fragments.

    `span` is (line start, content start, content stop, line end past its terminator).
    """
    line_start, start, stop, end = span
    found: list[LogRecord] = []
    position = start
    while True:
        begin = data.find(_PREFIX, position, stop)
        if begin < 0:
            break
        following = data.find(_PREFIX, begin + 1, stop)
        limit = following if following >= 0 else stop
        record = None
        if data[begin + len(_PREFIX) + 8 : begin + _HEADER_LEN] == _MIDDLE:
            close = limit
            for _ in range(_SALVAGE_TRIES):
                close = data.rfind(b"}", begin + _HEADER_LEN, close)
                if close < 0:
                    break
                decoded = decode_record(data[begin : close + 1])
                if decoded is not None:
                    rec, crc = decoded
                    record = LogRecord(rec["seq"], rec["op"], rec, crc, offset + close + 1,
                                       number, offset + begin, offset + close + 1)  # fmt: skip
                    break
        if record is not None:
            found.append(record)
            position = record.stop - offset
        else:
            position = limit
    pieces: list[tuple[int, int]] = []
    cursor = start
    for record in found:
        pieces.append((cursor, record.start - offset))
        cursor = record.stop - offset
    pieces.append((cursor, stop))
    for a, b in pieces:
        a, b, _ = _trim(data, a, b)
        if a < b:
            piece = data[a:b]
            scan.fragments.append(
                Fragment(number, offset + a, offset + b, _seq_hint(piece), _crash_shaped(piece),
                         line_span=(offset + line_start, offset + end))
            )  # fmt: skip
    if found:
        # The last record ends its line unless junk follows it on the same line.
        a, b, _ = _trim(data, found[-1].stop - offset, stop)
        if a >= b:
            found[-1].end = offset + end
        scan.merged += len(found) > 1
        scan.records.extend(found)


def analyze(scan: LogScan, watermark: Watermark, *, first_seq: int = 0) -> LogAnalysis:
    """Tells torn writes from damage to acknowledged records (pure).

    Every seq from `first_seq` to max(last seq in the log, watermark) must be present. A seq
    that is not was acknowledged and lost: "damaged" when a fragment plausibly held it (its
    bytes name the seq, or it sits between the neighbouring records), "missing" otherwise.
    Fragments after the last record hold nothing acknowledged when the watermark is exact: a
    write cut by a crash ("torn") if they are shaped like one, damage ("junk") otherwise. When
    the watermark is not exact they may have held an acknowledged record ("unconfirmed").
    """
    records = list(scan.records)
    fragments = list(scan.fragments)
    torn: list[Fragment] = []
    # A complete record with no newline after the acknowledged ones is a write cut just before
    # its newline: never acknowledged, dropped like any torn write.
    if records and scan.unterminated and watermark.exact and records[-1].seq > watermark.seq:
        last = records.pop()
        torn.append(Fragment(last.line, last.start, last.stop, last.seq, True, "torn"))
    by_seq: dict[int, LogRecord] = {}
    duplicates = 0
    conflicts: list[int] = []
    for record in records:
        known = by_seq.get(record.seq)
        if known is None:
            by_seq[record.seq] = record
        elif known.crc == record.crc and known.data == record.data:
            duplicates += 1
        else:
            conflicts.append(record.seq)
    unique = sorted(by_seq.values(), key=lambda r: r.seq)
    file_order = [r.seq for r in records if by_seq.get(r.seq) is r]
    reordered = file_order != sorted(file_order)
    top = max([watermark.seq] + [r.seq for r in unique])
    if top - len(unique) > _MAX_MISSING:
        raise CorruptStoreError(
            f"the log's records or {ACK_NAME} claim seq {top}, but the log holds "
            f"{len(unique)} record(s); no knowledge base is that large, so the files were "
            "edited. Nothing was changed; restore them from a backup."
        )
    lost = [s for s in range(first_seq, top + 1) if s not in by_seq]
    free = _FreeSeqs(first_seq, top, lost)
    last_stop = max((r.stop for r in records), default=-1)
    tail = [f for f in fragments if f.start >= last_stop]
    middle = [f for f in fragments if f.start < last_stop]
    stops = [r.stop for r in records]  # records are in file order: both lists ascend
    starts = [r.start for r in records]

    for fragment in fragments:  # bytes that still name their seq
        if fragment.seq_hint is not None and free.take(fragment.seq_hint):
            fragment.cause, fragment.seq = "damaged", fragment.seq_hint
    for fragment in fragments:  # otherwise by position, between the neighbouring records
        if fragment.seq is not None:
            continue
        before = bisect.bisect_right(stops, fragment.start)
        after = bisect.bisect_left(starts, fragment.stop)
        low = records[before - 1].seq if before else first_seq - 1
        high = records[after].seq if after < len(records) else top + 1
        seq = free.first_after(low)
        if seq is not None and seq < high and free.take(seq):
            fragment.cause, fragment.seq = "damaged", seq
    damaged = [f for f in fragments if f.cause == "damaged"]
    junk = [f for f in middle if f.cause != "damaged"]
    unconfirmed: list[Fragment] = []
    tail_junk: list[Fragment] = []
    for fragment in tail:
        if fragment.cause == "damaged":
            continue
        if not watermark.exact:
            fragment.cause = "unconfirmed"
            unconfirmed.append(fragment)
        elif fragment.crash_shaped and (fragment.seq_hint is None or fragment.seq_hint > top):
            # A torn write is the next record: if its bytes name a seq, it is a new one.
            fragment.cause = "torn"
            torn.append(fragment)
        else:
            tail_junk.append(fragment)
    junk += tail_junk
    dropped = sorted(torn + unconfirmed + tail_junk, key=lambda f: f.start)
    cut = None
    if dropped and not lost:
        cut = max((r.end for r in records if r.stop <= dropped[0].start), default=0)
    unacknowledged = [r.seq for r in unique if r.seq > watermark.seq] if watermark.exact else []
    at_mark = by_seq.get(watermark.seq)
    ack_mismatch = (
        at_mark is not None
        and watermark.crc is not None
        and at_mark.crc != watermark.crc
        and at_mark.op != "lost"
    )
    return LogAnalysis(
        records=unique,
        damaged=damaged,
        missing=free.remaining(),
        junk=junk,
        tail_junk=tail_junk,
        torn=torn,
        unconfirmed=unconfirmed,
        duplicates=duplicates,
        reordered=reordered,
        conflicts=sorted(set(conflicts)),
        unacknowledged=unacknowledged,
        cut=cut,
        ack_mismatch=ack_mismatch,
    )


class _FreeSeqs:
    """Lost seqs not yet attributed to a fragment: take one, or find the first after a seq.

    A "next free" array with path compression, so attributing every line of a fully damaged
    log stays near linear.
    """

    def __init__(self, first: int, top: int, lost: list[int]) -> None:
        self._first = first
        self._free = set(lost)
        # _next[i]: candidate for the first free seq >= first + i (len: top - first + 2).
        self._next = list(range(top - first + 2))
        for i in range(top - first + 1):
            if first + i not in self._free:
                self._next[i] = i + 1

    def _find(self, i: int) -> int:
        root = i
        while root < len(self._next) - 1 and self._next[root] != root:
            root = self._next[root]
        while i != root:
            self._next[i], i = root, self._next[i]
        return root

    def first_after(self, seq: int) -> int | None:
        """The smallest free seq > `seq`, if any."""
        i = max(seq + 1 - self._first, 0)
        if i >= len(self._next) - 1:
            return None
        root = self._find(i)
        return None if root >= len(self._next) - 1 else self._first + root

    def take(self, seq: int) -> bool:
        """Marks `seq` attributed; False when it was not free."""
        if seq not in self._free:
            return False
        self._free.discard(seq)
        self._next[seq - self._first] = seq - self._first + 1
        return True

    def remaining(self) -> list[int]:
        """The free seqs left, ascending."""
        return sorted(self._free)


def _ranges(seqs: list[int]) -> str:
    """Compact seq ranges: "3, 5..9, 12" for [3, 5, 6, 7, 8, 9, 12]."""
    runs: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    text = [str(a) if a == b else f"{a}..{b}" for a, b in runs]
    return ", ".join(text[:12]) + (" ..." if len(text) > 12 else "")


def describe_loss(analysis: LogAnalysis) -> str:
    """One sentence naming each lost acknowledged record and why it is lost."""
    parts: list[str] = []
    if analysis.damaged:
        where = ", ".join(f"seq {f.seq} (line {f.line})" for f in analysis.damaged[:8])
        more = " ..." if len(analysis.damaged) > 8 else ""
        parts.append(
            f"{len(analysis.damaged)} acknowledged record(s) damaged: {where}{more} (their "
            "bytes no longer match their checksum)"
        )
    if analysis.missing:
        parts.append(
            f"{len(analysis.missing)} acknowledged record(s) missing: seq "
            f"{_ranges(analysis.missing)} (lines removed or the file cut short)"
        )
    return "; ".join(parts)


@dataclass
class ReplayReport:
    """What opening the log found and did; `messages` are human-readable."""

    records: int = 0
    torn_tail_bytes: int = 0  # bytes of an incomplete final record, never acknowledged (dropped)
    unconfirmed_tail_bytes: int = 0  # bytes at the end whose acknowledgement is unknown
    skipped_lines: list[int] = field(default_factory=list)  # 1-based lines of damaged bytes
    damaged: list[dict[str, int]] = field(default_factory=list)  # {"seq", "line", "bytes"}
    missing: list[int] = field(default_factory=list)  # acknowledged seqs with no bytes left
    junk_lines: list[int] = field(default_factory=list)  # damaged lines holding no record
    duplicates: int = 0  # identical records read twice
    reordered: bool = False  # records out of seq order in the file
    unacknowledged: list[int] = field(default_factory=list)  # kept, written after the ack
    lost_markers: list[dict[str, Any]] = field(default_factory=list)  # losses accepted earlier
    acknowledged_seq: int = -1  # the last acknowledged seq, as far as known
    ack_exact: bool = False  # whether entries.ack was intact
    ack_source: str = "none"
    ack_problem: str | None = None
    manifest_problem: str | None = None  # a damaged or missing manifest, recovered
    format_notes: list[str] = field(default_factory=list)  # line endings, BOM, whitespace
    backup: Path | None = None  # where the last dropped bytes were copied
    backups: list[Path] = field(default_factory=list)  # every file written with dropped bytes
    messages: list[str] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        """True when nothing was dropped, skipped, damaged or recovered."""
        return not (
            self.torn_tail_bytes
            or self.unconfirmed_tail_bytes
            or self.skipped_lines
            or self.damaged
            or self.missing
            or self.duplicates
            or self.reordered
            or self.manifest_problem
        )

    @property
    def lost(self) -> list[int]:
        """Acknowledged seqs found damaged or missing on this open."""
        return sorted([d["seq"] for d in self.damaged] + self.missing)


@dataclass
class _AckFile:
    slots: list[tuple[int, int | None] | None]  # (seq, crc) per valid slot
    exists: bool
    intact: bool
    problem: str | None = None


def _encode_ack_slot(seq: int, crc: int | None) -> bytes:
    fields = {"seq": seq, "crc": None if crc is None else f"{crc:08x}"}
    text = json.dumps(fields, separators=(",", ":"))
    chk = f"{zlib.crc32(text.encode()):08x}"
    line = json.dumps({**fields, "chk": chk}, separators=(",", ":")).encode()
    return line.ljust(_ACK_SLOT - 1) + b"\n"


def _decode_ack_slot(raw: bytes) -> tuple[int, int | None] | None:
    try:
        slot = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(slot, dict) or set(slot) != {"seq", "crc", "chk"}:
        return None
    seq, crc = slot["seq"], slot["crc"]
    if type(seq) is not int or seq < -1:
        return None
    text = json.dumps({"seq": seq, "crc": crc}, separators=(",", ":"))
    if slot["chk"] != f"{zlib.crc32(text.encode()):08x}":
        return None
    if crc is None:
        return (seq, None) if seq == -1 else None
    if not isinstance(crc, str) or not _HEX8.fullmatch(crc.encode()):
        return None
    return seq, int(crc, 16)


class LogStore:
    """The directory's files: manifest, log, acknowledgement, snapshot and writer lock.

    Use `open_and_replay`; one process may hold a store open for writing, any number read-only.

    Args:
        path: the knowledge-base directory.
        read_only: open without the writer lock; the files are never modified.
        on_corrupt: "error" (default) refuses a log that lost acknowledged records
            (`LostRecordsError`); "skip" keeps every intact record and reports (and, when
            writable, quarantines) the damage.
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
        self._ack_fd: int | None = None
        self._ack_slot = 0  # the slot the next acknowledgement overwrites
        self._size = 0  # bytes of the log consumed (valid records and what was judged)
        self._next_seq = 0
        self._last_crc: int | None = None
        self._line_count = 0  # complete lines read so far
        # Group commit (`write` / `sync`): the io lock orders writes and rollbacks; the
        # condition guards the durable point, the leader flag and the failure epoch.
        self._io_lock = threading.Lock()
        self._sync_cond = threading.Condition(threading.Lock())
        self._durable: tuple[int, int | None, int, int] = (-1, None, 0, 0)  # seq crc size lines
        self._syncing = False  # a leader's fsync is in flight
        self._epoch = 0  # bumped by each failed group commit; its writers all fail
        self._failure: BaseException | None = None
        self._unapplied: deque[LogRecord] = deque()  # tracked records not yet taken
        # fsyncs of the log by group commits, records they made durable, the largest group.
        self.commit_stats: dict[str, int] = {"fsyncs": 0, "records": 0, "largest_group": 0}
        self._inode: int | None = None  # identity of the log file this handle replayed
        self._closed = False
        self.manifest: dict[str, Any] = {}
        self.watermark = Watermark()
        self.snapshot: tuple[bytes, dict[str, Any]] | None = None
        self.snapshot_problem: str | None = None  # why `snapshot` is None, if a file exists
        self._meta_only: dict[str, Any] | None = None  # the snapshot meta, even without index
        self._manifest_to_write: tuple[bytes | None, str] | None = None  # (damaged bytes, note)
        self.report = ReplayReport()

    # -- lifecycle -------------------------------------------------------------------------

    def open_and_replay(self) -> list[LogRecord]:
        """Takes the lock (writers), checks the manifest and replays the log.

        Files are read in the order snapshot, acknowledgement, log: a writer acknowledges a
        record only after it is in the log and snapshots only acknowledged records, so a
        reader racing it never sees a snapshot or an acknowledgement ahead of its log.

        Returns:
            Every valid record, one per seq, in seq order.

        Raises:
            FileNotFoundError: read-only open of a directory that is not there.
            LostRecordsError: acknowledged records are damaged or missing (on_corrupt="error").
            CorruptStoreError: not a knowledge base, a missing log, or conflicting records.
            StoreUnreadableError: a file is a directory, not a regular file, or unreadable.
            SchemaVersionError: the directory was written by a newer major schema.
            StoreLockedError: another writer holds the lock.
        """
        try:
            if not self.read_only:
                self.path.mkdir(parents=True, exist_ok=True)
                self._acquire_lock()
            elif not self.path.is_dir():
                raise FileNotFoundError(
                    f"no knowledge base at {self.path}; create one by opening it for writing "
                    "(KnowledgeBase.open(path)) or pass the right --kb path."
                )
            self._read_snapshot()
            ack = self._read_ack()
            data = self._read_log()
            scan = scan_log(data) if data is not None else None
            if self._load_manifest(data, scan, ack):  # a new directory was just created
                ack, data, scan = self._read_ack(), b"", LogScan()
            if not self.read_only:
                self._remove_stale_temporaries()
            self.watermark = self._watermark(ack, scan)
            self.report.acknowledged_seq = self.watermark.seq
            self.report.ack_exact = self.watermark.exact
            self.report.ack_source = self.watermark.source
            self.report.ack_problem = self.watermark.problem
            records = self._replay(data, scan)
            if not self.read_only:
                self._write_recovered_manifest()
                self._log_fd = os.open(
                    self.path / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
                )
                self._ensure_log_durable()
                self._open_ack(ack)
                # Everything replayed is acknowledged now (_open_ack recorded the last record).
                self._durable = (
                    self._next_seq - 1,
                    self._last_crc if self._next_seq else None,
                    self._size,
                    self._line_count,
                )
            return records
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Releases the log and the lock. Safe to call more than once."""
        for name in ("_log_fd", "_ack_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
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
        try:
            self._lock_fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnreadableError(
                f"cannot open {self.path / LOCK_NAME} ({exc.strerror or exc}); the writer needs "
                "to create and lock it. Check the directory's permissions."
            ) from exc
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

    def _note(self, message: str, *, level: int = logging.WARNING) -> None:
        _LOG.log(level, message)
        self.report.messages.append(message)

    # -- the manifest ------------------------------------------------------------------------

    def _new_manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "schema_version": SCHEMA_VERSION,
            "kb_id": str(uuid.uuid4()),
            "created_at": datetime.now(UTC).isoformat(),
            "ack_file": ACK_NAME,
            **self._manifest_extra,
        }

    def _initialise(self) -> None:
        """Creates the log and the ack file, then the manifest (the commit point)."""
        fd = os.open(self.path / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        atomic_write(self.path / ACK_NAME, _encode_ack_slot(-1, None) * 2)
        self.manifest = self._new_manifest()
        atomic_write(self.path / MANIFEST_NAME, checksummed_json(self.manifest))

    @staticmethod
    def _parse_manifest(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
        """(manifest, None) when intact, else (None, what is wrong with it)."""
        try:
            manifest = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return None, f"it is not valid JSON ({type(exc).__name__}: {str(exc)[:100]})"
        if not isinstance(manifest, dict):
            return None, "it is not a JSON object"
        if "crc" in manifest and manifest["crc"] != _fields_crc(manifest):
            return None, "its checksum does not match its contents"
        unknown = sorted(set(manifest) - _MANIFEST_FIELDS)
        if "crc" not in manifest and unknown:
            return None, f"it has no checksum and unknown field(s) {unknown[:3]}"
        if manifest.get("format") != FORMAT_NAME:
            return None, f"it does not describe a {FORMAT_NAME} directory: {manifest!r:.120}"
        return manifest, None

    def _load_manifest(self, data: bytes | None, scan: LogScan | None, ack: _AckFile) -> bool:
        """Reads the manifest, creating a new directory or recovering a damaged manifest.

        Returns:
            True when the directory was created now.
        """
        manifest_path = self.path / MANIFEST_NAME
        raw = _read_regular(manifest_path, "it names the knowledge base's format and version")
        problem = "it is missing" if raw is None else None
        if raw is not None:
            manifest, problem = self._parse_manifest(raw)
            if manifest is not None:
                check_readable(str(manifest.get("schema_version", "")), what=str(self.path))
                self.manifest = manifest
                return False
        has_records = bool(scan and scan.records)
        acked = any(slot is not None and slot[0] >= 0 for slot in ack.slots)
        if raw is None and not has_records and not acked:
            # A writer killed while creating the directory leaves some of: the lock, an empty
            # log, the initial ack file, a manifest temporary. Anything else is not ours.
            ours = {LOCK_NAME, ACK_NAME, LOG_NAME}
            others = sorted(
                p.name
                for p in self.path.iterdir()
                if p.name not in ours and not (p.name.startswith(".") and p.name.endswith(".tmp"))
            )
            log_blank = not (data or b"").strip(_BLANK)
            if self.read_only:
                raise CorruptStoreError(
                    f"{self.path} has no {MANIFEST_NAME} and no log records; it is not a "
                    "knowledge base (or was never initialised by a writer)."
                )
            if others or not log_blank:
                raise CorruptStoreError(
                    f"{self.path} holds files {(others or [LOG_NAME])[:5]} but no {MANIFEST_NAME} "
                    "and no log records; it is not a knowledge base. Choose an empty or new "
                    "directory. Nothing was changed."
                )
            self._initialise()
            return True
        if not has_records and not any(ack.slots):
            raise CorruptStoreError(
                f"{manifest_path} is damaged ({problem}) and {LOG_NAME} holds no record to "
                f"recover it from. Restore {MANIFEST_NAME} from a backup, or move the directory "
                "aside and start a new knowledge base. Nothing was changed."
            )
        self.manifest = self._recover_manifest(scan)
        check_readable(str(self.manifest["schema_version"]), what=str(self.path))
        what = "is missing" if raw is None else f"is damaged ({problem})"
        self.report.manifest_problem = f"{MANIFEST_NAME} {what}"
        source = LOG_NAME if has_records else f"{ACK_NAME} and the index snapshot"
        message = f"{MANIFEST_NAME} {what}; its fields were recovered from {source}"
        if self.read_only:
            self._note(message + " for this read (read-only: nothing was written)")
        else:  # written once the log replayed, so that an open that then fails changes nothing
            self._manifest_to_write = (raw, message)
        return False

    def _write_recovered_manifest(self) -> None:
        if self._manifest_to_write is None:
            return
        raw, message = self._manifest_to_write
        self._manifest_to_write = None
        if raw is not None:
            backup = self._backup(raw, "", name=MANIFEST_NAME)
            message += f"; the damaged file was saved to {backup.name}"
        atomic_write(self.path / MANIFEST_NAME, checksummed_json(self.manifest))
        self._note(message + f" and {MANIFEST_NAME} rewritten")

    def _recover_manifest(self, scan: LogScan | None) -> dict[str, Any]:
        """Manifest fields as the records (and the snapshot meta) show them."""
        versions: list[str] = []
        models: Counter[tuple[str, int]] = Counter()
        visual_dims: set[int] = set()
        created: list[str] = []
        for record in scan.records if scan else []:
            entry = record.data.get("entry")
            if isinstance(entry, dict):
                version = entry.get("schema_version")
                with contextlib.suppress(SchemaVersionError):
                    if isinstance(version, str):
                        parse_version(version)
                        versions.append(version)
                if isinstance(entry.get("visual_embedding"), list):
                    visual_dims.add(len(entry["visual_embedding"]))
                if isinstance(entry.get("created_at"), str):
                    created.append(entry["created_at"])
            vector = record.data.get("text_embedding")
            if isinstance(vector, dict) and isinstance(vector.get("model"), str):
                dim = vector.get("dim")
                models[(vector["model"], dim if type(dim) is int else 0)] += 1
        meta = self.snapshot[1] if self.snapshot else {}
        if not versions and isinstance(meta.get("schema_version"), str):
            versions.append(meta["schema_version"])
        manifest = self._new_manifest()
        manifest["schema_version"] = max(versions, key=parse_version, default=SCHEMA_VERSION)
        if created:
            manifest["created_at"] = min(created)
        manifest["recovered_at"] = datetime.now(UTC).isoformat()
        if models:
            (model, dim), _ = models.most_common(1)[0]
            manifest["text_model"], manifest["text_dim"] = model, dim
        elif isinstance(meta.get("text_model"), str):
            manifest["text_model"] = meta["text_model"]
            manifest["text_dim"] = meta.get("text_dim")
        wanted_dim = self._manifest_extra.get("visual_dim")
        if visual_dims and visual_dims != {wanted_dim}:
            manifest["visual_descriptor"] = "unknown (recovered manifest)"
            manifest["visual_dim"] = sorted(visual_dims)[0]
        return manifest

    # -- acknowledgements --------------------------------------------------------------------

    def _read_ack(self) -> _AckFile:
        path = self.path / ACK_NAME
        try:
            raw = _read_regular(path, "it records the last acknowledged record")
        except StoreUnreadableError as exc:
            return _AckFile([None, None], exists=True, intact=False, problem=str(exc))
        if raw is None:
            return _AckFile([None, None], exists=False, intact=False)
        slots = [_decode_ack_slot(raw[i * _ACK_SLOT : (i + 1) * _ACK_SLOT]) for i in (0, 1)]
        intact = len(raw) == 2 * _ACK_SLOT and all(slots)
        return _AckFile(slots, exists=True, intact=intact)

    def _watermark(self, ack: _AckFile, scan: LogScan | None) -> Watermark:
        valid = [slot for slot in ack.slots if slot is not None]
        if ack.intact:
            seq, crc = max(valid, key=lambda slot: slot[0])
            return Watermark(seq, crc, exact=True, source=ACK_NAME)
        if ack.problem:
            problem = ack.problem
        elif ack.exists:
            problem = f"{ACK_NAME} is damaged"
        elif self.manifest.get("ack_file"):
            problem = f"{ACK_NAME} is missing"
        else:
            problem = f"{ACK_NAME} does not exist yet (a knowledge base from an older version)"
        seq, crc = max(valid, key=lambda slot: slot[0]) if valid else (-1, None)
        source = ACK_NAME if valid else "none"
        meta = self._trusted_meta(scan)
        if meta is not None and meta[0] > seq:
            seq, crc, source = meta[0], meta[1], INDEX_META_NAME
        return Watermark(seq, crc, exact=False, source=source, problem=problem)

    def _trusted_meta(self, scan: LogScan | None) -> tuple[int, int | None] | None:
        """(covered seq, crc) of an index meta whose own checksum verifies."""
        meta = self._meta_only
        if not isinstance(meta, dict) or "crc" not in meta:
            return None
        covered, crc = meta.get("covered_seq"), meta.get("covered_crc")
        if type(covered) is not int or covered < 0:
            return None
        return covered, crc if isinstance(crc, int) else None

    def _open_ack(self, ack: _AckFile) -> None:
        """Opens entries.ack for writing, first rewriting it if it is not exact and current."""
        last = (self._next_seq - 1, self._last_crc if self._next_seq else None)
        current = max((s for s in ack.slots if s), key=lambda s: s[0], default=None)
        if not ack.intact or current != last:
            try:
                atomic_write(self.path / ACK_NAME, _encode_ack_slot(*last) * 2)
            except OSError as exc:
                raise StoreUnreadableError(
                    f"cannot write {self.path / ACK_NAME} ({exc.strerror or exc}); the writer "
                    "records acknowledgements there. Move aside whatever is in its place and "
                    "check the directory's permissions."
                ) from exc
            if self.watermark.problem:
                self._note(
                    f"{ACK_NAME} rewritten: the last acknowledged record is now seq {last[0]}",
                    level=logging.INFO,
                )
            self._ack_slot = 0
        else:
            # Overwrite the older slot next, so the newest acknowledgement always survives.
            older = min(range(2), key=lambda i: ack.slots[i][0])  # type: ignore[index]
            self._ack_slot = older
        self._ack_fd = os.open(self.path / ACK_NAME, os.O_RDWR)
        self.watermark = Watermark(last[0], last[1], exact=True, source=ACK_NAME)

    def _acknowledge(self, seq: int, crc: int | None) -> None:
        assert self._ack_fd is not None
        os.pwrite(self._ack_fd, _encode_ack_slot(seq, crc), self._ack_slot * _ACK_SLOT)
        os.fdatasync(self._ack_fd)
        self._ack_slot ^= 1

    # -- reading -----------------------------------------------------------------------------

    def _read_log(self) -> bytes | None:
        log_path = self.path / LOG_NAME
        data = _read_regular(log_path, "it is the knowledge base's only copy of its entries")
        if data is not None:
            self._inode = log_path.stat().st_ino
        return data

    def _read_snapshot(self) -> None:
        self.snapshot, self.snapshot_problem, self._meta_only = None, None, None
        index_path = self.path / INDEX_NAME
        meta_path = self.path / INDEX_META_NAME
        try:
            raw_meta = _read_regular(meta_path, "it describes the index snapshot")
            data = _read_regular(index_path, "it is the index snapshot")
        except StoreUnreadableError as exc:
            self.snapshot_problem = str(exc)
            return
        if raw_meta is None and data is None:
            return
        meta: Any = None
        if raw_meta is not None:
            try:
                meta = json.loads(raw_meta)
            except (ValueError, RecursionError) as exc:
                self.snapshot_problem = f"{INDEX_META_NAME} is not valid JSON ({str(exc)[:100]})"
                return
            if not isinstance(meta, dict):
                self.snapshot_problem = f"{INDEX_META_NAME} is not a JSON object"
                return
            if "crc" in meta and meta["crc"] != _fields_crc(meta):
                self.snapshot_problem = f"{INDEX_META_NAME} is damaged (checksum mismatch)"
                return
            if "crc" not in meta and set(meta) - _META_FIELDS:
                self.snapshot_problem = f"{INDEX_META_NAME} is damaged (unknown fields)"
                return
        if meta is None:
            self.snapshot_problem = f"{INDEX_META_NAME} is missing"
            return
        self._meta_only = meta
        if data is None:
            self.snapshot_problem = f"{INDEX_NAME} is missing"
            return
        if hashlib.sha256(data).hexdigest() != meta.get("index_sha256"):
            self.snapshot_problem = (
                f"{INDEX_NAME} does not match the checksum in {INDEX_META_NAME} (damaged or "
                "half-replaced)"
            )
            return
        self.snapshot = (data, meta)

    def read_snapshot(self) -> tuple[bytes, dict[str, Any]] | None:
        """The snapshot if both files exist and agree, else None (`snapshot_problem` says why)."""
        self._read_snapshot()
        return self.snapshot

    def _replay(self, data: bytes | None, scan: LogScan | None) -> list[LogRecord]:
        log_path = self.path / LOG_NAME
        if data is None or scan is None:
            # The markers a repair writes for a deleted log continue the sequence: later
            # appends must number after them (they once restarted at seq 0, a duplicate).
            records = self._replay_missing_log()
            self._advance(records)
            return records
        analysis = analyze(scan, self.watermark)
        self._fill_report(scan, analysis)
        if analysis.conflicts:
            raise CorruptStoreError(
                f"{log_path}: seq {_ranges(analysis.conflicts)} appear(s) in two different "
                "records; the log was edited or two logs were concatenated, so which one was "
                "acknowledged cannot be told. Nothing was changed; restore the file from a backup."
            )
        if analysis.ack_mismatch:
            message = (
                f"{log_path}: record {self.watermark.seq} is not the one {ACK_NAME} says was "
                "acknowledged (its checksum differs); the log was replaced by another copy"
            )
            if self._on_corrupt == "error":
                raise CorruptStoreError(
                    message + ". Nothing was changed; restore the right log, or run `corrigible "
                    "kb repair` to accept this one."
                )
            self._note(message + "; accepted (on_corrupt='skip')")
        if analysis.lost and self._on_corrupt == "error":
            raise LostRecordsError(
                f"{log_path}: {describe_loss(analysis)}. This is damage to the file, not a "
                "crash: every acknowledged record was complete and fsynced. Nothing was "
                "changed. `corrigible kb check` lists the damage; `corrigible kb repair` (or "
                "on_corrupt='skip') keeps every intact record, moves the damaged bytes to "
                f"{LOG_NAME}.corrupt-damaged-* and marks each lost seq.",
                damaged=[f.seq for f in analysis.damaged if f.seq is not None],
                missing=analysis.missing,
            )
        if self._on_corrupt == "skip" and not self.read_only:
            records = self._rewrite_if_needed(data, scan, analysis)
        else:
            records = self._keep_in_place(data, scan, analysis)
        self._advance(records)
        return records

    def _fill_report(self, scan: LogScan, analysis: LogAnalysis) -> None:
        report = self.report
        report.damaged = [
            {"seq": f.seq, "line": f.line, "bytes": f.stop - f.start}
            for f in analysis.damaged
            if f.seq is not None
        ]
        report.missing = list(analysis.missing)
        report.junk_lines = sorted({f.line for f in analysis.junk})
        report.skipped_lines = sorted({f.line for f in analysis.damaged + analysis.junk})
        report.duplicates = analysis.duplicates
        report.reordered = analysis.reordered
        report.unacknowledged = list(analysis.unacknowledged)
        report.lost_markers = [
            {"seq": r.seq, **{k: v for k, v in r.data.items() if k not in ("seq", "op")}}
            for r in analysis.records
            if r.op == "lost"
        ]
        notes = report.format_notes
        if scan.crlf:
            notes.append(f"{scan.crlf} line(s) end with CRLF")
        if scan.cr:
            notes.append(f"{scan.cr} line(s) end with a lone CR")
        if scan.bom:
            notes.append("a byte-order mark precedes a record")
        if scan.padded:
            notes.append(f"{scan.padded} line(s) have whitespace around their record")
        if scan.blank:
            notes.append(f"{scan.blank} blank line(s)")
        if scan.unterminated and not analysis.torn:
            notes.append("the last record has no newline after it")
        if notes:
            self._note(
                f"{LOG_NAME} was reformatted ({'; '.join(notes)}); every record was read as "
                "written",
                level=logging.INFO,
            )
        if analysis.duplicates or analysis.reordered:
            what = []
            if analysis.duplicates:
                what.append(f"{analysis.duplicates} duplicated record line(s)")
            if analysis.reordered:
                what.append("records out of seq order")
            self._note(
                f"{LOG_NAME} has {' and '.join(what)} (the file was edited or damaged); every "
                "record is intact and was applied once, in seq order"
            )
        if analysis.unacknowledged:
            self._note(
                f"record(s) {_ranges(analysis.unacknowledged)} were written but not yet "
                "acknowledged when the writer stopped (a crash between the write and the "
                "acknowledgement); they are complete and kept",
                level=logging.INFO,
            )
        if self.watermark.problem:
            damaged = bool(self.manifest.get("ack_file"))
            self._note(
                f"{self.watermark.problem}: records after seq {self.watermark.seq} cannot be "
                "confirmed as acknowledged or not, so a loss at the very end of the log would go "
                "unnoticed" + ("" if self.read_only else "; the writer rewrites it now"),
                level=logging.WARNING if damaged else logging.INFO,
            )

    def _keep_in_place(self, data: bytes, scan: LogScan, analysis: LogAnalysis) -> list[LogRecord]:
        """Default mode (and readers): no acknowledged record is lost; drop only a bad tail."""
        records = analysis.records
        middle = [f for f in analysis.junk if f not in analysis.tail_junk]
        if middle:
            lines = ", ".join(str(line) for line in sorted({f.line for f in middle})[:10])
            self._note(
                f"{LOG_NAME} line(s) {lines} hold damaged bytes that are no acknowledged record "
                "(every seq is accounted for); they were ignored. `corrigible kb repair` moves "
                "them to a .corrupt-damaged file."
            )
        self._size = len(data)
        if analysis.cut is not None:
            tail = data[analysis.cut :]
            if analysis.unconfirmed:
                self.report.unconfirmed_tail_bytes = len(tail)
                message = (
                    f"{LOG_NAME} ends with {len(tail)} byte(s) that are not a valid record, and "
                    f"{self.watermark.problem}, so whether they held an acknowledged record "
                    "cannot be told (a write interrupted by a crash, or damage)"
                )
                what = "unconfirmed"
            elif analysis.tail_junk:
                message = (
                    f"{LOG_NAME} ends with {len(tail)} damaged byte(s) after the last record; "
                    "they hold no acknowledged record (every acknowledged record is intact)"
                )
                what = "damaged"
            else:
                self.report.torn_tail_bytes = len(tail)
                message = (
                    f"{LOG_NAME} ends with {len(tail)} byte(s) of an incomplete or damaged record "
                    f"after the last acknowledged one (seq {self.watermark.seq}): a write "
                    "interrupted by a crash; it was never acknowledged"
                )
                what = "tail"
            if self.read_only:
                self._size = analysis.cut
                self._note(message + "; ignored (read-only)", level=logging.INFO)
            else:
                backup = self._backup(tail, what)
                self._truncate(analysis.cut)
                self._size = analysis.cut
                self._note(message + f"; removed, bytes saved to {backup.name}")
        if not self.read_only and records:
            self._terminate_last_line(data[: self._size])
        self._line_count = len(_LINE_END.findall(data, 0, self._size))
        return records

    def _truncate(self, size: int) -> None:
        with open(self.path / LOG_NAME, "r+b") as handle:
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())

    def _terminate_last_line(self, data: bytes) -> None:
        """Adds a newline after a last record that lacks one, so appends start a new line."""
        content = data.rstrip(_BLANK)
        if content and not any(ch in b"\r\n" for ch in data[len(content) :]):
            with open(self.path / LOG_NAME, "ab") as handle:
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._size = len(data) + 1

    def _rewrite_if_needed(
        self, data: bytes, scan: LogScan, analysis: LogAnalysis, *, force: bool = False
    ) -> list[LogRecord]:
        """Repair (writers, on_corrupt="skip"): the log rewritten with every intact record.

        Intact records keep their bytes; each lost acknowledged seq gets a "lost" marker record
        naming its cause and the quarantine file, so later opens see a complete sequence and
        the loss stays visible. Damaged bytes go to `.corrupt-damaged-*`, a torn tail to
        `.corrupt-tail-*`, bytes of unknown status to `.corrupt-unconfirmed-*`, first.
        """
        backups: dict[str, Path] = {}
        for what, fragments in (
            ("damaged", analysis.damaged + analysis.junk),
            ("tail", analysis.torn),
            ("unconfirmed", analysis.unconfirmed),
        ):
            # Whole damaged lines, exactly as they were (a line holding a salvaged record too
            # is kept whole: the record's bytes also stay in the log).
            spans = sorted(
                {f.line_span if f.line_span[1] else (f.start, f.stop) for f in fragments}
            )
            if spans:
                backups[what] = self._backup(b"".join(data[a:b] for a, b in spans), what)
        causes = {f.seq: ("damaged", f.line) for f in analysis.damaged if f.seq is not None}
        causes.update({seq: ("missing", 0) for seq in analysis.missing})
        by_seq = {record.seq: record for record in analysis.records}
        top = max([*by_seq, *causes], default=-1)
        chunks: list[bytes] = []
        rebuilt: list[LogRecord] = []
        offset = 0
        for seq in range(top + 1):
            if seq in by_seq:
                record = by_seq[seq]
                line = data[record.start : record.stop] + b"\n"
            else:
                cause, line_no = causes.get(seq, ("missing", 0))
                marker: dict[str, Any] = {"seq": seq, "op": "lost", "cause": cause}
                if line_no:
                    marker["line"] = line_no
                if cause == "damaged" and "damaged" in backups:
                    marker["backup"] = backups["damaged"].name
                line = encode_record(marker)
                crc = zlib.crc32(line[_HEADER_LEN:-2])
                record = LogRecord(seq, "lost", marker, crc, 0)
            record = LogRecord(record.seq, record.op, record.data, record.crc,
                               offset + len(line), len(rebuilt) + 1, offset,
                               offset + len(line) - 1)  # fmt: skip
            offset += len(line)
            chunks.append(line)
            rebuilt.append(record)
        canonical = b"".join(chunks)
        self._size = len(canonical)
        self._line_count = len(rebuilt)
        if canonical == data and not force:
            return rebuilt
        atomic_write(self.path / LOG_NAME, canonical)
        self._inode = (self.path / LOG_NAME).stat().st_ino
        self.report.torn_tail_bytes = sum(f.stop - f.start for f in analysis.torn)
        self.report.unconfirmed_tail_bytes = sum(f.stop - f.start for f in analysis.unconfirmed)
        parts: list[str] = []
        if analysis.lost:
            parts.append(describe_loss(analysis) + "; each lost seq now holds a 'lost' marker")
        if analysis.junk:
            parts.append(f"{len(analysis.junk)} damaged fragment(s) holding no record removed")
        if analysis.torn:
            parts.append(
                f"{self.report.torn_tail_bytes} byte(s) of a torn final write (never "
                "acknowledged) removed"
            )
        if analysis.unconfirmed:
            parts.append(
                f"{self.report.unconfirmed_tail_bytes} byte(s) at the end of unknown "
                "acknowledgement removed"
            )
        if analysis.duplicates or analysis.reordered:
            parts.append("records put back in seq order, once each")
        if self.report.format_notes:
            parts.append("line endings normalised")
        saved = ", ".join(sorted(p.name for p in backups.values()))
        self._note(
            f"repaired {LOG_NAME}: "
            + "; ".join(parts or ["rewritten"])
            + f"; {len(analysis.records)} intact record(s) kept"
            + (f"; removed bytes saved to {saved}" if saved else "")
        )
        return rebuilt

    def _replay_missing_log(self) -> list[LogRecord]:
        """No entries.jsonl: an error when anything was ever acknowledged."""
        log_path = self.path / LOG_NAME
        evidence: list[str] = []
        if self.watermark.seq >= 0:
            evidence.append(
                f"{self.watermark.source} records seq 0..{self.watermark.seq} as acknowledged"
            )
        elif not self.watermark.exact and self.manifest.get("ack_file"):
            evidence.append(f"{ACK_NAME} is missing or damaged too")
        if self.snapshot is not None or self.snapshot_problem or self._meta_only is not None:
            evidence.append("an index snapshot exists")
        if not evidence:  # a directory whose log was never written (or created empty)
            self._size = 0
            return []
        if self.watermark.seq > _MAX_MISSING:
            raise CorruptStoreError(
                f"{log_path} is missing and {self.watermark.source} claims seq "
                f"{self.watermark.seq}; no knowledge base is that large, so the files were "
                "edited. Nothing was changed; restore them from a backup."
            )
        lost = list(range(self.watermark.seq + 1))
        self.report.missing = lost
        count = f"{len(lost)}" if self.watermark.exact else f"at least {len(lost)}"
        message = (
            f"{log_path} is missing, but {' and '.join(evidence)}: the knowledge base's only "
            f"copy of its entries ({count} acknowledged record(s)) was deleted or moved"
        )
        if self._on_corrupt == "error":
            raise LostRecordsError(
                message + ". Nothing was changed. Restore entries.jsonl from a backup; if it is "
                "lost for good, `corrigible kb repair` starts a new log that records the loss.",
                damaged=[],
                missing=lost,
            )
        if self.read_only:
            self._note(message + " (read-only: nothing was written)")
            return []
        analysis = analyze(LogScan(), self.watermark)
        records = self._rewrite_if_needed(b"", LogScan(), analysis, force=True)
        self._note(message + f"; a new log marks {len(lost)} lost record(s)")
        return records

    def _backup(self, data: bytes, what: str, *, name: str = LOG_NAME) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        kind = f"{what}-" if what else ""
        backup = self.path / f"{name}.corrupt-{kind}{stamp}-{uuid.uuid4().hex[:6]}"
        with open(backup, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(self.path)
        self.report.backup = backup
        self.report.backups.append(backup)
        return backup

    def _advance(self, records: list[LogRecord]) -> None:
        if records:
            self._next_seq = records[-1].seq + 1
            self._last_crc = records[-1].crc
        self.report.records += len(records)

    def read_new(self) -> list[LogRecord]:
        """Records appended since the last read (for read-only stores following a writer).

        An incomplete final line is left for the next call: the writer may be mid-append.
        """
        self._check_open()
        log_path = self.path / LOG_NAME
        try:
            handle = open(log_path, "rb")
        except FileNotFoundError as exc:
            raise CorruptStoreError(
                f"{log_path} disappeared since this read-only handle opened it; restore it, "
                "then reopen the knowledge base."
            ) from exc
        with handle:
            inode = os.fstat(handle.fileno()).st_ino
            if self._inode is not None and inode != self._inode:
                raise CorruptStoreError(
                    f"{log_path} was replaced (a writer repaired it) since this read-only handle "
                    "opened it; close and reopen the knowledge base to read the repaired log."
                )
            self._inode = inode
            handle.seek(self._size)
            data = handle.read()
        complete = data.rfind(b"\n") + 1  # the writer ends every record with LF
        scan = scan_log(data[:complete], offset=self._size, first_line=self._line_count + 1)
        last_stop = max((r.stop for r in scan.records), default=-1)
        bad = [f.line for f in scan.fragments if f.start < last_stop]
        if bad:
            raise CorruptStoreError(
                f"{log_path} has damaged record(s) at line(s) {bad[:10]} followed by valid "
                "records; reopen the knowledge base to see the full report."
            )
        # Damaged or partial lines at the end may be a write in progress: read them again later.
        records = scan.records
        consumed = max((r.end for r in records), default=self._size)
        if not scan.fragments:
            consumed = self._size + complete
        self._check_sequence(records)
        self._line_count += len(_LINE_END.findall(data, 0, consumed - self._size))
        self._advance(records)
        self._size = consumed
        return records

    def _check_sequence(self, records: list[LogRecord]) -> None:
        """Refuses new records that do not continue the sequence (read-only followers)."""
        expected = self._next_seq
        for record in records:
            if record.seq != expected:
                raise CorruptStoreError(
                    f"{self.path / LOG_NAME}: record seq {record.seq} follows seq {expected - 1}"
                    "; reopen the knowledge base to see the full report."
                )
            expected += 1

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
        """Appends records (each without "seq") durably: `write` then `sync`, one fsync.

        After the log's fsync the last seq and crc go to entries.ack (fsynced too), so a later
        open can tell damage to an acknowledged record from a write a crash cut short.

        Args:
            records: record dicts with "op" and their payload.

        Returns:
            The records as stored, with their seq numbers.

        Raises:
            ReadOnlyError: the store is read-only.
            OSError: the write, an fsync or the acknowledgement failed; the log is rolled back
                to its last durable length, so no partial record stays behind and nothing was
                acknowledged.
        """
        pending = self.write(records)
        self.sync(pending)
        return pending.records

    def write(self, records: list[dict[str, Any]], *, track: bool = False) -> PendingCommit:
        """First half of a commit: numbers the records and writes them, without an fsync.

        They are not acknowledged yet: pass the result to `sync`, which returns once they are
        durable. Writes are serialised (one `os.write` of whole records on an O_APPEND
        descriptor, looping on short writes), so records of concurrent callers never interleave.
        With `track`, the records are also queued for `take_durable`, which hands them out in
        seq order once they are durable (how the knowledge base applies group commits).

        Raises:
            ReadOnlyError: the store is read-only.
            OSError: the write failed; its bytes are truncated away again.
        """
        self._check_writable()
        assert self._log_fd is not None
        with self._io_lock:
            stored: list[LogRecord] = []
            chunks: list[bytes] = []
            offset = self._size
            for i, payload in enumerate(records):
                rec = {"seq": self._next_seq + i, **payload}
                line = encode_record(rec)
                decoded = decode_record(line[:-1])
                assert decoded is not None
                stored.append(
                    LogRecord(rec["seq"], rec["op"], rec, decoded[1], offset + len(line),
                              self._line_count + i + 1, offset, offset + len(line) - 1)
                )  # fmt: skip
                offset += len(line)
                chunks.append(line)
            if not stored:
                return PendingCommit([], self._epoch)
            data = b"".join(chunks)
            try:
                written = 0
                while written < len(data):
                    written += os.write(self._log_fd, data[written:])
            except OSError:
                # Roll back a partial append so the next record does not land after garbage.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._log_fd, self._size)
                raise
            self._size = offset
            self._line_count += len(stored)
            self._next_seq = stored[-1].seq + 1
            self._last_crc = stored[-1].crc
            if track:
                self._unapplied.extend(stored)
            return PendingCommit(stored, self._epoch)

    def take_durable(self) -> list[LogRecord]:
        """Tracked records (`write(track=True)`) that are durable now, in seq order, each once."""
        durable = self.durable_seq
        with self._io_lock:
            taken: list[LogRecord] = []
            while self._unapplied and self._unapplied[0].seq <= durable:
                taken.append(self._unapplied.popleft())
            return taken

    def sync(self, pending: PendingCommit) -> None:
        """Second half of a commit: returns once `pending`'s records are durable and acknowledged.

        Group commit: the first caller to find no fsync in flight becomes the leader; it fsyncs
        the log (covering every record written so far, its own and other callers'), writes the
        last of them to entries.ack and fdatasyncs that; callers that arrive meanwhile wait and
        are covered by that fsync or by the next one. So N concurrent commits cost about two
        fsyncs in all rather than 2N, and no caller returns before its own records are durable.

        Raises:
            OSError: the fsync or the acknowledgement failed. The log is truncated back to the
                last acknowledged record, every commit not yet acknowledged fails with this
                error (none of them is acknowledged), and later writes start again from there.
        """
        if not pending.records:
            return
        last = pending.records[-1].seq
        with self._sync_cond:
            while True:
                if pending.epoch != self._epoch:
                    raise OSError(
                        f"the group commit holding record {last} failed ({self._failure}); it "
                        "was not acknowledged and the log was rolled back"
                    )
                if self._durable[0] >= last:
                    return
                if not self._syncing:
                    self._syncing = True
                    break
                self._sync_cond.wait()
        # The leader: one fsync for everything written so far.
        try:
            with self._io_lock:
                target = (self._next_seq - 1, self._last_crc, self._size, self._line_count)
            self._check_open()
            assert self._log_fd is not None
            os.fsync(self._log_fd)
            self._acknowledge(target[0], target[1])
        except (OSError, KnowledgeBaseClosedError) as exc:
            self._roll_back(exc)
            raise
        with self._sync_cond:
            count = target[0] - self._durable[0]
            self._durable = target
            self.watermark = Watermark(target[0], target[1], exact=True, source=ACK_NAME)
            self.commit_stats["fsyncs"] += 1
            self.commit_stats["records"] += count
            self.commit_stats["largest_group"] = max(self.commit_stats["largest_group"], count)
            self._syncing = False
            self._sync_cond.notify_all()

    def _roll_back(self, exc: BaseException) -> None:
        """After a failed group commit: the log and entries.ack back to the last durable record."""
        seq, crc, size, lines = self._durable
        with self._io_lock:
            if self._log_fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._log_fd, size)
                    os.fsync(self._log_fd)
            if self._ack_fd is not None:
                # The slot being overwritten may hold the failed acknowledgement: put the last
                # good one back (the other slot is untouched).
                with contextlib.suppress(OSError):
                    os.pwrite(self._ack_fd, _encode_ack_slot(seq, crc), self._ack_slot * _ACK_SLOT)
                    os.fdatasync(self._ack_fd)
            self._size, self._line_count = size, lines
            self._next_seq, self._last_crc = seq + 1, crc
            # Tracked records after the durable point were truncated away: never apply them.
            while self._unapplied and self._unapplied[-1].seq > seq:
                self._unapplied.pop()
        with self._sync_cond:
            self._epoch += 1
            self._failure = exc
            self._syncing = False
            self._sync_cond.notify_all()

    def flush(self) -> None:
        """Returns once every record written so far is durable (or raises as `sync` does)."""
        with self._io_lock:
            if self._next_seq - 1 <= self._durable[0]:
                return
            last = LogRecord(self._next_seq - 1, "", {}, self._last_crc or 0, self._size)
            epoch = self._epoch
        self.sync(PendingCommit([last], epoch))

    @property
    def durable_seq(self) -> int:
        """The last acknowledged (durable) record's seq; -1 when none."""
        return self._durable[0]

    # -- snapshot ----------------------------------------------------------------------------

    def write_snapshot(
        self,
        index_bytes: bytes,
        meta: dict[str, Any],
        covered: tuple[int, int | None] | None = None,
    ) -> None:
        """Writes index.faiss and index.meta.json atomically; meta covers `covered`.

        `covered` is the (seq, crc) of the last record the index holds (default: the last
        acknowledged one); it must be acknowledged, since a reader falls back on it when
        entries.ack is damaged.

        The meta records the sha256 of the index bytes, so a reader that catches the two files
        from different snapshots notices and rebuilds instead of trusting a mismatch, and a
        checksum of its own fields, so damage to the meta is noticed too.
        """
        self._check_writable()
        seq, crc = covered if covered is not None else self._durable[:2]
        if seq > self._durable[0]:
            raise ValueError(f"a snapshot cannot cover unacknowledged record {seq}")
        meta = {
            **meta,
            "covered_seq": seq,
            "covered_crc": crc,
            "index_sha256": hashlib.sha256(index_bytes).hexdigest(),
            "schema_version": SCHEMA_VERSION,
            "written_at": datetime.now(UTC).isoformat(),
        }
        atomic_write(self.path / INDEX_NAME, index_bytes)
        atomic_write(self.path / INDEX_META_NAME, checksummed_json(meta))
