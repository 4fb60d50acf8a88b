"""A segment: the paragraphs one change added (a build, or one document), as immutable files.

``segments/<name>/`` holds ``rows.npy`` (the store's row of each of its paragraphs, by local id), ``vectors.faiss``
(their vectors, local ids in the same order) and the BM25 postings (``qa/search/lexical.py``). A segment is written
into a hidden temp folder, every file fsynced, then renamed into place whole; the store commits it afterwards, so a
crash at any point leaves either no segment or a complete one that nothing references yet (removed later).
Segments are opened memory-mapped, FAISS included (``IO_FLAG_MMAP_IFC``): opening one costs no copy of its vectors,
and its files are hashed only the first time a machine sees them as they are (``verified_sha256``).
A removed paragraph stays in its segment, skipped by search, until the segment is merged (``qa/search/index.py``).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from qa.models import remembered
from qa.search.files import file_sha256, fsync_directory, fsync_file
from qa.search.lexical import FILES as POSTINGS_FILES
from qa.search.lexical import Part, Postings

# Exact search up to HNSW_THRESHOLD vectors in a segment, HNSW above (figures: benchmarks/bench_search.py, 384-d,
# one query per call, one core). Exact IndexFlatIP costs ~0.09 ms per 1k vectors (100k: p50 ~8-9 ms, 1M: ~85 ms),
# so up to 100k it stays under 10 ms with recall 1. HNSW (M=32, efConstruction=80, efSearch=128) at 1M clustered
# vectors (embedding-like: topics): p50 ~0.8 ms, recall@10 0.999 (efSearch 64: 0.45 ms, 0.992; 32: 0.918).
# efSearch 128 leaves a margin for real data, harder than the synthetic clusters. On uniform random vectors no
# graph index reaches recall@10 0.95 under 10 ms (100k: efSearch 2048 gives 0.95 in ~14 ms, slower than exact):
# they have no neighbourhood structure, unlike embeddings.
HNSW_THRESHOLD = 100_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
VECTORS_FILE = "vectors.faiss"
ROWS_FILE = "rows.npy"
VERIFIED_FILE = "verified-segments.json"  # in cache_dir(): sha256 of segment files, by path, size, mtime, inode
SEGMENT_FILES = sorted([ROWS_FILE, VECTORS_FILE, *(f"{name}.npy" for name in POSTINGS_FILES)])


def verified_sha256(path: Path, known: str | None = None) -> str:
    """The file's sha256, computed the first time this machine sees it as it is now (path, size, mtime, inode) and
    remembered in ``cache_dir()``: hashing a million paragraphs' segment (3 GB) would cost ~1.7 s of every start
    (``benchmarks/bench_library.py``: cold start 4.3 s hashing, 3.2 s remembered). ``known``: the digest of a file
    this process just wrote."""
    stat = path.stat()
    key = [str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]
    return remembered(VERIFIED_FILE, key, lambda: known or file_sha256(path))


class SegmentDamaged(RuntimeError):
    """A segment's files are missing or do not match what the store recorded."""


