"""The knowledge base: durable distilled knowledge with hybrid text + appearance retrieval.

Example:
    from corrigible.memory import KnowledgeBase, KnowledgeEntry, ObjectScope, Provenance

    with KnowledgeBase.open("runs/kb") as kb:
        kb.add(KnowledgeEntry(
            kind="skill_params", skill="pick", params={"grasp_height": -0.01, "speed": 0.05},
            text="grasp slippery red cylinders lower and lift slowly",
            scope=ObjectScope(color="red", shape="cylinder"),
            provenance=[Provenance(episode="ep-3", correction_texts=["lower, it slips"])],
        ))
        for hit in kb.search("pick up the red cylinder", k=3):
            print(hit.score, hit.entry.text, hit.reason)

`KnowledgeBase` is the small abstract interface the planner and the correction handler program
against; `KnowledgeBase.open` returns the FAISS implementation, `FaissKnowledgeBase`, backed by a
crash-safe directory (`store.LogStore`) or, with `path=None`, by memory only.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import functools
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from corrigible.errors import (
    ConfigError,
    CorruptStoreError,
    IndexFormatError,
    KnowledgeBaseClosedError,
    ReadOnlyError,
    UnknownEntryError,
    did_you_mean,
)
from corrigible.memory.index import VectorIndex
from corrigible.memory.schema import (
    ENTRY_KINDS,
    KnowledgeEntry,
    lenient_context,
    migrate_entry,
)
from corrigible.memory.store import (
    LogRecord,
    LogStore,
    OnCorrupt,
    PendingCommit,
    ReplayReport,
    atomic_write,
)
from corrigible.memory.visual_embedder import DESCRIPTOR_DIM, DESCRIPTOR_NAME, compare
from corrigible.text_embedding import TextEmbedder, get_text_embedder

_LOG = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


def _reads(method: _F) -> _F:
    """Runs a read under the lock, after checking the handle is open and catching up.

    Read-only handles first apply what the writer appended since (`auto_refresh`).
    """

    @functools.wraps(method)
    def wrapper(self: FaissKnowledgeBase, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._check_open()
            if self.read_only and self.config.auto_refresh:
                self._refresh_locked()
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _writes(method: _F) -> _F:
    """Runs a write under the lock, after checking the handle is open and writable."""

    @functools.wraps(method)
    def wrapper(self: FaissKnowledgeBase, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._check_open()
            if self.read_only:
                raise ReadOnlyError(
                    f"the knowledge base at {self.path} is open read-only; open it with "
                    "read_only=False (one writer at a time) to change it"
                )
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


SearchMode = Literal["text", "text+visual", "visual"]
SEARCH_MODES: tuple[str, ...] = ("text", "text+visual", "visual")


class KnowledgeBaseConfig(BaseModel):
    """Retrieval thresholds and storage knobs; every field is validated on construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Cosine similarity (MiniLM) a query needs to an entry's text. 0.40 keeps paraphrases
    # ("pick the slippery red cylinder" vs "grasp slippery red cylinders lower": 0.68) and drops
    # unrelated tasks ("open the drawer" vs "grasp the red block lower": 0.33).
    text_threshold: float = Field(default=0.40, ge=-1.0, le=1.0)
    # Appearance score (minimum per-group cosine of visual_embedder.compare) a crop needs to an
    # entry's stored crop. Same object, new pose: >= 0.83; red cube vs red cylinder: <= 0.41.
    visual_threshold: float = Field(default=0.75, ge=-1.0, le=1.0)
    # Weight of appearance in the ranking score (1 - w) * text + w * visual, text+visual mode.
    visual_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    # Candidates fetched from FAISS per round before filtering (grows x4 until k are found).
    candidate_pool: int = Field(default=64, ge=1)
    # Exact IndexFlatIP below this many entries, HNSW above (0 = always exact). Exact search
    # costs about 0.5 ms at 20k x 384 on one core but 9 ms at 100k; HNSW measured 0.44 ms at
    # 100k and 1.75 ms at 1M with recall@10 >= 0.98 (`corrigible bench kb`).
    hnsw_threshold: int = Field(default=20_000, ge=0)
    # HNSW search breadth (candidates visited per query; higher: better recall, slower).
    # None: by size, 64 below 250k entries, 128 below 750k, 256 above (memory/index.py).
    hnsw_ef_search: int | None = Field(default=None, ge=1)
    # On an HNSW index, a filtered search whose candidate pool would grow past this many
    # switches to an exact scan, so kind/skill filters that reject most entries still find
    # every match (recall of a filtered search never depends on the graph).
    exact_fallback_pool: int = Field(default=4096, ge=1)
    # Write a fresh index snapshot after this many log records, or after a tenth of the index,
    # whichever is more (0 = only on close): a snapshot of a 1M-entry index is 1.6 GB.
    snapshot_every: int = Field(default=1000, ge=0)
    # "error": refuse a log damaged mid-way; "skip": keep every valid record and report.
    on_corrupt: Literal["error", "skip"] = "error"
    # Seconds a writer waits for another writer's lock before StoreLockedError.
    lock_timeout_s: float = Field(default=0.0, ge=0.0)
    # Read-only handles pick up the writer's new records before every read call.
    auto_refresh: bool = True

    @field_validator("on_corrupt", mode="before")
    @classmethod
    def _check_on_corrupt(cls, value: Any) -> Any:
        if value not in ("error", "skip"):
            raise ValueError(f"on_corrupt must be 'error' or 'skip', got {value!r}")
        return value


@dataclass(frozen=True)
class RetrievalHit:
    """One retrieved entry and why it was (or, with include_rejected, was not) retrieved."""

    entry: KnowledgeEntry
    score: float  # ranking score: text, or (1 - w) * text + w * visual
    text_score: float | None  # cosine of the query text to the entry text
    visual_score: float | None  # appearance score, None without a query crop or stored crop
    reason: str  # human-readable why, for the execution trace
    accepted: bool = True  # False only for rejected candidates (include_rejected=True)
    visual_detail: dict[str, float | None] | None = None  # per-group appearance cosines

    def to_trace(self) -> dict[str, Any]:
        """A JSON-able summary for the planner's trace."""
        return {
            "entry_id": self.entry.id,
            "kind": self.entry.kind,
            "text": self.entry.text,
            "score": round(self.score, 4),
            "text_score": None if self.text_score is None else round(self.text_score, 4),
            "visual_score": None if self.visual_score is None else round(self.visual_score, 4),
            "accepted": self.accepted,
            "confidence": round(self.entry.confidence, 4),
            "reason": self.reason,
        }


