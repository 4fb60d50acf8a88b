"""Find the paragraphs most likely to answer a question: dense + BM25, fused by reciprocal rank.

Dense retrieval catches paraphrases; BM25 catches the names and numbers ("Tabqa", "700") that
sentence embeddings blur. Reciprocal rank fusion (RRF) adds ``1 / (RRF_K + rank)`` from each list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qa.documents.paragraphs import Paragraph
from qa.search.embedder import Embedder
from qa.search.index import Index

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
    """Hybrid retrieval over one opened ``Index``."""

    def __init__(self, index: Index, embedder: Embedder, candidates: int = 20):
        self.index = index
        self.embedder = embedder
        self.candidates = candidates

    def retrieve(self, query: str, top_k: int = 3) -> list[Hit]:
        """The ``top_k`` best paragraphs for ``query``, best first."""
        depth = min(max(self.candidates, top_k), len(self.index))
        if depth == 0:
            return []
        dense, lexical = self.rankings(query, depth)
        fused = fuse((dense, lexical))
        best = list(fused)[:top_k]
        paragraphs = self.index.paragraphs_at(best)  # a row a later commit removed is left out
        return [
            Hit(
                paragraph=paragraphs[row],
                score=fused[row],
                dense_score=dense.get(row),
                dense_rank=_rank_of(dense, row),
                bm25_score=lexical.get(row),
                bm25_rank=_rank_of(lexical, row),
            )
            for row in best
            if row in paragraphs
        ]

    def rankings(self, query: str, depth: int) -> tuple[dict[int, float], dict[int, float]]:
        """The dense and the BM25 ranking of ``query``'s ``depth`` best paragraphs: row -> score, best first."""
        scores, rows = self.index.search(self.embedder.encode([query]), depth)
        dense = {int(row): float(score) for row, score in zip(rows[0], scores[0]) if row >= 0}
        return dense, self.index.lexical(query, depth)


def fuse(rankings: Iterable[dict[int, float]], constant: float = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: paragraph row -> the sum over ``rankings`` of ``1 / (constant + rank)``, best
    first (ties by row)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (constant + rank)
    return dict(sorted(fused.items(), key=lambda item: (-item[1], item[0])))


def _rank_of(ranking: dict[int, float], row: int) -> int | None:
    for rank, candidate in enumerate(ranking, start=1):
        if candidate == row:
            return rank
    return None