def make_faiss_index(vectors: np.ndarray, dimension: int) -> faiss.Index:
    """Exact inner-product search for small segments, HNSW above ``HNSW_THRESHOLD`` vectors."""
    if len(vectors) > HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_segment(segments_dir: Path, rows: np.ndarray, vectors: np.ndarray, postings: Postings) -> tuple[str, dict]:
    """Write a new segment; returns its name and its files as ``{file: [bytes, sha256]}`` for the store."""
    name = uuid.uuid4().hex[:16]
    temp = segments_dir / f".{name}.tmp"
    temp.mkdir(parents=True)
    try:
        np.save(temp / ROWS_FILE, np.asarray(rows, dtype=np.int64), allow_pickle=False)
        faiss.write_index(make_faiss_index(vectors, vectors.shape[1]), str(temp / VECTORS_FILE))
        postings.save(temp)
        files = {}
        for path in sorted(temp.iterdir()):
            fsync_file(path)
            files[path.name] = [path.stat().st_size, file_sha256(path)]
        fsync_directory(temp)
        os.rename(temp, segments_dir / name)
        fsync_directory(segments_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    for file, (_, digest) in files.items():
        verified_sha256(segments_dir / name / file, known=digest)
    return name, files


@dataclass
class Segment:
    """An opened segment; ``removed`` (local ids) are skipped by both searches."""

    name: str
    rows: np.ndarray
    vectors: faiss.Index
    postings: Postings
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        """What both searches need of ``removed``, made once per opening, not once per question: the alive mask
        BM25 reads (``part``) and the FAISS selector that skips the removed vectors."""
        self.removed = np.sort(np.asarray(self.removed, dtype=np.int64))
        alive, self._search_params, self._selectors = None, None, ()
        if len(self.removed):
            alive = np.ones(len(self.rows), dtype=bool)
            alive[self.removed] = False
            removed = faiss.IDSelectorBatch(self.removed)
            skip = faiss.IDSelectorNot(removed)
            self._selectors = (removed, skip)  # faiss holds pointers to them, not references: keep them alive
            if hasattr(self.vectors, "hnsw"):
                self._search_params = faiss.SearchParametersHNSW(sel=skip, efSearch=HNSW_EF_SEARCH)
            else:
                self._search_params = faiss.SearchParameters(sel=skip)
        self.part = Part(self.postings, self.rows, alive)  # the segment as BM25 scores it

    @classmethod
    def open(cls, segments_dir: Path, name: str, files: dict) -> Segment:
        """Open ``name`` after checking each file's size and sha256 against ``files`` (``SegmentDamaged``)."""
        folder = segments_dir / name
        if sorted(files) != SEGMENT_FILES:
            raise SegmentDamaged(f"{folder}: the store records the files {sorted(files)}, not {SEGMENT_FILES}.")
        for file, (size, digest) in files.items():
            path = folder / file
            if not path.is_file():
                raise SegmentDamaged(f"{path} is missing.")
            if path.stat().st_size != size or verified_sha256(path) != digest:
                raise SegmentDamaged(f"{path} does not match its checksum (truncated or corrupted).")
        try:
            vectors = faiss.read_index(str(folder / VECTORS_FILE), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            rows = np.load(folder / ROWS_FILE, mmap_mode="r", allow_pickle=False)
            postings = Postings.load(folder)
        except (RuntimeError, OSError, ValueError) as error:
            raise SegmentDamaged(f"{folder} is unreadable ({error}).") from error
        if not vectors.ntotal == len(rows) == len(postings.lengths):
            raise SegmentDamaged(f"{folder}: {vectors.ntotal} vectors for {len(rows)} rows.")
        if hasattr(vectors, "hnsw"):
            vectors.hnsw.efSearch = HNSW_EF_SEARCH
        return cls(name, rows, vectors, postings)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def alive(self) -> int:
        return len(self.rows) - len(self.removed)

    def with_removed(self, removed: np.ndarray) -> Segment:
        """The same files, with ``removed`` (local ids) skipped."""
        return Segment(self.name, self.rows, self.vectors, self.postings, removed)

    def kept(self) -> np.ndarray:
        """The local ids not removed."""
        return np.setdiff1d(np.arange(len(self.rows)), self.removed, assume_unique=True)

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, global rows) of the ``k`` nearest alive paragraphs per query, row -1 where fewer exist."""
        k = min(k, self.alive)
        if k <= 0:
            return np.zeros((len(query_vectors), 0), np.float32), np.zeros((len(query_vectors), 0), np.int64)
        scores, local = self.vectors.search(query_vectors, k, params=self._search_params)
        rows = np.where(local >= 0, np.asarray(self.rows)[np.maximum(local, 0)], -1)
        return scores, rows

    def vectors_of(self, local_ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``local_ids``."""
        if len(local_ids) == 0:
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        return self.vectors.reconstruct_batch(np.asarray(local_ids, dtype=np.int64))