class KnowledgeBase(abc.ABC):
    """Distilled knowledge the robot consults before acting.

    Subclasses implement storage and retrieval; callers use `KnowledgeBase.open` and the methods
    below, and close it (or use it as a context manager) when done.
    """

    # Every implementation names itself; stored in traces so a reader knows which one answered.
    backend_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None) and not isinstance(
            getattr(cls, "backend_name", None), str
        ):
            raise TypeError(f"{cls.__name__} must set the class attribute backend_name: str")

    @staticmethod
    def open(
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        config: KnowledgeBaseConfig | None = None,
        text_embedder: TextEmbedder | None = None,
    ) -> FaissKnowledgeBase:
        """Opens (creating if needed) a knowledge base.

        Args:
            path: the directory; None keeps everything in memory (lost on close).
            read_only: share the directory with a running writer; writes raise ReadOnlyError.
            config: thresholds and storage knobs (defaults: `KnowledgeBaseConfig()`).
            text_embedder: defaults to the process-wide MiniLM embedder (loaded lazily).

        Returns:
            An open `FaissKnowledgeBase`.
        """
        return FaissKnowledgeBase(
            path, read_only=read_only, config=config, text_embedder=text_embedder
        )

    @abc.abstractmethod
    def add(self, entry: KnowledgeEntry) -> str:
        """Stores an entry; it is durable when this returns. Returns its id."""

    @abc.abstractmethod
    def get(self, entry_id: str) -> KnowledgeEntry:
        """The entry with this id (active or superseded); UnknownEntryError otherwise."""

    @abc.abstractmethod
    def list(self, kind: str | None = None, active_only: bool = True) -> Sequence[KnowledgeEntry]:
        """Entries in insertion order, optionally of one kind, optionally with superseded ones."""

    @abc.abstractmethod
    def delete(self, entry_id: str) -> None:
        """Removes an entry (a durable tombstone; its history stays in the log)."""

    @abc.abstractmethod
    def supersede(self, old_id: str, new_entry: KnowledgeEntry) -> str:
        """Replaces an active entry by a contradicting one, keeping both provenances."""

    @abc.abstractmethod
    def search(self, query_text: str, **kwargs: Any) -> Sequence[RetrievalHit]:
        """Entries relevant to a query, best first, each with a reason."""

    @abc.abstractmethod
    def export(self, path: str | Path) -> int:
        """Writes every entry as JSON lines; returns how many."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases files and locks; idempotent."""

    def __len__(self) -> int:
        return len(self.list())

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _decode_vector(text: str, dim: int) -> np.ndarray | None:
    try:
        vector = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4")
    except (ValueError, TypeError):
        return None
    if vector.shape != (dim,) or not np.isfinite(vector).all():
        return None
    return vector.astype(np.float32)


def _active_seqs(records: Iterable[LogRecord], upto: int) -> set[int]:
    """Index keys of the entries active after the records up to seq `upto`.

    That is what a snapshot covering `upto` must hold; mirrors `FaissKnowledgeBase._apply` on
    the raw records.
    """
    active: dict[str, int] = {}
    for record in records:
        if record.seq > upto:
            break
        data = record.data
        if record.op in ("add", "supersede"):
            entry = data.get("entry")
            if not isinstance(entry, dict):
                continue
            if record.op == "supersede":
                active.pop(str(data.get("old_id")), None)
            if entry.get("active", True) and entry.get("superseded_by") is None:
                active[str(entry.get("id"))] = record.seq
        elif record.op == "delete":
            active.pop(str(data.get("id")), None)
    return set(active.values())


@dataclass
class _State:
    """In-memory view of the log: what replaying every record produces."""

    entries: dict[str, KnowledgeEntry] = field(default_factory=dict)  # not deleted, by id
    seq_of: dict[str, int] = field(default_factory=dict)  # entry id -> index key
    id_of: dict[int, str] = field(default_factory=dict)  # index key -> entry id
    deleted: set[str] = field(default_factory=set)
    # Group commit: ids added, and ids deleted or superseded, by records written but not yet
    # durable (so a concurrent write cannot contradict them before they are applied).
    pending_ids: set[str] = field(default_factory=set)
    pending_gone: set[str] = field(default_factory=set)
    # Index keys of the active entries per kind and per skill: a filtered search over few
    # entries scores exactly those instead of paging through the whole index.
    keys_by_kind: dict[str, set[int]] = field(default_factory=dict)
    keys_by_skill: dict[str | None, set[int]] = field(default_factory=dict)

    def track(self, entry: KnowledgeEntry, key: int, *, active: bool) -> None:
        """Adds (or drops) an entry's key from the per-kind and per-skill sets."""
        for table, value in ((self.keys_by_kind, entry.kind), (self.keys_by_skill, entry.skill)):
            keys = table.setdefault(value, set())  # type: ignore[arg-type]
            if active:
                keys.add(key)
            else:
                keys.discard(key)


