"""BM25 over postings written once per segment and read memory-mapped, scored when asked.

A segment's postings say, for each term (by a 64-bit hash of it), which of the segment's paragraphs hold it and
how often, and each paragraph's length in terms. Nothing corpus-wide is stored: the document frequencies, the
number of paragraphs and their mean length are summed over the segments at question time, leaving out removed
paragraphs. So adding or removing a document writes only its own postings, and the scores stay exactly those of
one BM25 index over the whole library: the ranking bm25s gave (its "lucene" variant, k1 1.5, b 0.75, English
stop words; tests/test_retrieve.py checks the scores against bm25s itself).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKEN = re.compile(r"(?u)\b\w\w+\b")
# bm25s's English stop words (``bm25s.stopwords.STOPWORDS_EN``; tests/test_retrieve.py checks they are the same),
# written out: importing bm25s costs ~0.2 s of every start (it loads scipy).
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split()
)
K1 = 1.5
B = 0.75
FILES = ("hashes", "starts", "docs", "counts", "lengths")


def terms(text: str) -> list[str]:
    """The terms BM25 sees in ``text``: lower-cased words of two characters or more, stop words left out."""
    return [token for token in TOKEN.findall(text.lower()) if token not in STOPWORDS]


def term_hash(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Postings:
    """One segment's postings: for term ``hashes[i]``, the paragraphs ``docs[starts[i]:starts[i + 1]]`` (local ids)
    hold it ``counts[...]`` times; ``lengths[d]`` is paragraph ``d``'s length in terms."""

    hashes: np.ndarray  # uint64, sorted
    starts: np.ndarray  # int64, len(hashes) + 1
    docs: np.ndarray  # int32
    counts: np.ndarray  # float32
    lengths: np.ndarray  # float32, one per paragraph of the segment

    @classmethod
    def of_texts(cls, texts: Sequence[str]) -> Postings:
        """Postings of ``texts`` (local id = position)."""
        hash_of: dict[str, int] = {}
        posting_hashes, docs, counts = [], [], []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for doc, text in enumerate(texts):
            found = Counter(terms(text))
            lengths[doc] = max(sum(found.values()), 1)  # bm25s counts an empty paragraph as one (empty) term
            for term, count in found.items():
                if term not in hash_of:
                    hash_of[term] = term_hash(term)
                posting_hashes.append(hash_of[term])
                docs.append(doc)
                counts.append(count)
        return cls.of_arrays(
            np.array(posting_hashes, dtype=np.uint64),
            np.array(docs, dtype=np.int32),
            np.array(counts, dtype=np.float32),
            lengths,
        )

    @classmethod
    def of_arrays(
        cls, posting_hashes: np.ndarray, docs: np.ndarray, counts: np.ndarray, lengths: np.ndarray
    ) -> Postings:
        """Postings from one entry per (term, paragraph), in any order."""
        order = np.lexsort((docs, posting_hashes))
        posting_hashes = posting_hashes[order]
        hashes, firsts = np.unique(posting_hashes, return_index=True)
        starts = np.append(firsts, len(posting_hashes)).astype(np.int64)
        return cls(hashes.astype(np.uint64), starts, docs[order], counts[order], lengths.astype(np.float32))

    @classmethod
    def merged(cls, parts: Iterable[tuple[Postings, np.ndarray]]) -> Postings:
        """One segment's postings from ``(postings, kept local ids)`` pairs, renumbered in that order."""
        all_hashes, all_docs, all_counts, all_lengths = [], [], [], []
        offset = 0
        for postings, kept in parts:
            new_id = np.full(len(postings.lengths), -1, dtype=np.int64)
            new_id[kept] = np.arange(offset, offset + len(kept))
            per_posting = np.repeat(postings.hashes, np.diff(postings.starts))
            alive = new_id[postings.docs] >= 0
            all_hashes.append(per_posting[alive])
            all_docs.append(new_id[postings.docs][alive].astype(np.int32))
            all_counts.append(np.asarray(postings.counts)[alive])
            all_lengths.append(np.asarray(postings.lengths)[kept])
            offset += len(kept)
        if not all_lengths:
            return cls.of_texts([])
        return cls.of_arrays(*(np.concatenate(parts) for parts in (all_hashes, all_docs, all_counts, all_lengths)))

    def save(self, folder: Path) -> list[Path]:
        """Write one ``.npy`` file per array into ``folder``; returns their paths."""
        paths = []
        for name in FILES:
            path = folder / f"{name}.npy"
            np.save(path, getattr(self, name), allow_pickle=False)
            paths.append(path)
        return paths

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """The postings saved in ``folder``, memory-mapped (read only, never unpickled)."""
        return cls(*(np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in FILES))

    def find(self, hash_value: int) -> tuple[np.ndarray, np.ndarray]:
        """(local ids, counts) of the paragraphs holding the term."""
        at = int(np.searchsorted(self.hashes, np.uint64(hash_value)))
        if at == len(self.hashes) or int(self.hashes[at]) != hash_value:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        start, end = int(self.starts[at]), int(self.starts[at + 1])
        return np.asarray(self.docs[start:end]), np.asarray(self.counts[start:end])


@dataclass(frozen=True)
class Part:
    """A segment as BM25 sees it: its postings, its global row per local id, which local ids are alive."""

    postings: Postings
    rows: np.ndarray
    alive: np.ndarray | None  # bool per local id; None: all alive


def bm25(query: str, parts: Sequence[Part], paragraphs: int, total_length: float, depth: int) -> dict[int, float]:
    """Row -> BM25 score of the ``depth`` best paragraphs sharing a term with ``query``, best first (ties: the later
    row first, the order bm25s gave them in every figure measured so far). ``paragraphs`` and ``total_length`` are
    the alive paragraphs' count and summed length."""
    query_terms = Counter(terms(query))
    if not query_terms or paragraphs == 0:
        return {}
    mean_length = total_length / paragraphs
    rows, scores = [], []
    for term, repeats in query_terms.items():
        found = [_postings_of(part, term_hash(term)) for part in parts]
        frequency = sum(len(term_rows) for term_rows, _, _ in found)
        if frequency == 0:
            continue
        idf = math.log(1 + (paragraphs - frequency + 0.5) / (frequency + 0.5))
        for term_rows, counts, lengths in found:
            norm = K1 * ((1 - B) + B * lengths / mean_length)
            rows.append(term_rows)
            scores.append(repeats * idf * counts / (norm + counts))  # a repeated query word counts again
    if not rows:
        return {}
    unique_rows, inverse = np.unique(np.concatenate(rows), return_inverse=True)
    totals = np.bincount(inverse, weights=np.concatenate(scores))
    best = _top(unique_rows, totals, min(depth, len(totals)))
    return {int(unique_rows[i]): float(totals[i]) for i in best}


def _top(rows: np.ndarray, totals: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the ``depth`` highest totals, best first, ties by row (later first), without sorting all."""
    cut = np.partition(totals, len(totals) - depth)[len(totals) - depth]
    candidates = np.flatnonzero(totals >= cut)
    return candidates[np.lexsort((-rows[candidates], -totals[candidates]))][:depth]


def _postings_of(part: Part, hash_value: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(global rows, counts, lengths) of the alive paragraphs of ``part`` that hold the term."""
    docs, counts = part.postings.find(hash_value)
    if part.alive is not None:
        keep = part.alive[docs]
        docs, counts = docs[keep], counts[keep]
    return np.asarray(part.rows[docs]), counts, np.asarray(part.postings.lengths[docs])
