"""A FAISS vector index keyed by int64 ids: exact below a size threshold, HNSW above it.

Vectors are L2-normalised before they arrive, so inner product is cosine similarity. The kind
of index is chosen by size:

* below `hnsw_threshold` vectors (default 20k) it is `IndexFlatIP`: exact, and fast enough
  there (about 0.2 ms per query at 10k x 384 on one core), so small knowledge bases never give
  up any recall;
* at the threshold it converts itself to `IndexHNSWFlat` (a navigable graph over the same
  float32 vectors: logarithmic search, no training step, so it keeps up with a knowledge base
  that grows one entry at a time). `corrigible bench kb` measures p50 and recall@10 against
  exact search at 100k and 1M. The scores HNSW returns are exact inner products of the stored
  vectors; only *which* candidates it visits is approximate.

An inverted-file index (IVF) was measured too and rejected: on vectors whose neighbours share
some but not all of their factors (colour x object x rule, as correction texts do) it needed
nprobe = nlist / 8 to reach recall@10 0.947 at 100k (1.8 ms), where HNSW reaches 0.993 at
0.44 ms.

HNSW cannot delete, so removals there are tombstones that `search` filters out (over-fetching
to make up for them); the tombstones are saved with the index (`to_bytes`), and the graph is
rebuilt without them once they exceed a fifth of it. `search(..., exact=True)` scans the
stored vectors exhaustively: the knowledge base uses it when filters reject so many candidates
that the approximate pool would have to grow past `exact_fallback_pool`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import faiss
import numpy as np

from corrigible.errors import ConfigError, IndexFormatError

# Snapshot container: magic, then the tombstone count (u64 LE), the tombstones (i64 LE), then
# the FAISS bytes. A snapshot without the magic is a bare FAISS index (older writers).
_MAGIC = b"CKBVIDX1"
# Rebuild the HNSW graph without its tombstones once they are this share of it (and at least
# _COMPACT_MIN), so deletions cost amortised O(1) rather than a rebuild per snapshot.
_COMPACT_SHARE = 0.2
_COMPACT_MIN = 1024


class VectorIndex:
    """Cosine-similarity search over int64-keyed float32 vectors.

    Args:
        dim: vector width.
        hnsw_threshold: convert to HNSW once this many vectors are stored (0 disables HNSW).
        hnsw_m: HNSW graph degree (links per node; memory is about 8 * m bytes per vector).
        ef_construction: HNSW build breadth (higher: better graph, slower inserts).
        ef_search: HNSW search breadth (higher: better recall, slower queries); None chooses
            it by size (see `ef_search`).
    """

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 40,
        ef_search: int | None = None,
    ) -> None:
        if dim <= 0:
            raise ConfigError(f"index dim must be positive, got {dim}")
        if hnsw_threshold < 0:
            raise ConfigError(
                f"hnsw_threshold must be >= 0 (0: always exact), got {hnsw_threshold}"
            )
        for name, value in (
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", 1 if ef_search is None else ef_search),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value}")
        self.dim = dim
        self._hnsw_threshold = hnsw_threshold
        self._hnsw_m = hnsw_m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._index: faiss.IndexIDMap2 = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._removed: set[int] = set()  # tombstones, only used in HNSW mode
        self._id_cache: np.ndarray | None = None  # internal row -> id, for exact HNSW scans
        self._order: np.ndarray | None = None  # argsort of _id_cache, for id -> row

    @property
    def is_hnsw(self) -> bool:
        """Whether the index is approximate (HNSW) rather than exact."""
        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWFlat)

    @property
    def kind(self) -> str:
        """The index type, "hnsw" or "flat" (what snapshots record as `index_kind`)."""
        return "hnsw" if self.is_hnsw else "flat"

    @property
    def ef_search(self) -> int:
        """The HNSW search breadth used now for a query of k <= ef_search results.

        Unless set, it grows with the graph: 64 below 250k vectors, 128 up to 750k and 256
        beyond. Measured on the compositional vectors of `corrigible bench kb`, efSearch
        64 gave recall@10 0.993 at 100k but 0.944 at 1M (p50 0.58 ms), so a larger graph needs
        a broader search to keep recall >= 0.98; the latency budget (2 ms at 1M) allows it.
        """
        if self._ef_search is not None:
            return self._ef_search
        n = int(self._index.ntotal)
        return 64 if n < 250_000 else 128 if n < 750_000 else 256

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._removed)

    def _stored_ids(self) -> np.ndarray:
        if self._id_cache is None or len(self._id_cache) != self._index.ntotal:
            self._id_cache = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return self._id_cache

    def ids(self) -> np.ndarray:
        """All live ids, as int64."""
        stored = self._stored_ids()
        if not self._removed:
            return stored.copy()
        return stored[~np.isin(stored, np.fromiter(self._removed, dtype=np.int64))]

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ConfigError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ConfigError("vectors contain NaN or inf; embed the input again")
        return vectors

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        """Adds vectors under the given ids (ids must not already be live)."""
        id_array = np.fromiter(ids, dtype=np.int64)
        vectors = self._check(vectors)
        if len(id_array) != len(vectors):
            raise ConfigError(f"{len(id_array)} ids for {len(vectors)} vectors")
        if len(id_array) == 0:
            return
        revived = self._removed.intersection(id_array.tolist())
        if revived:
            raise ConfigError(f"ids {sorted(revived)[:5]} were removed and cannot be reused")
        self._index.add_with_ids(vectors, id_array)
        self._id_cache = self._order = None
        self._maybe_convert()

    def _maybe_convert(self) -> None:
        if self._hnsw_threshold and not self.is_hnsw and self._index.ntotal >= self._hnsw_threshold:
            ids = self._stored_ids().copy()
            flat = faiss.downcast_index(self._index.index)
            vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim)
            self._index = self._build_hnsw(ids, np.array(vectors).reshape(-1, self.dim))
            self._id_cache = self._order = None

    def _build_hnsw(self, ids: np.ndarray, vectors: np.ndarray) -> faiss.IndexIDMap2:
        hnsw = faiss.IndexHNSWFlat(self.dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self._ef_construction
        hnsw.hnsw.efSearch = self.ef_search
        index = faiss.IndexIDMap2(hnsw)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        return index

    def _compact(self) -> None:
        """Rebuilds the HNSW graph (or flat index, if now small) without its tombstones."""
        live = self.ids()
        vectors = self._live_vectors(live)
        self._removed.clear()
        self._id_cache = self._order = None
        if self._hnsw_threshold and len(live) >= self._hnsw_threshold:
            self._index = self._build_hnsw(live, vectors)
        else:
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            self._index.add_with_ids(vectors, live)

    def _live_vectors(self, live: np.ndarray) -> np.ndarray:
        if len(live) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        storage = faiss.downcast_index(faiss.downcast_index(self._index.index).storage)
        stored = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim)
        rows = np.nonzero(np.isin(self._stored_ids(), live))[0]
        return np.array(stored).reshape(-1, self.dim)[rows]

    def remove(self, ids: Iterable[int]) -> None:
        """Removes ids; unknown ids are ignored (removal is idempotent)."""
        id_array = np.fromiter(ids, dtype=np.int64)
        if len(id_array) == 0:
            return
        if self.is_hnsw:
            live = id_array[np.isin(id_array, self._stored_ids())]
            self._removed.update(int(i) for i in live)
            if len(self._removed) >= max(_COMPACT_MIN, _COMPACT_SHARE * self._index.ntotal):
                self._compact()
        else:
            self._index.remove_ids(id_array)
            self._id_cache = self._order = None

    def reconstruct(self, idx: int) -> np.ndarray:
        """The stored vector of one id.

        Raises:
            KeyError: the id is not live.
        """
        if idx in self._removed:
            raise KeyError(idx)
        try:
            return self._index.reconstruct(int(idx))
        except RuntimeError as exc:  # faiss reports a missing id as a RuntimeError
            raise KeyError(idx) from exc

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exact: bool = False,
        among: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best (score, id) pairs for each query.

        Args:
            queries: (q, dim) or (dim,) unit vectors.
            k: results per query.
            exact: scan every stored vector even when the index is HNSW (for filters that
                reject most candidates; costs a full scan, tens of ms at 1M).
            among: only these ids (exactly scored; ids not live are ignored). For filters
                that keep few entries: costs a gather of their vectors, not a scan.

        Returns:
            (scores, ids), each (q, k'); k' = min(k, len(self)); scores descending.
        """
        queries = self._check(queries)
        if among is not None:
            return self._search_among(queries, k, np.asarray(among, dtype=np.int64))
        k = min(int(k), len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        fetch = min(k + len(self._removed), int(self._index.ntotal))
        if self.is_hnsw and exact:
            storage = faiss.downcast_index(faiss.downcast_index(self._index.index).storage)
            scores, rows = storage.search(queries, fetch)
            ids = np.where(rows >= 0, self._stored_ids()[np.maximum(rows, 0)], -1)
        elif self.is_hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))
            scores, ids = self._index.search(queries, fetch, params=params)
        else:
            scores, ids = self._index.search(queries, fetch)
        if not self._removed:
            return scores[:, :k], ids[:, :k]
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row in range(len(queries)):
            keep = [c for c, i in enumerate(ids[row]) if i >= 0 and int(i) not in self._removed]
            keep = keep[:k]
            out_scores[row, : len(keep)] = scores[row, keep]
            out_ids[row, : len(keep)] = ids[row, keep]
        return out_scores, out_ids

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Storage rows of the live ids among `ids` (others dropped)."""
        stored = self._stored_ids()
        if self._order is None or len(self._order) != len(stored):
            self._order = np.argsort(stored, kind="stable")
        sorted_ids = stored[self._order]
        pos = np.searchsorted(sorted_ids, ids)
        pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
        hit = (sorted_ids[pos] == ids) if len(sorted_ids) else np.zeros(len(ids), bool)
        if self._removed:
            hit &= ~np.isin(ids, np.fromiter(self._removed, dtype=np.int64))
        return self._order[pos[hit]]

    def _search_among(
        self, queries: np.ndarray, k: int, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows_of(ids)
        k = min(int(k), len(rows))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        inner = faiss.downcast_index(self._index.index)
        storage = faiss.downcast_index(inner.storage) if self.is_hnsw else inner
        xb = faiss.rev_swig_ptr(storage.get_xb(), storage.ntotal * self.dim)
        vectors = np.asarray(xb).reshape(-1, self.dim)[rows]  # a copy of just these rows
        scores = queries @ vectors.T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        stored = self._stored_ids()
        return (
            np.take_along_axis(scores, top, axis=1).astype(np.float32),
            stored[rows][top].astype(np.int64),
        )

    def to_bytes(self) -> bytes:
        """Serialises the index with its tombstones (no rebuild: a snapshot stays cheap)."""
        removed = np.array(sorted(self._removed), dtype="<i8")
        body = faiss.serialize_index(self._index).tobytes()
        return _MAGIC + struct.pack("<Q", len(removed)) + removed.tobytes() + body

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        dim: int,
        hnsw_threshold: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 40,
        ef_search: int | None = None,
    ) -> VectorIndex:
        """Reads an index written by `to_bytes` (or a bare FAISS index from older versions).

        A flat index at or above `hnsw_threshold` is converted to HNSW here, once.

        Raises:
            IndexFormatError: the bytes are not an index of this kind and width.
        """
        removed = np.zeros(0, dtype=np.int64)
        if data.startswith(_MAGIC):
            head = len(_MAGIC) + 8
            if len(data) < head:
                raise IndexFormatError("the index snapshot is cut short (no tombstone count)")
            (count,) = struct.unpack("<Q", data[len(_MAGIC) : head])
            if len(data) < head + 8 * count:
                raise IndexFormatError(f"the index snapshot is cut short ({count} tombstones)")
            removed = np.frombuffer(data[head : head + 8 * count], dtype="<i8").astype(np.int64)
            data = data[head + 8 * count :]
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexFormatError(f"not a readable FAISS index ({exc})") from exc
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else None
        if not isinstance(inner, faiss.IndexFlatIP | faiss.IndexHNSWFlat) or index.d != dim:
            raise IndexFormatError(
                f"expected an IndexIDMap2 over IndexFlatIP or IndexHNSWFlat of width {dim}, got "
                f"{type(index).__name__} of width {getattr(index, 'd', '?')}"
            )
        result = cls(
            dim,
            hnsw_threshold=hnsw_threshold,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
        )
        result._index = index
        if len(removed):
            if not result.is_hnsw or not np.isin(removed, result._stored_ids()).all():
                raise IndexFormatError("the index snapshot's tombstones name ids it does not hold")
            result._removed = set(removed.tolist())
        if result.is_hnsw:
            faiss.downcast_index(index.index).hnsw.efSearch = result.ef_search
        result._maybe_convert()
        return result
