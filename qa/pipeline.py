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
from pathlib import Path

from qa.conversation.chat import History, understand
from qa.conversation.readings import DEFAULT_READINGS, choose_reading
from qa.documents.library import DEFAULT_LIBRARY, library_folder
from qa.documents.paragraphs import Paragraph, folder_fingerprint
from qa.reading.answers import Answer, Citation
from qa.reading.confidence import with_confidence
from qa.reading.reader import Reader, Span
from qa.search.embedder import Embedder, TextEncoder
from qa.search.index import Index
from qa.search.retriever import Hit, Retriever
from qa.search.sync import Converter, open_index

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
QUESTION_ENDS = ("?", "\uff1f", ".", "!")  # see as_asked
# Paragraphs read per question. 5 instead of 3 (shipped reader, its stored threshold and stop margin, RRF 60)
# finds more answers and answers more unanswerable questions: end to end on its held-out training articles F1
# 74.9 -> 75.5 (HasAns 60.4 -> 61.6, NoAns 98.6 -> 98.1), on SQuAD dev 59.0 -> 59.1 (65.8 -> 66.9, 48.9 -> 47.5),
# the seed sets unchanged, for up to 5 paragraphs read instead of 3 where the top one is not conclusive (58%).
DEFAULT_TOP_K = 3
# Read the best-ranked passage alone first and skip the others when its span's margin (span logit minus null
# logit) reaches the stop margin: the reader's card stores the one chosen for it on end-to-end F1 over its
# held-out training articles (``qa reader eval-corpus --choose``); this is the fallback for readers without one.
DEFAULT_STOP_MARGIN = 0.0
# Without an answer, the best candidate is shown as evidence when its margin is within this of the threshold.
# benchmarks/bench_evidence.py (seed + out-of-corpus questions, 300 SQuAD dev questions end to end): a window
# of 2 gives evidence for half of the declined answerable questions (its F1 54) while showing a passage for
# 1 of 6 unanswerable seed questions, 2 of 16 out-of-corpus ones and 18% of SQuAD's unanswerables; 4 would
# reach 2 in 3 declined answerable questions but mislead on a third of the unanswerable ones. Re-measured on
# held-out training articles instead of dev (``--corpus`` the lineage's calibration.json, ``--limit 1500``):
# windows 1 / 2 / 3 give evidence to 51 / 76 / 116 of 256 declined answerable questions (F1 35.3 / 42.8 /
# 40.9) and a passage to 4 / 5 / 10 of 58 unanswerable ones: 2.0 kept.
EVIDENCE_WINDOW = 2.0
# The reader answers one question at a time on one ONNX Runtime thread. On the 2-core machine, the 45 seed
# questions x 3 through ``QA.answer`` take p50 27-30 ms on 1 thread against 50 ms on 2 (two runs each): its small
# batches gain nothing from a second thread. Bulk reading (``qa reader eval``) keeps every thread.
ANSWER_THREADS = 1


class QuestionError(ValueError):
    """The question cannot be answered as given (empty, too long); the message says why."""


class Unavailable(RuntimeError):
    """The answering service cannot take the question now (overloaded); the message says so."""


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


def as_asked(question: str) -> str:
    """``question`` ending in a question mark, as the reader's training questions do ("who leads the SDF" ->
    "who leads the SDF?"); one that ends in a question mark, "." or "!" is left as it is.

    SQuAD's questions end in "?", users often leave it out, and both models notice: the whole SQuAD dev set
    end to end without its "?"s (``benchmarks/bench_question_mark.py``) scores F1 58.9 as typed, 59.8 with the
    "?" given back to the reader and the retrieval query (``QA.retrieve``), as the questions as written."""
    question = question.rstrip()
    return question if not question or question.endswith(QUESTION_ENDS) else question + "?"