class FaissKnowledgeBase(KnowledgeBase):
    """The knowledge base on a `LogStore` directory with FAISS text and appearance indexes.

    Text vectors live in an exact (or, above `hnsw_threshold`, HNSW) FAISS index keyed by the
    seq of the record that created the entry; appearance vectors in a small exact index. Only
    active entries are indexed. See `KnowledgeBase.open` for the arguments.
    """

    backend_name = "faiss"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        config: KnowledgeBaseConfig | None = None,
        text_embedder: TextEmbedder | None = None,
    ) -> None:
        self.config = config or KnowledgeBaseConfig()
        self.path = None if path is None else Path(path)
        self.read_only = read_only
        self._embedder: TextEmbedder = text_embedder or get_text_embedder()
        self._lock = threading.RLock()
        self._state = _State()
        self._text_index = self._new_text_index()
        self._visual_index = VectorIndex(DESCRIPTOR_DIM, hnsw_threshold=0)
        self._records_since_snapshot = 0
        self._applied: tuple[int, int | None] = (-1, None)  # last record applied: seq, crc
        self._mem_seq = 0
        self._closed = False
        # What opening found about the index snapshot (see `_load_or_rebuild_index`).
        self.index_status: dict[str, Any] = {"snapshot": "none", "problem": None}
        self.open_report = ReplayReport()
        self._store: LogStore | None = None
        if self.path is None:
            if read_only:
                raise ConfigError("an in-memory knowledge base (path=None) cannot be read-only")
            return
        self._store = LogStore(
            self.path,
            read_only=read_only,
            on_corrupt=self.config.on_corrupt,
            lock_timeout_s=self.config.lock_timeout_s,
            manifest_extra={
                "text_model": self._embedder.name,
                "text_dim": self._embedder.dim,
                "visual_descriptor": DESCRIPTOR_NAME,
                "visual_dim": DESCRIPTOR_DIM,
            },
        )
        # The store reads the snapshot before the log: a writer only snapshots records that are
        # already in the log, so a reader racing it never sees a snapshot ahead of its log.
        records = self._store.open_and_replay()
        try:
            self.open_report = self._store.report
            self._check_manifest(self._store.manifest)
            self._apply_all(records)
            self._load_or_rebuild_index(records, self._store.snapshot)
        except BaseException:
            self._store.close()
            raise

    # -- opening -------------------------------------------------------------------------------

    def _new_text_index(self) -> VectorIndex:
        return VectorIndex(
            self._embedder.dim,
            hnsw_threshold=self.config.hnsw_threshold,
            ef_search=self.config.hnsw_ef_search,
        )

    def _check_manifest(self, manifest: dict[str, Any]) -> None:
        model = manifest.get("text_model", self._embedder.name)
        dim = manifest.get("text_dim", self._embedder.dim)
        if model != self._embedder.name or dim != self._embedder.dim:
            raise ConfigError(
                f"the knowledge base at {self.path} was built with text model {model!r} "
                f"({dim}-d) but this process embeds with {self._embedder.name!r} "
                f"({self._embedder.dim}-d); open it with the same embedder or export and "
                "re-import the entries."
            )
        descriptor = manifest.get("visual_descriptor", DESCRIPTOR_NAME)
        if descriptor != DESCRIPTOR_NAME:
            raise ConfigError(
                f"the knowledge base at {self.path} stores appearance as {descriptor!r}, this "
                f"code computes {DESCRIPTOR_NAME!r}; the crops must be re-embedded."
            )

    def _load_or_rebuild_index(
        self, records: list[LogRecord], snapshot: tuple[bytes, dict[str, Any]] | None
    ) -> None:
        """Loads the index snapshot if it matches the log, then brings it up to date.

        The snapshot names the last record it covers (seq and checksum). If that record is in
        the log, the snapshot is a true prefix: entries added since are indexed from the vectors
        stored in the log and entries deleted since are removed. Otherwise (missing, damaged,
        foreign or half-replaced snapshot) the index is rebuilt from the log, with a warning.
        """
        assert self._store is not None
        wanted = {self._state.seq_of[e.id] for e in self._state.entries.values() if e.active}
        index = None
        why = self._store.snapshot_problem or "no index snapshot yet"
        crc_of = {record.seq: record.crc for record in records}
        covered = None
        ahead = False  # the snapshot covers a record the log does not hold (as it was)
        if snapshot is not None:
            data, meta = snapshot
            covered = meta.get("covered_seq")
            if meta.get("text_model") != self._embedder.name:
                why = f"the snapshot was built with {meta.get('text_model')!r}"
            elif type(covered) is not int or (
                covered >= 0 and crc_of.get(covered) != meta.get("covered_crc")
            ):
                why = "the snapshot does not match the log (it covers records the log lacks)"
                ahead = True
            else:
                try:
                    index = VectorIndex.from_bytes(
                        data,
                        dim=self._embedder.dim,
                        hnsw_threshold=self.config.hnsw_threshold,
                        ef_search=self.config.hnsw_ef_search,
                    )
                except IndexFormatError as exc:
                    why = f"index.faiss is unreadable ({exc})"
            if index is not None:
                expected = _active_seqs(records, covered)
                held = set(index.ids().tolist())
                if held != expected:
                    why = (
                        f"index.faiss does not hold what the log says it covers ("
                        f"{len(held ^ expected)} entries differ)"
                    )
                    index = None
        rebuilt = index is None
        has_files = snapshot is not None or self._store.snapshot_problem is not None
        state = "damaged" if has_files else "none"
        self.index_status = {
            "snapshot": "ok" if not rebuilt else ("ahead-of-log" if ahead else state),
            "problem": why if rebuilt and has_files else None,
            "covered_seq": covered if not rebuilt else None,
        }
        if index is None:
            index = self._new_text_index()
            if records:
                message = f"rebuilding the text index from the log: {why}"
                _LOG.log(logging.WARNING if has_files else logging.INFO, message)
                self.open_report.messages.append(message)
        present = set(index.ids().tolist())
        stale = present - wanted
        missing = sorted(wanted - present)
        self.index_status["caught_up"] = 0 if rebuilt else len(stale) + len(missing)
        index.remove(stale)
        if missing:
            vectors = self._vectors_for(missing, records)
            index.add(missing, vectors)
        self._text_index = index
        for entry in self._state.entries.values():
            if entry.active and entry.visual_embedding is not None:
                self._visual_index.add(
                    [self._state.seq_of[entry.id]], np.asarray(entry.visual_embedding)
                )
        changed = rebuilt or stale or missing
        if changed and not self.read_only and records:
            self._write_snapshot()

    def _vectors_for(self, seqs: list[int], records: list[LogRecord]) -> np.ndarray:
        """Text vectors of the entries created by these records, re-embedding only if absent."""
        by_seq = {record.seq: record for record in records}
        vectors = np.zeros((len(seqs), self._embedder.dim), dtype=np.float32)
        to_embed: list[int] = []
        for row, seq in enumerate(seqs):
            stored = by_seq[seq].data.get("text_embedding")
            vector = None
            if isinstance(stored, dict) and stored.get("model") == self._embedder.name:
                vector = _decode_vector(str(stored.get("b64", "")), self._embedder.dim)
            if vector is None:
                to_embed.append(row)
            else:
                vectors[row] = vector
        if to_embed:
            message = f"re-embedding {len(to_embed)} entries whose log records hold no vector"
            _LOG.warning(message)
            self.open_report.messages.append(message)
            texts = [self._state.entries[self._state.id_of[seqs[row]]].text for row in to_embed]
            vectors[to_embed] = self._embedder.embed(texts)
        return vectors

    # -- applying records ------------------------------------------------------------------------

    def _apply_all(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            self._apply(record, index=False)

    def _parse_entry(self, raw: Any, seq: int) -> KnowledgeEntry:
        if not isinstance(raw, dict):
            raise CorruptStoreError(f"log record {seq} holds no entry object; the log is damaged")
        data = migrate_entry(raw)
        try:
            # Lenient: a newer minor version may carry optional fields this code does not know.
            return KnowledgeEntry.model_validate(data, context=lenient_context())
        except ValueError as exc:
            raise CorruptStoreError(
                f"log record {seq} holds an entry that does not validate ({exc}); the log was "
                "edited by hand or written by incompatible code. Nothing was changed."
            ) from exc

    def _apply(self, record: LogRecord, *, index: bool) -> KnowledgeEntry | None:
        """Applies one record to the in-memory state (and the indexes when `index`)."""
        self._applied = (record.seq, record.crc)
        state = self._state
        op = record.op
        if op == "add" or op == "supersede":
            entry = self._parse_entry(record.data.get("entry"), record.seq)
            if op == "supersede":
                old_id = str(record.data.get("old_id"))
                old = state.entries.get(old_id)
                if old is not None:
                    state.entries[old_id] = old.model_copy(
                        update={"active": False, "superseded_by": entry.id}
                    )
                    state.track(old, state.seq_of[old_id], active=False)
                    if index:
                        self._unindex(state.seq_of[old_id])
            if entry.id in state.entries:
                _LOG.warning("record %d re-adds entry %s; keeping the newer", record.seq, entry.id)
                state.track(state.entries[entry.id], state.seq_of[entry.id], active=False)
                if index:
                    self._unindex(state.seq_of[entry.id])
            state.entries[entry.id] = entry
            state.seq_of[entry.id] = record.seq
            state.id_of[record.seq] = entry.id
            if entry.active:
                state.track(entry, record.seq, active=True)
            if index and entry.active:
                self._index_entry(entry, record)
            return entry
        if op == "delete":
            entry_id = str(record.data.get("id"))
            if entry_id in state.entries:
                if index:
                    self._unindex(state.seq_of[entry_id])
                state.track(state.entries[entry_id], state.seq_of[entry_id], active=False)
                del state.entries[entry_id]
                state.deleted.add(entry_id)
            return None
        if op != "lost":  # "lost" marks a record a repair could not recover; already reported
            _LOG.warning(
                "ignoring log record %d with unknown op %r (newer writer?)", record.seq, op
            )
        return None

    def _index_entry(self, entry: KnowledgeEntry, record: LogRecord) -> None:
        vector = _decode_vector(
            str((record.data.get("text_embedding") or {}).get("b64", "")), self._embedder.dim
        )
        if vector is None:
            vector = self._embedder.embed([entry.text])[0]
        self._text_index.add([record.seq], vector)
        if entry.visual_embedding is not None:
            self._visual_index.add([record.seq], np.asarray(entry.visual_embedding))

    def _unindex(self, seq: int) -> None:
        self._text_index.remove([seq])
        self._visual_index.remove([seq])

    # -- lifecycle -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            where = "in-memory" if self.path is None else str(self.path)
            raise KnowledgeBaseClosedError(
                f"the knowledge base ({where}) is closed; open it again with KnowledgeBase.open"
            )

    def _refresh_locked(self) -> int:
        if self._store is None or not self.read_only:
            return 0
        records = self._store.read_new()
        for record in records:
            self._apply(record, index=True)
        return len(records)

    def _write_snapshot(self) -> None:
        """Snapshots the index as of the last applied record (always an acknowledged one)."""
        assert self._store is not None
        self._store.write_snapshot(
            self._text_index.to_bytes(),
            {
                "text_model": self._embedder.name,
                "text_dim": self._embedder.dim,
                "entries_indexed": len(self._text_index),
                "index_kind": self._text_index.kind,
            },
            covered=self._applied,
        )
        self._records_since_snapshot = 0

    @_writes
    def checkpoint(self) -> None:
        """Writes an index snapshot now, so the next open needs no catch-up."""
        if self._store is not None:
            self._write_snapshot()

    def close(self) -> None:
        """Writes a final index snapshot (writers) and releases the lock. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # no new writes from here; commits in flight finish below
        try:
            if self._store is not None and not self.read_only:
                self._flush_commits()
        except OSError as exc:  # their writers got the error too; nothing was acknowledged
            _LOG.warning("a group commit failed while closing: %s", exc)
        with self._lock:
            try:
                if self._store is not None and not self.read_only and self._records_since_snapshot:
                    try:
                        self._write_snapshot()
                    except OSError as exc:  # the log is the truth; a lost snapshot is rebuilt
                        _LOG.warning("could not write the index snapshot on close: %s", exc)
            finally:
                if self._store is not None:
                    self._store.close()

    @property
    def is_closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def __enter__(self) -> FaissKnowledgeBase:
        return self

    # -- writing -------------------------------------------------------------------------------

    def _validate_new(self, entry: KnowledgeEntry) -> None:
        if not isinstance(entry, KnowledgeEntry):
            raise ConfigError(f"expected a KnowledgeEntry, got {type(entry).__name__}")
        if (
            entry.id in self._state.entries
            or entry.id in self._state.deleted
            or entry.id in self._state.pending_ids
        ):
            raise ConfigError(
                f"an entry with id {entry.id} already exists (or existed); to replace it use "
                "supersede(old_id, new_entry), which keeps both provenances"
            )
        if not entry.active or entry.superseded_by is not None:
            raise ConfigError(
                f"new entry {entry.id} must be active with superseded_by=None; supersession is "
                "recorded by supersede()"
            )
        if entry.visual_embedding is not None and len(entry.visual_embedding) != DESCRIPTOR_DIM:
            raise ConfigError(
                f"entry {entry.id} has a visual_embedding of length "
                f"{len(entry.visual_embedding)}; {DESCRIPTOR_NAME} descriptors have "
                f"{DESCRIPTOR_DIM}. Compute it with memory.visual_embedder.embed_crop."
            )

    def _text_vectors(
        self, entries: Sequence[KnowledgeEntry], vectors: np.ndarray | None
    ) -> np.ndarray:
        if vectors is None:
            return self._embedder.embed([entry.text for entry in entries])
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(entries), -1)
        if vectors.shape[1] != self._embedder.dim or not np.isfinite(vectors).all():
            raise ConfigError(
                f"text embeddings must be finite with shape ({len(entries)}, "
                f"{self._embedder.dim}), got {vectors.shape}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms < 1e-8).any():
            raise ConfigError("a text embedding has zero norm")
        return vectors / norms

    def _payload(self, op: str, entry: KnowledgeEntry, vector: np.ndarray) -> dict[str, Any]:
        return {
            "op": op,
            "entry": entry.model_dump(mode="json"),
            "text_embedding": {
                "model": self._embedder.name,
                "dim": self._embedder.dim,
                "b64": _encode_vector(vector),
            },
        }

    def _begin(self, payloads: list[dict[str, Any]]) -> PendingCommit | None:
        """First half of a commit, under the lock: the records written, not yet durable.

        In memory there is nothing to make durable: the records are numbered and applied here
        and None is returned.
        """
        if self._store is not None:
            return self._store.write(payloads, track=True)
        for payload in payloads:
            rec = {"seq": self._mem_seq, **payload}
            self._apply(LogRecord(self._mem_seq, payload["op"], rec, 0, 0), index=True)
            self._mem_seq += 1
        return None

    def _finish(
        self, pending: PendingCommit | None, ids: Iterable[str], gone: Iterable[str]
    ) -> None:
        """Second half of a commit, without the lock: waits for the group fsync, then applies.

        Raises:
            OSError: the group commit failed; nothing of it was acknowledged or applied.
        """
        try:
            if pending is not None:
                assert self._store is not None
                self._store.sync(pending)  # shares its fsync with concurrent commits
                self._apply_durable()
        finally:
            with self._lock:
                self._state.pending_ids.difference_update(ids)
                self._state.pending_gone.difference_update(gone)

    def _apply_durable(self) -> None:
        """Applies every durable record not applied yet, in seq order (whoever wrote it)."""
        with self._lock:
            if self._store is None or self._store.is_closed:
                return
            records = self._store.take_durable()
            for record in records:
                self._apply(record, index=True)
            self._records_since_snapshot += len(records)
            every = self.config.snapshot_every
            if every and self._records_since_snapshot >= max(every, len(self._text_index) // 10):
                try:
                    self._write_snapshot()
                except OSError as exc:  # the records are acknowledged; a snapshot is disposable
                    _LOG.warning("could not write the index snapshot (retried later): %s", exc)

    def _flush_commits(self) -> None:
        """Waits for every commit in flight (close): they end durable, or failed and rolled back."""
        assert self._store is not None
        self._store.flush()
        self._apply_durable()

    def add(self, entry: KnowledgeEntry, *, text_embedding: np.ndarray | None = None) -> str:
        """Stores an entry durably (write + fsync) before returning its id.

        Args:
            entry: a new, active entry.
            text_embedding: the entry text's vector if already computed (skips MiniLM).

        Returns:
            The entry id.

        Raises:
            ConfigError: the id exists, the entry is inactive, or a vector has the wrong width.
            ReadOnlyError: the knowledge base is read-only.
        """
        return self.add_many([entry], text_embeddings=text_embedding)[0]

    def add_many(
        self, entries: Sequence[KnowledgeEntry], *, text_embeddings: np.ndarray | None = None
    ) -> list[str]:
        """Stores several entries, durable when this returns (group commit).

        The batch is embedded in one call and written as one append. Its fsync is shared with
        every other `add`/`add_many` in flight from other threads (group commit), so concurrent
        writers are durable at several hundred entries per second where one fsync each would
        allow about 250 (`corrigible bench kb`). Either all entries of the call are durable
        when it returns or, on error, none is acknowledged.

        Raises:
            ConfigError: an id exists (or is being added), an entry is inactive, or a vector
                has the wrong width.
            ReadOnlyError: the knowledge base is read-only.
            OSError: the write or its fsync failed; nothing of this call was acknowledged.
        """
        entries = list(entries)
        with self._lock:
            self._check_writable()
            self._validate_batch(entries)
        if not entries:
            return []
        # Embedding (milliseconds per text with MiniLM) runs outside the lock.
        vectors = self._text_vectors(entries, text_embeddings)
        ids = [entry.id for entry in entries]
        with self._lock:
            self._check_writable()
            self._validate_batch(entries)  # again: another thread may have added one meanwhile
            payloads = [
                self._payload("add", entry, vector)
                for entry, vector in zip(entries, vectors, strict=True)
            ]
            pending = self._begin(payloads)
            self._state.pending_ids.update(ids)
        self._finish(pending, ids, ())
        return ids

    def _validate_batch(self, entries: Sequence[KnowledgeEntry]) -> None:
        seen: set[str] = set()
        for entry in entries:
            self._validate_new(entry)
            if entry.id in seen:
                raise ConfigError(f"entry id {entry.id} appears twice in one add_many call")
            seen.add(entry.id)

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise ReadOnlyError(
                f"the knowledge base at {self.path} is open read-only; open it with "
                "read_only=False (one writer at a time) to change it"
            )

    def _unknown(self, entry_id: str) -> UnknownEntryError:
        if entry_id in self._state.deleted:
            return UnknownEntryError(
                f"entry {entry_id!r} was deleted; deleted entries remain only in the log history."
            )
        return UnknownEntryError(
            f"no knowledge entry with id {entry_id!r} in "
            f"{'the in-memory knowledge base' if self.path is None else self.path}; "
            "list ids with `corrigible kb list`." + did_you_mean(entry_id, self._state.entries)
        )

    def delete(self, entry_id: str) -> None:
        """Deletes an entry with a durable tombstone record (group-committed like `add`).

        Deleting an entry that superseded another does not revive the older one.

        Raises:
            UnknownEntryError: no such entry (or already deleted).
            ConfigError: another thread is deleting or superseding it right now.
        """
        with self._lock:
            self._check_writable()
            if entry_id not in self._state.entries:
                raise self._unknown(entry_id)
            self._check_not_pending(entry_id)
            pending = self._begin([{"op": "delete", "id": entry_id}])
            self._state.pending_gone.add(entry_id)
        self._finish(pending, (), (entry_id,))

    def _check_not_pending(self, entry_id: str) -> None:
        if entry_id in self._state.pending_gone:
            raise ConfigError(
                f"entry {entry_id} is being deleted or superseded by another call right now; "
                "retry once that call returned"
            )

    def supersede(
        self,
        old_id: str,
        new_entry: KnowledgeEntry,
        *,
        text_embedding: np.ndarray | None = None,
    ) -> str:
        """Replaces an active entry that a new correction contradicts.

        One atomic log record makes the old entry inactive (superseded_by = new id) and adds the
        new one, whose `supersedes` lists the old id and whose provenance is the old entry's
        followed by its own, so the history of both corrections stays visible. A new entry with
        an empty scope or no appearance inherits the old entry's.

        Args:
            old_id: the active entry being contradicted.
            new_entry: the replacement (a new id).
            text_embedding: the new text's vector if already computed.

        Returns:
            The new entry's id.

        Raises:
            UnknownEntryError: `old_id` does not exist.
            ConfigError: `old_id` is already superseded (supersede its successor instead).
        """
        with self._lock:
            self._check_writable()
            merged = self._merge_superseding(old_id, new_entry)
        vector = self._text_vectors([merged], text_embedding)[0]
        with self._lock:
            self._check_writable()
            self._merge_superseding(old_id, new_entry)  # still valid after the embedding?
            payload = {**self._payload("supersede", merged, vector), "old_id": old_id}
            pending = self._begin([payload])
            self._state.pending_ids.add(merged.id)
            self._state.pending_gone.add(old_id)
        self._finish(pending, (merged.id,), (old_id,))
        return merged.id

    def _merge_superseding(self, old_id: str, new_entry: KnowledgeEntry) -> KnowledgeEntry:
        """The entry `supersede` writes: checks both, then merges provenance, scope and crop."""
        old = self._state.entries.get(old_id)
        if old is None:
            raise self._unknown(old_id)
        if not old.active:
            raise ConfigError(
                f"entry {old_id} was already superseded by {old.superseded_by}; supersede "
                "that entry instead"
            )
        self._check_not_pending(old_id)
        self._validate_new(new_entry)
        provenance = list(old.provenance) + [
            p for p in new_entry.provenance if p not in old.provenance
        ]
        update: dict[str, Any] = {
            "supersedes": [*new_entry.supersedes, old_id],
            "provenance": provenance,
        }
        # The contradicting correction is about the same object: unless it says otherwise,
        # it applies where the old entry applied and to the object the old crop shows.
        if new_entry.scope.is_empty:
            update["scope"] = old.scope.model_copy()
        if new_entry.visual_embedding is None and old.visual_embedding is not None:
            update["visual_embedding"] = list(old.visual_embedding)
        return new_entry.model_copy(update=update)

    # -- reading -------------------------------------------------------------------------------

    @_reads
    def get(self, entry_id: str) -> KnowledgeEntry:
        """A copy of the entry (active or superseded).

        Raises:
            UnknownEntryError: no such entry, with a "did you mean" or a note that it was deleted.
        """
        entry = self._state.entries.get(entry_id)
        if entry is None:
            raise self._unknown(entry_id)
        return entry.model_copy(deep=True)

    @_reads
    def resolve_id(self, prefix: str) -> str:
        """The full id of the one entry whose id starts with `prefix` (as `git` short ids).

        Raises:
            UnknownEntryError: no entry or more than one matches.
        """
        if prefix in self._state.entries:
            return prefix
        matches = [i for i in self._state.entries if prefix and i.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UnknownEntryError(
                f"id prefix {prefix!r} matches {len(matches)} entries; give more characters"
            )
        raise self._unknown(prefix)

    @_reads
    def list(self, kind: str | None = None, active_only: bool = True) -> list[KnowledgeEntry]:
        """Entries in insertion order.

        Args:
            kind: only this kind ("plan_rule", "preference", "skill_params").
            active_only: leave out superseded entries.
        """
        self._check_kind(kind)
        order = sorted(self._state.entries.values(), key=lambda e: self._state.seq_of[e.id])
        return [
            entry.model_copy(deep=True)
            for entry in order
            if (kind is None or entry.kind == kind) and (entry.active or not active_only)
        ]

    def lineage(self, entry_id: str) -> list[KnowledgeEntry]:
        """The supersession chain through an entry, oldest first (corrections over time)."""
        with self._lock:
            entry = self.get(entry_id)
            chain = [entry]
            while chain[0].supersedes and chain[0].supersedes[-1] in self._state.entries:
                chain.insert(0, self._state.entries[chain[0].supersedes[-1]].model_copy())
            while chain[-1].superseded_by in self._state.entries:
                chain.append(self._state.entries[chain[-1].superseded_by].model_copy())
            return chain

    @_reads
    def __len__(self) -> int:
        return sum(1 for entry in self._state.entries.values() if entry.active)

    def export(self, path: str | Path) -> int:
        """Writes every entry (active and superseded, not deleted) as JSON lines, atomically.

        Vectors of text are not exported (they are derived); appearance descriptors are, since a
        crop cannot be recomputed from text.

        Returns:
            The number of entries written.
        """
        entries = self.list(active_only=False)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(entry.model_dump(mode="json"), ensure_ascii=False) for entry in entries]
        atomic_write(target, ("\n".join(lines) + ("\n" if lines else "")).encode())
        return len(entries)

    # -- retrieval -----------------------------------------------------------------------------

    @staticmethod
    def _check_kind(kind: str | None) -> None:
        if kind is not None and kind not in ENTRY_KINDS:
            raise ConfigError(
                f"unknown entry kind {kind!r}; choose one of {list(ENTRY_KINDS)}."
                + did_you_mean(kind, ENTRY_KINDS)
            )

    def search(
        self,
        query_text: str,
        *,
        visual: np.ndarray | Sequence[float] | None = None,
        k: int = 5,
        kind: str | None = None,
        skill: str | None = None,
        text_threshold: float | None = None,
        visual_threshold: float | None = None,
        mode: SearchMode = "text",
        include_rejected: bool = False,
    ) -> list[RetrievalHit]:
        """Finds the active entries that apply to a query.

        Modes:
            "text": accept when the text cosine >= text_threshold; score = text cosine.
            "text+visual": needs `visual`. An entry with a stored appearance is accepted only
                when the text passes *and* the appearance score >= visual_threshold; score =
                (1 - w) * text + w * visual. An entry without a stored appearance (a general
                rule) is judged on text alone. This is what tells a red cube from a red
                cylinder when the words cannot.
            "visual": needs `visual`; accept on appearance alone (query_text may be empty).

        Args:
            query_text: the task or the object description.
            visual: the query object's descriptor from `visual_embedder.embed_crop`.
            k: at most this many accepted hits.
            kind: only entries of this kind.
            skill: only entries for this skill (plan-level entries have no skill and are left out
                when this is set).
            text_threshold: overrides the config's text threshold.
            visual_threshold: overrides the config's appearance threshold.
            mode: "text", "text+visual" or "visual".
            include_rejected: also return the best rejected candidates (accepted=False) after
                the accepted ones, with the reason each was rejected (for traces).

        Returns:
            Accepted hits best first (then rejected ones if asked).

        Raises:
            ConfigError: bad mode, k, kind, or a visual mode without `visual`.
        """
        if mode not in SEARCH_MODES:
            raise ConfigError(
                f"unknown search mode {mode!r}; choose one of {list(SEARCH_MODES)}."
                + did_you_mean(str(mode), SEARCH_MODES)
            )
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        self._check_kind(kind)
        t_thr = self.config.text_threshold if text_threshold is None else text_threshold
        v_thr = self.config.visual_threshold if visual_threshold is None else visual_threshold
        query_visual = None
        if visual is not None:
            query_visual = np.asarray(visual, dtype=np.float32).reshape(-1)
            if query_visual.shape != (DESCRIPTOR_DIM,) or not np.isfinite(query_visual).all():
                raise ConfigError(
                    f"visual must be a {DESCRIPTOR_DIM}-d descriptor from embed_crop, got shape "
                    f"{query_visual.shape}"
                )
        if mode != "text" and query_visual is None:
            raise ConfigError(
                f"mode {mode!r} needs visual=embed_crop(crop); pass it or use mode='text'"
            )
        use_text = mode != "visual" or bool(query_text.strip())
        if mode != "visual" and not query_text.strip():
            raise ConfigError("query_text is empty; describe the task or object to look up")
        query_vector = self._embedder.embed([query_text])[0] if use_text else None
        # Embedding (milliseconds) happens outside the lock; only the index lookup holds it.
        return self._retrieve(
            query_vector,
            query_visual,
            k=k,
            kind=kind,
            skill=skill,
            t_thr=t_thr,
            v_thr=v_thr,
            mode=mode,
            include_rejected=include_rejected,
        )

    @_reads
    def _retrieve(
        self,
        query_vector: np.ndarray | None,
        query_visual: np.ndarray | None,
        *,
        k: int,
        kind: str | None,
        skill: str | None,
        t_thr: float,
        v_thr: float,
        mode: str,
        include_rejected: bool,
    ) -> list[RetrievalHit]:
        driver = self._visual_index if mode == "visual" else self._text_index
        driver_query = query_visual if mode == "visual" else query_vector
        threshold = v_thr if mode == "visual" else t_thr
        total = len(driver)
        pool = min(total, max(self.config.candidate_pool, 8 * k))
        among = None
        passing = self._filtered_keys(kind, skill)
        if passing is not None and len(passing) <= self.config.exact_fallback_pool:
            # Few entries pass the filters: score exactly those, all of them, best first
            # (whatever the index; also cheaper than paging through it).
            among = np.fromiter(passing, dtype=np.int64, count=len(passing))
            total = pool = len(among)
        seen: set[int] = set()
        accepted: list[RetrievalHit] = []
        rejected: list[RetrievalHit] = []
        # Appearance: the combined score is the minimum per-group cosine, which is at most the
        # overall cosine the index ranks by, up to a factor sqrt(2/3) when one side lacks the
        # size group; so nothing ranked below 0.8 * threshold can pass.
        stop_below = threshold * 0.8 if mode == "visual" and threshold > 0 else threshold
        below_judged = 0
        while pool > 0:
            # An HNSW pool that filters made this large, or that must hold everything, is
            # searched exactly: the graph only promises the best few, not the best 4096.
            exact = driver.is_hnsw and (pool > self.config.exact_fallback_pool or pool >= total)
            scores, keys = driver.search(driver_query, pool, exact=exact, among=among)
            done = False
            for score, key in zip(scores[0], keys[0], strict=True):
                if key < 0 or int(key) in seen:
                    continue
                seen.add(int(key))
                if score < stop_below:
                    # Ranked by the driver's score: nothing further down can pass. A few
                    # near misses are still judged when the caller wants them for a trace.
                    if not include_rejected or below_judged >= k:
                        done = True
                        break
                    below_judged += 1
                entry = self._state.entries[self._state.id_of[int(key)]]
                if kind is not None and entry.kind != kind:
                    continue
                if skill is not None and entry.skill != skill:
                    continue
                if entry.retired is not None:  # kept for the record, never applied again
                    continue
                text_score = float(score) if driver is self._text_index else None
                hit = self._judge(
                    entry, int(key), query_vector, query_visual, t_thr, v_thr, mode, text_score
                )
                (accepted if hit.accepted else rejected).append(hit)
                if mode == "text" and not include_rejected and len(accepted) >= k:
                    # Text mode ranks by the text score the candidates arrive in: nothing
                    # later can displace the k accepted so far.
                    done = True
                    break
            if done or len(accepted) >= k or pool >= total:
                break
            pool = min(total, pool * 4)
        accepted.sort(key=lambda hit: hit.score, reverse=True)
        result = accepted[:k]
        if include_rejected:
            rejected.sort(key=lambda hit: hit.score, reverse=True)
            result += rejected[:k]
        # Copies only of what is returned: callers may change them, the state must not.
        return [dataclasses.replace(hit, entry=hit.entry.model_copy(deep=True)) for hit in result]

    def _filtered_keys(self, kind: str | None, skill: str | None) -> set[int] | None:
        """Index keys of the active entries passing the kind/skill filters (None: no filter)."""
        sets = []
        if kind is not None:
            sets.append(self._state.keys_by_kind.get(kind, set()))
        if skill is not None:
            sets.append(self._state.keys_by_skill.get(skill, set()))
        if not sets:
            return None
        sets.sort(key=len)
        if len(sets[0]) > self.config.exact_fallback_pool:
            return sets[0]  # too many to score one by one: the caller pages through the index
        return set.intersection(*sets) if len(sets) > 1 else sets[0]

    def _judge(
        self,
        entry: KnowledgeEntry,
        key: int,
        query_vector: np.ndarray | None,
        query_visual: np.ndarray | None,
        t_thr: float,
        v_thr: float,
        mode: str,
        text_score: float | None = None,
    ) -> RetrievalHit:
        """Scores one candidate and explains the decision.

        `text_score` is the index's score when the text index found the candidate (an exact
        inner product of the stored vector, also in HNSW); otherwise it is computed here.
        """
        if text_score is None and query_vector is not None:
            text_score = float(query_vector @ self._text_index.reconstruct(key))
        detail = None
        visual_score = None
        if query_visual is not None and entry.visual_embedding is not None:
            detail = compare(query_visual, entry.visual_embedding)
            visual_score = float(detail["score"] or 0.0)
        reasons: list[str] = []
        ok = True
        if mode != "visual":
            assert text_score is not None
            passed = text_score >= t_thr
            ok &= passed
            reasons.append(
                f"text {text_score:.2f} {'>=' if passed else '<'} {t_thr:.2f} to "
                f"'{entry.summary(50)}'"
            )
        if mode != "text":
            if visual_score is None:
                if mode == "visual":
                    ok = False
                    reasons.append("no stored appearance to compare")
                else:
                    reasons.append("no stored appearance: a general rule, judged on text alone")
            else:
                assert detail is not None
                passed = visual_score >= v_thr
                ok &= passed
                groups = ", ".join(
                    f"{name} {value:.2f}"
                    for name, value in detail.items()
                    if name != "score" and value is not None
                )
                verdict = "matches the stored crop" if passed else "a different-looking object"
                reasons.append(
                    f"appearance {visual_score:.2f} {'>=' if passed else '<'} {v_thr:.2f} "
                    f"({groups}): {verdict}"
                )
        if mode == "text+visual" and visual_score is not None and text_score is not None:
            w = self.config.visual_weight
            score = (1.0 - w) * text_score + w * visual_score
        elif mode == "visual":
            score = visual_score if visual_score is not None else -math.inf
        else:
            score = text_score if text_score is not None else -math.inf
        if not entry.scope.is_empty:
            reasons.append(f"scope {entry.scope.describe()}")
        if entry.provenance:
            latest = entry.provenance[-1]
            quote = latest.correction_texts[-1]
            reasons.append(f'learned in episode {latest.episode} from "{quote[:60]}"')
        if entry.supersedes:
            reasons.append(f"supersedes {', '.join(i[:8] for i in entry.supersedes)}")
        prefix = "applies" if ok else "rejected"
        return RetrievalHit(
            entry=entry,
            score=float(score),
            text_score=text_score,
            visual_score=visual_score,
            reason=f"{prefix}: " + "; ".join(reasons),
            accepted=ok,
            visual_detail=detail,
        )


@dataclass
class CheckReport:
    """What `check` found in a knowledge-base directory (JSON-able with `to_dict`)."""

    path: str
    findings: list[dict[str, str]]  # {"severity": "damage" | "note", "what": ...}
    details: dict[str, Any]  # entries, acknowledged seq, damaged records, index, files

    @property
    def has_damage(self) -> bool:
        """Whether any finding is damage (`corrigible kb repair` or a restore is needed)."""
        return any(f["severity"] == "damage" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 damage found (`check` itself returns; unusable raises, CLI exit 2)."""
        return 1 if self.has_damage else 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "path": self.path,
            "status": "damaged" if self.has_damage else "clean",
            "exit_code": self.exit_code,
            "findings": self.findings,
            **self.details,
        }


