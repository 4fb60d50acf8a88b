"""Find the paragraphs most likely to answer a question: dense + BM25, fused by reciprocal rank.

Dense retrieval catches paraphrases; BM25 catches the names and numbers ("Tabqa", "700") that
sentence embeddings blur. Reciprocal rank fusion (RRF) adds ``1 / (RRF_K + rank)`` from each list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import bm25s

from qa.documents.paragraphs import Paragraph
from qa.search.embedder import Embedder
from qa.search.index import Index

logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets its logger to DEBUG: "Building index..." lines

# The RRF constant: small, so that the top few of each list lead (3 paragraphs are read). Recall@1/@3/@5 of the
# gold paragraph, 3,000 answerable questions of the shipped reader's held-out training articles (2,149 paragraphs):
# k=60 (the usual constant) 76.1 / 88.5 / 91.4, k=5 76.6 / 89.8 / 92.6, k=2 76.9 / 90.4 / 92.8, k=0 76.5 / 89.7 /
# 92.7; on SQuAD dev (1,480 questions, 319 paragraphs) k=60 77.4 / 92.8 / 96.0, k=2 78.9 / 94.4 / 97.0. End to end
# (qa reader eval-corpus) k=60 -> 2: held-out articles F1 74.9 -> 75.5, dev 59.0 -> 58.9 (more of SQuAD's unanswerable
# questions meet the paragraph they were written against); the seed sets' F1 unchanged.
RRF_K = 2


@dataclass(frozen=True)
class Hit:
    """A retrieved paragraph with its fused score and the scores/ranks it had in each list (1-based)."""

    paragraph: Paragraph
    score: float
    dense_score: float | None
    dense_rank: int | None
    bm25_score: float | None
    bm25_rank: int | None


class Retriever:
    """Hybrid retrieval over one loaded ``Index``."""

    def __init__(self, index: Index, embedder: Embedder, candidates: int = 20):
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.bm25 = bm25s.BM25()
        if index.paragraphs:
            corpus = bm25s.tokenize([p.text for p in index.paragraphs], stopwords="en", show_progress=False)
            self.bm25.index(corpus, show_progress=False)

    def retrieve(self, query: str, top_k: int = 3) -> list[Hit]:
        """The ``top_k`` best paragraphs for ``query``, best first."""
        paragraphs = self.index.paragraphs
        depth = min(max(self.candidates, top_k), len(paragraphs))
        if depth == 0:
            return []
        dense, lexical = self.rankings(query, depth)
        fused = fuse((dense, lexical))
        best = list(fused)[:top_k]
        return [
            Hit(
                paragraph=paragraphs[position],
                score=fused[position],
                dense_score=dense.get(position),
                dense_rank=_rank_of(dense, position),
                bm25_score=lexical.get(position),
                bm25_rank=_rank_of(lexical, position),
            )
            for position in best
        ]

    def rankings(self, query: str, depth: int) -> tuple[dict[int, float], dict[int, float]]:
        """The dense and the BM25 ranking of ``query``'s ``depth`` best paragraphs: position -> score, best first."""
        return self._dense(query, depth), self._bm25(query, depth)

    def _dense(self, query: str, depth: int) -> dict[int, float]:
        """Paragraph position -> cosine score, in rank order."""
        scores, positions = self.index.search(self.embedder.encode([query]), depth)
        return {int(p): float(s) for p, s in zip(positions[0], scores[0]) if p >= 0}

    def _bm25(self, query: str, depth: int) -> dict[int, float]:
        """Paragraph position -> BM25 score, in rank order; paragraphs sharing no term are left out."""
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        if not tokens[0]:
            return {}
        positions, scores = self.bm25.retrieve(tokens, k=depth, show_progress=False)
        return {int(p): float(s) for p, s in zip(positions[0], scores[0]) if s > 0}


def fuse(rankings: Iterable[dict[int, float]], constant: float = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: paragraph position -> the sum over ``rankings`` of ``1 / (constant + rank)``, best
    first (ties by position)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, position in enumerate(ranking, start=1):
            fused[position] = fused.get(position, 0.0) + 1.0 / (constant + rank)
    return dict(sorted(fused.items(), key=lambda item: (-item[1], item[0])))


def _rank_of(ranking: dict[int, float], position: int) -> int | None:
    for rank, candidate in enumerate(ranking, start=1):
        if candidate == position:
            return rank
    return None