class QA:
    """Question answering over a folder of documents.

    ``documents_dir``: the library (default ``library/``, see ``qa.documents.library``); ``index_dir``: its index.
    ``embedder`` / ``reader``: a hub id or folder (default: the packaged models). ``top_k``: passages
    retrieved per question. ``threshold``: the reader's no-answer margin (default: its card's).
    ``stop_margin``: skip the lower-ranked passages when the top one's span is this confident (default: the
    reader card's, else ``DEFAULT_STOP_MARGIN``; ``float("inf")``: always read all ``top_k``).
    ``backend``: "onnx" (default on CPU for local folders) or "torch", see ``qa/models/runtime.py``.
    ``bulk_encoder``: what embeds the paragraphs when the index is (re)built, e.g. ``qa.serving.cluster.RayEmbedder``
    (default: the embedder, in this process); it must be the same model as ``embedder``. ``bulk_converter``: what
    converts changed documents, e.g. ``qa.serving.conversion.RayConverter`` (default: this process).
    ``readings``: how many readings of a follow-up the documents choose among (1: the rules' reading alone).
    ``min_confidence``: answer only when the answer is at least this likely right (default: the reader card's,
    chosen end to end on held-out training articles; none for a reader without a confidence model).

    >>> qa = QA(documents_dir="library", index_dir="index")
    >>> qa.answer("Where did the meeting take place?").text
    'Ayn Issa'
    """

    def __init__(
        self,
        documents_dir: str | Path | None = None,
        index_dir: str | Path = "index",
        embedder: str | None = None,
        reader: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        threshold: float | None = None,
        stop_margin: float | None = None,
        backend: str | None = None,
        evidence_window: float = EVIDENCE_WINDOW,
        bulk_encoder: TextEncoder | None = None,
        bulk_converter: Converter | None = None,
        readings: int = DEFAULT_READINGS,
        min_confidence: float | None = None,
    ):
        self.documents_dir = Path(documents_dir) if documents_dir is not None else DEFAULT_LIBRARY
        self._library_started = documents_dir is not None  # the default one starts (with the sample) in ``index``
        self.index_dir = Path(index_dir)
        self.embedder_name = embedder
        self.reader_name = reader
        self.top_k = top_k
        self.threshold_override = threshold
        self.stop_margin_override = stop_margin
        self.backend = backend
        self.evidence_window = evidence_window
        self.bulk_encoder, self.bulk_converter = bulk_encoder, bulk_converter
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence is a probability between 0 and 1, not {min_confidence}.")
        if readings < 1:
            raise ValueError(f"readings must be at least 1, not {readings}.")
        self.readings = readings
        self.min_confidence_override = min_confidence
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
                self._reader = Reader(
                    self.reader_name, threshold=self.threshold_override, backend=self.backend, threads=ANSWER_THREADS
                )
            return self._reader

    @property
    def min_confidence(self) -> float | None:
        """The confidence an answer needs (None: the margin threshold alone decides)."""
        if self.min_confidence_override is not None:
            return self.min_confidence_override
        stored = self.reader.card.get("min_confidence")  # the model is parsed once, with the reader
        return float(stored) if stored is not None and self.reader.confidence_model is not None else None

    @property
    def stop_margin(self) -> float:
        """The early-stop margin in force (``inf``: every retrieved passage is read)."""
        if self.stop_margin_override is not None:
            return self.stop_margin_override
        stored = self.reader.card.get("stop_margin", DEFAULT_STOP_MARGIN)
        return float("inf") if stored is None else float(stored)  # a card stores "read all" as null

    def index(self, force: bool = False, progress: bool = False) -> Index:
        """Bring the index up to date with the documents (rebuild when forced) and return it."""
        with self._lock:
            if not self._library_started:
                library_folder()
                self._library_started = True
            fingerprint = folder_fingerprint(self.documents_dir)
            if force or self._retriever is None or fingerprint != self._fingerprint:
                encoder = self.bulk_encoder or self.embedder
                if encoder.name != self.embedder.name:
                    raise ValueError(f"bulk_encoder runs {encoder.name}, the embedder {self.embedder.name}.")
                current = self._retriever.index if self._retriever is not None else None
                index = open_index(
                    self.documents_dir, self.index_dir, encoder, progress, force, current, self.bulk_converter
                )
                self._retriever = Retriever(index, self.embedder)
                self._fingerprint = fingerprint
            return self._retriever.index

    def retrieve(self, query: str, top_k: int | None = None) -> list[Hit]:
        """The paragraphs most relevant to ``query`` (a "?" added where it has none: ``as_asked``), best first."""
        return self.retrieve_each([query], top_k)[0]

    def retrieve_each(self, queries: list[str], top_k: int | None = None) -> list[list[Hit]]:
        """``retrieve`` for each query (a follow-up's readings), the documents folder checked once."""
        self.index()
        return [self._retriever.retrieve(as_asked(query), top_k or self.top_k) for query in queries]

    def answer(self, question: str, history: History | None = None, top_k: int | None = None) -> Answer:
        """Answer ``question`` from the documents; ``history`` (earlier turns) resolves follow-ups."""
        started = time.perf_counter()
        question = clean_question(question)
        readings = [  # history is user text
            (without_controls(understood), without_controls(query))
            for understood, query in understand(question, history, self.readings)
        ]
        retrieved = self.retrieve_each([query for _, query in readings], top_k)
        chosen, clarify, first = 0, (), None
        if len(readings) > 1 and all(retrieved):
            questions = [as_asked(understood) for understood, _ in readings]
            top_passages = [hits[0].paragraph.text for hits in retrieved]
            chosen, rival, first = choose_reading(self.reader, questions, top_passages)
            clarify = (readings[chosen][0], readings[rival][0]) if rival is not None else ()
        (understood, query), hits = readings[chosen], retrieved[chosen]
        reader = self.reader
        stop_margin = self.stop_margin if self.stop_margin < float("inf") else None
        passages = [hit.paragraph.text for hit in hits]
        spans = reader.read(as_asked(understood), passages, stop_margin=stop_margin, first=first)
        candidates = [cite(hits[span.passage_index].paragraph, span) for span in spans if span.text]
        candidates = with_confidence(reader.confidence_model, understood, candidates, hits)
        needed = self.min_confidence

        def passes(candidate: Citation) -> bool:
            return candidate.score > reader.threshold and candidate.confidence >= (needed or 0.0)

        # the best span decides: answered when it passes, with every other span that passes as a citation
        citations = [c for c in candidates if passes(c)] if candidates and passes(candidates[0]) else []
        evidence = [] if citations else [c for c in candidates if c.score > reader.threshold - self.evidence_window]
        return Answer(
            text=citations[0].text if citations else "",
            score=spans[0].score if spans else float("-inf"),
            citations=citations,
            hits=hits,
            query=query,
            question=understood,
            asked=question,
            seconds=time.perf_counter() - started,
            candidates=candidates,
            evidence=evidence[:1],
            threshold=reader.threshold,
            clarify=clarify,
            calibrated=reader.confidence_model is not None,
            min_confidence=needed,
        )


def cite(paragraph: Paragraph, span: Span) -> Citation:
    """A span the reader found in ``paragraph``, as a citation."""
    return Citation(
        doc_id=paragraph.doc_id,
        paragraph=paragraph.paragraph,
        start=span.start,
        end=span.end,
        passage=paragraph.text,
        score=span.score,
        title=paragraph.title,
        page=paragraph.page,
        section=paragraph.section,
    )


_default: QA | None = None
_default_lock = threading.Lock()


def default_qa() -> QA:
    """The shared ``QA`` over the library (``library/``) and ``index/`` in the working directory."""
    global _default
    with _default_lock:
        if _default is None:
            _default = QA()
        return _default


def answer(question: str, history: History | None = None, top_k: int = DEFAULT_TOP_K) -> Answer:
    """Answer ``question`` from the documents of the library (``library/``, index in ``index/``), with citations."""
    return default_qa().answer(question, history=history, top_k=top_k)
