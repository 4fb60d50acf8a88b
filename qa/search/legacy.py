"""Indexes written before the store (format 2: one ``meta.json`` with every paragraph, one ``vectors-*.faiss``).

The first open of such a folder rebuilds it as a store (``qa/search/sync.py``), converting the documents again but
taking every vector from the old files when they were embedded by the same model: no paragraph is embedded again.
The old files are removed once the store is committed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import faiss
import numpy as np

from qa.search.embedder import TextEncoder
from qa.search.index import Lender

log = logging.getLogger(__name__)

LEGACY_META = "meta.json"
LEGACY_FORMAT = 2


def legacy_vectors(index_dir: Path, embedder: TextEncoder) -> Lender:
    """A lender of the vectors of a format-2 index in ``index_dir``; it lends
    nothing when there is none, or it is unreadable, or another model embedded it."""
    stored: dict[str, np.ndarray] = {}
    path = index_dir / LEGACY_META
    if path.is_file():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            same_model = (
                meta["embedder_identity"] == embedder.identity
                if "embedder_identity" in meta
                else meta["embedder"] == embedder.name
            )
            if meta["format"] == LEGACY_FORMAT and same_model:
                vectors = faiss.read_index(str(index_dir / meta["vectors_file"]))
                texts = [paragraph["text"] for paragraph in meta["paragraphs"]]
                if vectors.ntotal == len(texts):
                    stored = dict(zip(texts, vectors.reconstruct_n(0, vectors.ntotal)))
            log.warning(
                "Converting the index in %s to the store format (%d stored vectors kept).", index_dir, len(stored)
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            log.warning("The old index in %s is unreadable (%s): its documents are embedded again.", index_dir, error)
    return lambda doc_ids: stored


def remove_legacy(index_dir: Path) -> None:
    """Delete a format-2 index's files (after the store replacing it is committed)."""
    for path in [
        index_dir / LEGACY_META,
        *index_dir.glob("vectors-*.faiss"),
        *index_dir.glob(".meta.json.*.tmp"),
        *index_dir.glob(".vectors-*.tmp"),
    ]:
        path.unlink(missing_ok=True)
