"""Embed paragraphs into a FAISS index kept in ``index/``, and keep it in step with the documents.

Files in the index folder:

- ``meta.json``: what the index was built from (embedder, each document's sha256), the paragraphs
  (JSON, never pickle) with their sha256, the name and sha256 of the vectors file. It is the commit point.
- ``vectors-<digest>.faiss``: the FAISS index. Each build writes a new name, then atomically replaces
  ``meta.json``, then removes the old vectors file and whatever a killed build left behind (temp files,
  uncommitted vectors files); a build killed at any point leaves the previous index usable. A lock file
  serialises builders (and loaders) across processes.

Vectors are L2-normalised and searched by inner product (cosine). Small corpora use an exact
``IndexFlatIP``; above ``HNSW_THRESHOLD`` vectors an ``IndexHNSWFlat`` (see benchmarks/bench_search.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.documents.paragraphs import Document, Paragraph, load_paragraphs
from qa.search.embedder import TextEncoder
from qa.search.files import atomic_write_bytes, build_lock, file_sha256

log = logging.getLogger(__name__)

META_NAME = "meta.json"
FORMAT_VERSION = 2  # 2: meta.json carries paragraphs_sha256
# Exact search up to HNSW_THRESHOLD vectors, HNSW above (figures: benchmarks/bench_search.py, 384-d, one
# query per call, one core). Exact IndexFlatIP costs ~0.09 ms per 1k vectors (100k: p50 ~8-9 ms, 1M: ~85 ms),
# so up to 100k it stays under 10 ms with recall 1. HNSW (M=32, efConstruction=80, efSearch=128) at 1M
# clustered vectors (embedding-like: topics): p50 ~0.8 ms, recall@10 0.999 (efSearch 64: 0.45 ms, 0.992;
# 32: 0.918). efSearch 128 leaves a margin for real data, harder than the synthetic clusters. On uniform
# random vectors no graph index reaches recall@10 0.95 under 10 ms (100k: efSearch 2048 gives 0.95 in
# ~14 ms, slower than exact): they have no neighbourhood structure, unlike embeddings.
HNSW_THRESHOLD = 100_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


@dataclass
class Index:
    """A loaded index: the FAISS vectors and the paragraphs they stand for (same order)."""

    vectors: faiss.Index
    paragraphs: list[Paragraph]
    meta: dict

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, paragraph indices) for each query, ``-1`` where fewer than ``k`` exist."""
        k = min(k, len(self.paragraphs))
        if k == 0:
            empty = np.zeros((len(query_vectors), 0))
            return empty, empty.astype(np.int64)
        return self.vectors.search(np.ascontiguousarray(query_vectors, dtype=np.float32), k)


class IndexDamaged(RuntimeError):
    """The index files are missing, unreadable or do not match their checksums."""