def check(path: str | Path, *, text_embedder: TextEmbedder | None = None) -> CheckReport:
    """Reads a knowledge-base directory without writing anything and reports its state.

    Covers the entries, the last acknowledged seq, damaged or missing acknowledged records,
    bytes quarantined by earlier repairs, the manifest and the index snapshot's consistency.

    Args:
        path: the knowledge-base directory.
        text_embedder: the embedder to compare the manifest with (default MiniLM, not loaded
            unless log records lack vectors).

    Returns:
        The report; `exit_code` is 0 when clean and 1 when damage was found.

    Raises:
        FileNotFoundError: no directory at `path`.
        CorrigibleError: the directory cannot be used at all (not a knowledge base, an
            unreadable file, conflicting records, a newer schema, another embedder).
    """
    from corrigible.memory.store import ACK_NAME, LOG_NAME, MANIFEST_NAME

    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"no knowledge base at {directory}; pass the right directory")
    config = KnowledgeBaseConfig(on_corrupt="skip", auto_refresh=False)
    findings: list[dict[str, str]] = []

    def found(severity: str, what: str) -> None:
        findings.append({"severity": severity, "what": what})

    with FaissKnowledgeBase(
        directory, read_only=True, config=config, text_embedder=text_embedder
    ) as kb:
        report = kb.open_report
        store = kb._store
        assert store is not None
        entries = list(kb._state.entries.values())
        last_seq = store._next_seq - 1
        index = dict(kb.index_status)
        index["entries_indexed"] = len(kb._text_index)
    if report.manifest_problem:
        found("damage", f"{report.manifest_problem}; it is recoverable from the log (kb repair)")
    for item in report.damaged:
        found(
            "damage",
            f"acknowledged record seq {item['seq']} (line {item['line']}) is damaged",
        )
    if report.missing:
        found("damage", f"acknowledged record(s) missing from {LOG_NAME}: {report.missing[:20]}")
    if report.junk_lines:
        found("damage", f"damaged bytes holding no record at line(s) {report.junk_lines[:20]}")
    if report.unconfirmed_tail_bytes:
        found(
            "damage",
            f"{report.unconfirmed_tail_bytes} byte(s) at the end of {LOG_NAME} that may have "
            "been an acknowledged record (the acknowledgement is unknown)",
        )
    if report.torn_tail_bytes:
        found(
            "note",
            f"{report.torn_tail_bytes} byte(s) of a write cut by a crash after the last "
            "acknowledged record (never acknowledged; the next writer removes them)",
        )
    if report.duplicates or report.reordered:
        found("damage", f"{LOG_NAME} has duplicated or reordered lines (no record lost)")
    if report.ack_problem:
        legacy = "older version" in report.ack_problem
        found("note" if legacy else "damage", report.ack_problem)
    if index["problem"]:
        # A snapshot that covers records the log lost is a consequence, not damage of its own.
        consequence = index["snapshot"] == "ahead-of-log" and report.lost
        found(
            "note" if consequence else "damage",
            f"index snapshot: {index['problem']} (rebuilt from the log on open)",
        )
    for note in report.format_notes:
        found("note", f"{LOG_NAME}: {note}")
    for marker in report.lost_markers:
        found("note", f"seq {marker['seq']} was lost earlier ({marker.get('cause', '?')}) "
              f"and marked by a repair")  # fmt: skip
    quarantined = sorted(
        p for pattern in (f"{LOG_NAME}.corrupt-*", f"{MANIFEST_NAME}.corrupt-*")
        for p in directory.glob(pattern)
    )  # fmt: skip
    for file in quarantined:
        found("note", f"quarantined bytes kept in {file.name}")
    details: dict[str, Any] = {
        "entries": {
            "active": sum(1 for e in entries if e.active),
            "superseded": sum(1 for e in entries if not e.active),
        },
        "records": report.records,
        "last_seq": last_seq,
        "acknowledged": {
            "seq": report.acknowledged_seq,
            "exact": report.ack_exact,
            "source": report.ack_source,
            "problem": report.ack_problem,
            "file": ACK_NAME,
        },
        "damaged": report.damaged,
        "missing": report.missing,
        "junk_lines": report.junk_lines,
        "torn_tail_bytes": report.torn_tail_bytes,
        "unconfirmed_tail_bytes": report.unconfirmed_tail_bytes,
        "unacknowledged": report.unacknowledged,
        "lost_earlier": report.lost_markers,
        "quarantined": [{"file": p.name, "bytes": p.stat().st_size} for p in quarantined],
        "manifest": {"ok": report.manifest_problem is None, "problem": report.manifest_problem},
        "index": index,
        "messages": report.messages,
    }
    return CheckReport(str(directory), findings, details)


# `OnCorrupt` is re-exported for callers that build configs programmatically.
__all__ = [
    "CheckReport",
    "FaissKnowledgeBase",
    "KnowledgeBase",
    "KnowledgeBaseConfig",
    "OnCorrupt",
    "RetrievalHit",
    "SEARCH_MODES",
    "check",
]
