"""A FAISS vector index keyed by int64 ids: exact inner product, HNSW above a size threshold.

Vectors are L2-normalised before they arrive, so inner product is cosine similarity. Below
`hnsw_threshold` vectors the index is `IndexFlatIP` (exact; a knowledge base of corrections is
small, and one exact query costs about 0.2 ms at 10k x 384 and 10 ms at 100k on one core; see
`corrigible bench kb`). Above it the index converts itself to `IndexHNSWFlat` (approximate,
logarithmic). HNSW cannot delete, so removals there are kept in a
tombstone set that `search` filters out, over-fetching to make up for the filtered ids.
"""

from __future__ import annotations

from collections.abc import Iterable

import faiss
import numpy as np

from corrigible.errors import ConfigError, IndexFormatError


class VectorIndex:
    """Cosine-similarity search over int64-keyed float32 vectors.

    Args:
        dim: vector width.
        hnsw_threshold: convert to HNSW once this many vectors are stored (0 disables HNSW).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (higher: better recall, slower).
    """

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 200_000,
        hnsw_m: int = 32,
        ef_search: int = 64,
    ) -> None:
        if dim <= 0:
            raise ConfigError(f"index dim must be positive, got {dim}")
        self.dim = dim
        self._hnsw_threshold = hnsw_threshold
        self._hnsw_m = hnsw_m
        self._ef_search = ef_search
        self._index: faiss.IndexIDMap2 = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._removed: set[int] = set()  # tombstones, only used in HNSW mode

    @property
    def is_hnsw(self) -> bool:
        """Whether the index is approximate (HNSW) rather than exact."""
        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWFlat)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._removed)

    def ids(self) -> np.ndarray:
        """All live ids, as int64."""
        stored = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if not self._removed:
            return stored
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
        if self._hnsw_threshold and not self.is_hnsw and self._index.ntotal >= self._hnsw_threshold:
            self._convert_to_hnsw()

    def _convert_to_hnsw(self) -> None:
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        flat = faiss.downcast_index(self._index.index)
        vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(-1, self.dim)
        self._index = self._build_hnsw(ids, np.array(vectors))

    def _build_hnsw(self, ids: np.ndarray, vectors: np.ndarray) -> faiss.IndexIDMap2:
        hnsw = faiss.IndexHNSWFlat(self.dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.hnsw.efSearch = self._ef_search
        index = faiss.IndexIDMap2(hnsw)
        index.add_with_ids(vectors, ids)
        return index

    def remove(self, ids: Iterable[int]) -> None:
        """Removes ids; unknown ids are ignored (removal is idempotent)."""
        id_array = np.fromiter(ids, dtype=np.int64)
        if len(id_array) == 0:
            return
        if self.is_hnsw:
            live = set(faiss.vector_to_array(self._index.id_map).tolist())
            self._removed.update(int(i) for i in id_array if int(i) in live)
        else:
            self._index.remove_ids(id_array)

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

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best (score, id) pairs for each query.

        Args:
            queries: (q, dim) or (dim,) unit vectors.
            k: results per query.

        Returns:
            (scores, ids), each (q, k'); k' = min(k, len(self)); scores descending.
        """
        queries = self._check(queries)
        k = min(int(k), len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        fetch = k + len(self._removed)
        if self.is_hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self._ef_search, fetch))
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

    def to_bytes(self) -> bytes:
        """Serialises the index (tombstones are dropped by rebuilding HNSW without them)."""
        if self._removed:
            live = self.ids()
            vectors = np.stack([self._index.reconstruct(int(i)) for i in live])
            self._index = self._build_hnsw(live, vectors)
            self._removed.clear()
        return faiss.serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        dim: int,
        hnsw_threshold: int = 200_000,
        hnsw_m: int = 32,
        ef_search: int = 64,
    ) -> VectorIndex:
        """Reads an index written by `to_bytes`.

        Raises:
            IndexFormatError: the bytes are not a FAISS IDMap2 index of width `dim`.
        """
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexFormatError(f"not a readable FAISS index ({exc})") from exc
        if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
            raise IndexFormatError(
                f"expected an IndexIDMap2 of width {dim}, got {type(index).__name__} of width "
                f"{getattr(index, 'd', '?')}"
            )
        result = cls(dim, hnsw_threshold=hnsw_threshold, hnsw_m=hnsw_m, ef_search=ef_search)
        result._index = index
        return result