def make_faiss_index(vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product search for small corpora, HNSW above ``HNSW_THRESHOLD`` vectors."""
    dimension = vectors.shape[1]
    if len(vectors) > HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dimension)
    index.add(vectors)
    return index


def read_meta(index_dir: Path) -> dict | None:
    """The index's metadata, or None when there is no index yet."""
    path = index_dir / META_NAME
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise IndexDamaged(f"{path} is unreadable ({error}).") from error
    if not isinstance(meta, dict):
        raise IndexDamaged(f"{path} holds a JSON {type(meta).__name__}, not an object.")
    if meta.get("format") != FORMAT_VERSION:
        raise IndexDamaged(f"{path} has format {meta.get('format')!r}, expected {FORMAT_VERSION}.")
    return meta


def load_index(index_dir: str | Path) -> Index:
    """Load and verify an index; raises ``IndexDamaged`` when it is missing or damaged."""
    index_dir = Path(index_dir)
    meta = read_meta(index_dir)
    if meta is None:
        raise IndexDamaged(f"No index in {index_dir}.")
    try:
        return _load_verified(index_dir, meta)
    except (KeyError, TypeError, ValueError) as error:  # fields missing or of the wrong type
        raise IndexDamaged(f"{index_dir / META_NAME} is inconsistent ({type(error).__name__}: {error}).") from error


def _load_verified(index_dir: Path, meta: dict) -> Index:
    if meta.get("paragraphs_sha256") != paragraphs_sha256(meta["paragraphs"]):
        raise IndexDamaged(f"{index_dir / META_NAME}: the paragraphs do not match their checksum.")
    vectors_path = index_dir / meta["vectors_file"]
    if not vectors_path.is_file():
        raise IndexDamaged(f"{vectors_path} is missing.")
    if file_sha256(vectors_path) != meta["vectors_sha256"]:
        raise IndexDamaged(f"{vectors_path} does not match its checksum (truncated or corrupted).")
    try:
        vectors = faiss.read_index(str(vectors_path))
    except RuntimeError as error:
        raise IndexDamaged(f"{vectors_path} is unreadable ({error}).") from error
    paragraphs = [Paragraph(**p) for p in meta["paragraphs"]]
    if vectors.ntotal != len(paragraphs):
        raise IndexDamaged(f"{vectors_path} has {vectors.ntotal} vectors for {len(paragraphs)} paragraphs.")
    if hasattr(vectors, "hnsw"):
        vectors.hnsw.efSearch = HNSW_EF_SEARCH
    return Index(vectors, paragraphs, meta)


def paragraphs_sha256(paragraphs: list[dict]) -> str:
    """Checksum of the paragraphs as stored in ``meta.json`` (canonical JSON)."""
    canonical = json.dumps(paragraphs, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def is_current(meta: dict | None, documents: list[Document], embedder: TextEncoder) -> bool:
    """True when ``meta`` was built from exactly these documents with this embedder."""
    return (
        meta is not None
        and same_embedder(meta, embedder)
        and meta.get("documents") == {doc.doc_id: doc.sha256 for doc in documents}
    )


def same_embedder(meta: dict, embedder: TextEncoder) -> bool:
    """Whether the index's vectors come from ``embedder``: the same model by content (``model_identity``),
    wherever each lies; an index written before identities were recorded, by the same folder or hub id."""
    if "embedder_identity" in meta:
        return meta["embedder_identity"] == embedder.identity
    return meta.get("embedder") == embedder.name


def build_index(
    documents: list[Document],
    paragraphs: list[Paragraph],
    embedder: TextEncoder,
    index_dir: str | Path,
    progress: bool = False,
) -> Index:
    """Embed ``paragraphs`` and write a new index, reusing vectors of unchanged documents.

    Call it under ``build_lock``. Writes the vectors file under a new name, then ``meta.json``
    atomically, then removes the previous vectors file and the leftovers of killed builds.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    vectors = embed_with_reuse(paragraphs, embedder, index_dir, progress)
    faiss_index = make_faiss_index(vectors) if len(vectors) else faiss.IndexFlatIP(embedder.dimension)
    data = faiss.serialize_index(faiss_index).tobytes()
    digest = hashlib.sha256(data).hexdigest()
    vectors_file = f"vectors-{digest[:16]}.faiss"
    atomic_write_bytes(index_dir / vectors_file, data)
    stored_paragraphs = [asdict(p) for p in paragraphs]
    meta = {
        "format": FORMAT_VERSION,
        "embedder": embedder.name,  # where it was loaded from, for people; the identity decides
        "embedder_identity": embedder.identity,
        "dimension": embedder.dimension,
        "kind": type(faiss_index).__name__,
        "documents": {doc.doc_id: doc.sha256 for doc in documents},
        "vectors_file": vectors_file,
        "vectors_sha256": digest,
        "paragraphs_sha256": paragraphs_sha256(stored_paragraphs),
        "paragraphs": stored_paragraphs,
    }
    write_meta(index_dir, meta)
    remove_stale_files(index_dir, keep=vectors_file)
    log.info("Indexed %d paragraphs from %d documents into %s.", len(paragraphs), len(documents), index_dir)
    return Index(faiss_index, paragraphs, meta)


def write_meta(index_dir: Path, meta: dict) -> None:
    """Commit ``meta`` as the index's ``meta.json`` (atomically: the commit point of a build)."""
    atomic_write_bytes(index_dir / META_NAME, json.dumps(meta, ensure_ascii=False).encode("utf-8"))


def remove_stale_files(index_dir: Path, keep: str) -> None:
    """Delete every vectors file but ``keep`` (the previous index's, and any that a killed build wrote but
    never committed) and the temp files of killed builds. Call it under ``build_lock``, after committing
    ``meta.json``: no other builder or loader is then using these files."""
    for path in [*index_dir.glob(".*.tmp"), *index_dir.glob("vectors-*.faiss")]:
        if path.name != keep:
            log.debug("Removing %s.", path)
            path.unlink(missing_ok=True)


def embed_with_reuse(paragraphs: list[Paragraph], embedder: TextEncoder, index_dir: Path, progress: bool) -> np.ndarray:
    """Vectors for ``paragraphs``; those whose text and offsets are already in a sound index with the
    same embedder are copied from it instead of being embedded again."""
    reusable: dict[tuple, np.ndarray] = {}
    try:
        old = load_index(index_dir)
        if same_embedder(old.meta, embedder):
            stored = old.vectors.reconstruct_n(0, old.vectors.ntotal)
            reusable = {_paragraph_key(p): stored[i] for i, p in enumerate(old.paragraphs)}
    except (IndexDamaged, RuntimeError):
        pass
    vectors = np.zeros((len(paragraphs), embedder.dimension), dtype=np.float32)
    missing = []
    for i, paragraph in enumerate(paragraphs):
        stored_vector = reusable.get(_paragraph_key(paragraph))
        if stored_vector is None:
            missing.append(i)
        else:
            vectors[i] = stored_vector
    if missing:
        vectors[missing] = embedder.encode([paragraphs[i].text for i in missing], progress=progress)
    return vectors


def _paragraph_key(paragraph: Paragraph) -> tuple:
    return (paragraph.doc_id, paragraph.start, paragraph.end, paragraph.text)


def open_index(
    documents_dir: str | Path,
    index_dir: str | Path,
    embedder: TextEncoder,
    progress: bool = False,
    force: bool = False,
) -> Index:
    """The index for the documents as they are now: loaded when current, (re)built when the documents
    or the embedder changed, when it is missing or when it is damaged (with a warning saying why)."""
    index_dir = Path(index_dir)
    documents, paragraphs = load_paragraphs(documents_dir)
    with build_lock(index_dir):
        if not force:
            try:
                meta = read_meta(index_dir)
                if is_current(meta, documents, embedder):
                    if "embedder_identity" not in meta:  # written before identities: record it, so it travels
                        meta["embedder_identity"] = embedder.identity
                        write_meta(index_dir, meta)
                    return load_index(index_dir)
            except IndexDamaged as error:
                log.warning("Rebuilding the index: %s", error)
        return build_index(documents, paragraphs, embedder, index_dir, progress)
