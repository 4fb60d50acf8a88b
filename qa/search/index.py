"""The index of a library: a store of paragraphs (``store.py``) and the segments that search them (``segments.py``).

Files in the index folder (nothing else; no absolute path, so the folder can be copied or mounted elsewhere):

- ``store.sqlite``: settings (format, embedder identity, version), documents, paragraphs, segments (each with the
  sizes and sha256 of its files), removed paragraphs. Its commit is the index's commit point.
- ``segments/<name>/``: one segment's rows, vectors (FAISS) and BM25 postings, immutable once written.

Vectors are L2-normalised and searched by inner product (cosine), segment by segment, and the lists merged. A
segment's files are checked against their sha256 when opened (hashed once per machine: ``verified_sha256``).
``qa/search/sync.py`` keeps the index in step with a documents folder.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.documents.library import DocumentInfo
from qa.documents.paragraphs import Paragraph
from qa.search.lexical import bm25
from qa.search.segments import Segment, SegmentDamaged
from qa.search.store import FORMAT_VERSION, STORE_NAME, Store

log = logging.getLogger(__name__)

SEGMENTS_DIR = "segments"
# Lends stored vectors: doc ids -> {text of one of their paragraphs: its vector}, so that a paragraph a replaced
# document kept, or an index being converted, is not embedded again (a vector depends on the text alone).
Lender = Callable[[list[str]], dict[str, np.ndarray]]


class IndexDamaged(RuntimeError):
    """The index files are missing, unreadable or do not match their checksums."""


@dataclass
class Index:
    """An opened index: its store, its segments (removed paragraphs marked), and BM25's corpus statistics."""

    folder: Path
    store: Store
    settings: dict[str, str]
    segments: list[Segment]

    def __post_init__(self) -> None:
        self._infos: list[DocumentInfo] | None = None
        self.paragraph_count = sum(segment.alive for segment in self.segments)
        self.total_length = sum(
            float(np.sum(segment.postings.lengths, dtype=np.float64))
            - float(np.sum(np.asarray(segment.postings.lengths)[segment.removed], dtype=np.float64))
            for segment in self.segments
        )

    def __len__(self) -> int:
        return self.paragraph_count

    @property
    def version(self) -> str:
        """Changes with every commit: what a follower compares."""
        return self.settings["version"]

    @property
    def embedder_identity(self) -> str:
        return self.settings["embedder_identity"]

    @property
    def kind(self) -> str:
        """How the vectors are searched, e.g. "1 segment (exact)" or "3 segments (1 HNSW, 2 exact)"."""
        if not self.segments:
            return "empty"
        hnsw = sum(hasattr(segment.vectors, "hnsw") for segment in self.segments)
        exact = len(self.segments) - hnsw
        how = f"{hnsw} HNSW, {exact} exact" if hnsw and exact else "HNSW" if hnsw else "exact"
        return f"{len(self.segments)} segment{'s' * (len(self.segments) > 1)} ({how})"

    @property
    def documents(self) -> dict[str, str]:
        """Document id -> sha256 of its file."""
        return {doc_id: stored.sha256 for doc_id, stored in self.store.documents().items()}

    def infos(self) -> list[DocumentInfo]:
        """The documents as listed to people (from the store: no file is read), read once per opened version (the
        chat asks for their titles with every message)."""
        if self._infos is None:
            self._infos = self.store.infos()
        return self._infos

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the ``k`` nearest paragraphs per query, best first, row ``-1`` where fewer exist."""
        query_vectors = np.ascontiguousarray(query_vectors, dtype=np.float32)
        k = min(k, len(self))
        found = [segment.search(query_vectors, k) for segment in self.segments if segment.alive]
        if not found or k == 0:
            empty = np.zeros((len(query_vectors), 0), dtype=np.float32)
            return empty, empty.astype(np.int64)
        scores = np.concatenate([scores for scores, _ in found], axis=1)
        rows = np.concatenate([rows for _, rows in found], axis=1)
        scores = np.where(rows >= 0, scores, -np.inf)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, best, axis=1), np.take_along_axis(rows, best, axis=1)

    def lexical(self, query: str, depth: int) -> dict[int, float]:
        """Row -> BM25 score of the ``depth`` best paragraphs sharing a term with ``query``, best first."""
        parts = [segment.part for segment in self.segments if segment.alive]
        return bm25(query, parts, len(self), self.total_length, depth)

    def paragraphs_at(self, rows: list[int]) -> dict[int, Paragraph]:
        """Row -> paragraph for ``rows`` (a row that a later commit removed is left out)."""
        return self.store.paragraphs_at(rows)

    def paragraphs(self) -> list[Paragraph]:
        """Every paragraph, by document and position (for tools over small libraries: it reads them all)."""
        return [paragraph for _, paragraph in self.store.all_paragraphs()]

    def stored_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, vectors) of every paragraph, by row."""
        kept = [(segment.rows[segment.kept()], segment.vectors_of(segment.kept())) for segment in self.segments]
        if not kept:
            return np.zeros(0, dtype=np.int64), np.zeros((0, int(self.settings["dimension"])), dtype=np.float32)
        rows, vectors = np.concatenate([rows for rows, _ in kept]), np.concatenate([vectors for _, vectors in kept])
        order = np.argsort(rows)
        return rows[order], vectors[order]

    def rows(self) -> list[int]:
        """Every paragraph's row, in the order of ``paragraphs()``."""
        return [row for row, _ in self.store.all_paragraphs()]


def load_index(index_dir: str | Path, previous: Index | None = None) -> Index:
    """Open and verify the index in ``index_dir``, read only (no lock, no write: a read-only mount will do); raises
    ``IndexDamaged`` when it is missing or damaged. Segments that ``previous`` (an earlier version of the same
    folder) already opened are reused, not re-read."""
    index_dir = Path(index_dir)
    if not (index_dir / STORE_NAME).is_file():
        raise IndexDamaged(f"No index in {index_dir}.")
    try:
        store = Store(index_dir / STORE_NAME, read_only=True)
        settings = store.settings()
        if settings.get("format") != str(FORMAT_VERSION):
            raise IndexDamaged(f"{index_dir / STORE_NAME} has format {settings.get('format')!r}, not {FORMAT_VERSION}.")
        known = {segment.name: segment for segment in previous.segments} if previous is not None else {}
        removed = store.removed()
        segments = []
        for name, files in sorted(store.segments().items()):
            segment = known.get(name) or Segment.open(index_dir / SEGMENTS_DIR, name, files)
            segments.append(segment.with_removed(np.array(removed.get(name, []), dtype=np.int64)))
        index = Index(index_dir, store, settings, segments)
        [(stored,)] = store.query("SELECT count(*) FROM paragraphs")
    except SegmentDamaged as error:
        raise IndexDamaged(str(error)) from error
    except (sqlite3.DatabaseError, KeyError, ValueError) as error:
        raise IndexDamaged(f"{index_dir / STORE_NAME} is unreadable ({type(error).__name__}: {error}).") from error
    if stored != len(index):
        raise IndexDamaged(f"{index_dir / STORE_NAME} holds {stored} paragraphs, its segments {len(index)}.")
    return index
