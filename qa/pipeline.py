"""The ``QA`` class wires the stages: documents -> index -> retriever -> reader -> ``Answer``.

Models and the index load once, lazily, on the first question, and are reused. Before each question
the documents folder is checked (file names, sizes, mtimes: cheap) and the index is brought up to date
when anything changed, so answers never come from a stale index.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from qa.chat import History, contextual_query
from qa.documents import document_paths
from qa.index import Embedder, Index, open_index
from qa.read import Reader
from qa.retrieve import Hit, Retriever

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
NO_ANSWER = "I could not find that in the documents."
DEFAULT_TOP_K = 3
# Read the best-ranked passage alone first and skip the others when its span's margin (span logit minus null
# logit) reaches this: the reader prefers that span to "no answer". Chosen on the reader's held-out SQuAD
# training articles (benchmarks/bench_early_stop.py, 880 questions, top_k 3, shipped reader): F1 45.8 vs 43.7
# when reading all three (the retriever's first choice breaks near-ties well); one passage read for 60% of
# the questions. Higher margins score between the two.
DEFAULT_STOP_MARGIN = 0.0


class QuestionError(ValueError):
    """The question cannot be answered as given (empty, too long); the message says why."""


@dataclass(frozen=True)
class Citation:
    """Where an answer is written: ``passage[start:end]`` is the answer text."""

    doc_id: str
    paragraph: int
    start: int  # char offset of the answer in ``passage``
    end: int
    passage: str
    score: float = 0.0  # the reader's confidence margin for this span


@dataclass(frozen=True)
class Answer:
    """The reader's answer ("" when the documents do not answer) with its citations, best first."""

    text: str
    score: float
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # the retrieved paragraphs, best first
    query: str = ""  # what was sent to the retriever (the question, plus context for follow-ups)
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return bool(self.text)

    @property
    def message(self) -> str:
        return self.text or NO_ANSWER


def without_controls(text: str) -> str:
    """``text`` with control characters, lone surrogates and line/paragraph separators turned into spaces,
    and white space collapsed."""
    return " ".join("".join(" " if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") else ch for ch in text).split())


def clean_question(question: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """A question fit for the models: control characters and invalid surrogates removed, white space
    collapsed. Raises ``QuestionError`` when nothing visible is left (no letter, digit, punctuation or
    symbol) or it is longer than ``max_chars``."""
    if not isinstance(question, str):
        raise QuestionError("Please type a question.")
    if len(question) > max_chars * 4:  # refuse before any per-character work grows with it
        raise QuestionError(f"Your question is too long ({len(question)} characters, limit {max_chars}).")
    question = without_controls(question)
    if not any(unicodedata.category(ch)[0] in "LNPS" for ch in question):  # nothing visible to read
        raise QuestionError("Please type a question.")
    if len(question) > max_chars:
        raise QuestionError(f"Your question is too long ({len(question)} characters, limit {max_chars}).")
    return question


class QA:
    """Question answering over a folder of documents.

    ``embedder`` / ``reader``: a hub id or folder (default: the packaged models). ``top_k``: passages
    retrieved per question. ``threshold``: the reader's no-answer margin (default: its card's).
    ``stop_margin``: skip the lower-ranked passages when the top one's span is this confident (None: always
    read all ``top_k``). ``backend``: "onnx" (default on CPU for local folders) or "torch", see ``qa/runtime.py``.

    >>> qa = QA(documents_dir="seeds", index_dir="index")
    >>> qa.answer("Where did the meeting take place?").text
    'Ayn Issa'
    """

    def __init__(
        self,
        documents_dir: str | Path = "seeds",
        index_dir: str | Path = "index",
        embedder: str | None = None,
        reader: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        threshold: float | None = None,
        stop_margin: float | None = DEFAULT_STOP_MARGIN,
        backend: str | None = None,
    ):
        self.documents_dir = Path(documents_dir)
        self.index_dir = Path(index_dir)
        self.embedder_name = embedder
        self.reader_name = reader
        self.top_k = top_k
        self.threshold_override = threshold
        self.stop_margin = stop_margin
        self.backend = backend
        self._lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._reader: Reader | None = None
        self._retriever: Retriever | None = None
        self._fingerprint: tuple | None = None

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.embedder_name, backend=self.backend)
            return self._embedder

    @property
    def reader(self) -> Reader:
        with self._lock:
            if self._reader is None:
                self._reader = Reader(self.reader_name, threshold=self.threshold_override, backend=self.backend)
            return self._reader

    def index(self, force: bool = False, progress: bool = False) -> Index:
        """Bring the index up to date with the documents (rebuild when forced) and return it."""
        with self._lock:
            fingerprint = self._documents_fingerprint()
            if force or self._retriever is None or fingerprint != self._fingerprint:
                index = open_index(self.documents_dir, self.index_dir, self.embedder, progress=progress, force=force)
                self._retriever = Retriever(index, self.embedder)
                self._fingerprint = fingerprint
            return self._retriever.index

    def retrieve(self, query: str, top_k: int | None = None) -> list[Hit]:
        """The paragraphs most relevant to ``query``, best first."""
        self.index()
        return self._retriever.retrieve(query, top_k or self.top_k)

    def answer(self, question: str, history: History | None = None, top_k: int | None = None) -> Answer:
        """Answer ``question`` from the documents; ``history`` (earlier turns) resolves follow-ups."""
        started = time.perf_counter()
        question = clean_question(question)
        query = without_controls(contextual_query(question, history))  # earlier turns are user text too
        hits = self.retrieve(query, top_k)
        reader = self.reader
        spans = reader.read(question, [hit.paragraph.text for hit in hits], stop_margin=self.stop_margin)
        citations = [
            Citation(
                doc_id=hits[span.passage_index].paragraph.doc_id,
                paragraph=hits[span.passage_index].paragraph.paragraph,
                start=span.start,
                end=span.end,
                passage=hits[span.passage_index].paragraph.text,
                score=span.score,
            )
            for span in spans
            if span.is_answer(reader.threshold)
        ]
        best = spans[0] if spans else None
        return Answer(
            text=best.text if citations else "",
            score=best.score if best else float("-inf"),
            citations=citations,
            hits=hits,
            query=query,
            seconds=time.perf_counter() - started,
        )

    def _documents_fingerprint(self) -> tuple:
        """Names, sizes and modification times of the documents: changes when any file does."""
        entries = []
        for path in document_paths(self.documents_dir):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(entries)


_default: QA | None = None
_default_lock = threading.Lock()


def default_qa() -> QA:
    """The shared ``QA`` over ``seeds/`` and ``index/`` in the working directory."""
    global _default
    with _default_lock:
        if _default is None:
            _default = QA()
        return _default


def answer(question: str, history: History | None = None, top_k: int = DEFAULT_TOP_K) -> Answer:
    """Answer ``question`` from the documents in ``seeds/`` (index in ``index/``), with citations."""
    return default_qa().answer(question, history=history, top_k=top_k)
