"""What an answer is: the types that flow out of the pipeline into the chat, the CLI and the Python API."""

from __future__ import annotations

import math
import re
import string
from dataclasses import asdict, dataclass, field

from qa.search.retriever import Hit

NO_ANSWER = "I could not find that in the documents."
NOT_SURE = "Not sure: no answer in the documents is certain enough."
OTHER_ANSWERS = "Other possible answers in the documents:"
CLARIFY = "The documents answer this two ways. Do you mean"


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, articles and extra white space (the official normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def margin_probability(margin: float) -> float:
    """A reader margin (span score minus "no answer" score) as the two-way softmax of the span against "no
    answer": what a reader without a confidence model shows. No probability of being right (it reads 99.9% on
    wrong answers too); ``qa.reading.confidence`` fits one."""
    if margin == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-max(min(margin, 50.0), -50.0)))


def likelihood(probability: float, calibrated: bool) -> str:
    """A confidence as people read it: "72% likely right" in whole percents, kept within 1% to 99% (a fitted
    model supports no more certainty than that), or, uncalibrated, "confidence 99.98%" (``percent``)."""
    if calibrated:
        return f"{min(max(round(100 * probability), 1), 99)}% likely right"
    return f"confidence {percent(probability)}"


def percent(probability: float) -> str:
    """``probability`` in whole percents, with as many decimals (up to 4) as it takes not to read 0% or 100%
    when it is neither: margins of 9 and 10 (e.g. a candidate and a threshold set above it) read 99.99% and
    99.995%, not 100% twice."""
    for decimals in range(5):
        text = f"{probability:.{decimals}%}"
        if not 0.0 < probability < 1.0 or float(text[:-1]) not in (0.0, 100.0):
            return text
    return ">99.9999%" if probability > 0.5 else "<0.0001%"


@dataclass(frozen=True)
class Citation:
    """Where an answer is written: ``passage[start:end]`` is the answer text."""

    doc_id: str
    paragraph: int
    start: int  # char offset of the answer in ``passage``
    end: int
    passage: str
    score: float = 0.0  # the reader's confidence margin for this span
    title: str = ""  # the document's display title (metadata or first heading, else the file name)
    page: int | None = None  # 1-based page of the passage (documents with pages: PDF)
    section: str | None = None  # the nearest heading before the passage
    # The probability that this span is the right answer: calibrated when the reader has a confidence model
    # (``Answer.calibrated``), else the softmax of its margin (``margin_probability``).
    confidence: float = 0.0

    @property
    def source(self) -> str:
        """Where to look, for people: "Report (report.pdf), page 4, section Results"."""
        name = self.doc_id if self.title in ("", self.doc_id) else f"{self.title} ({self.doc_id})"
        page = f", page {self.page}" if self.page else ""
        section = f", section {self.section}" if self.section else ""
        return f"{name}{page}{section}"

    @property
    def text(self) -> str:
        return self.passage[self.start : self.end]


@dataclass(frozen=True)
class Answer:
    """The reader's answer ("" when the documents do not answer) with its citations, best first.

    ``candidates`` holds the best span of every passage the reader read, best first, whether or not it
    cleared the threshold (what evaluation sweeps); ``evidence`` those of them worth showing when the reader
    is unsure (``text`` is then ""): below the threshold but above the pipeline's evidence floor."""

    text: str
    score: float
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # the retrieved paragraphs, best first
    query: str = ""  # what was sent to the retriever (the question, plus context for follow-ups)
    question: str = ""  # the question as understood: a follow-up made self-contained; what the reader read
    asked: str = ""  # the question as asked (cleaned of control characters)
    seconds: float = 0.0
    candidates: list[Citation] = field(default_factory=list)
    # When there is no answer: the candidates worth checking (below the threshold, above the evidence floor).
    evidence: list[Citation] = field(default_factory=list)
    threshold: float = 0.0  # the no-answer threshold the answer was decided with
    # Two self-contained readings of a follow-up that the documents answer differently and about as surely: the
    # chat asks "Do you mean A or B?" (the first is the reading answered here); () when the question is clear.
    clarify: tuple[str, ...] = ()
    calibrated: bool = False  # the confidences are probabilities of being right (the reader has a confidence model)
    min_confidence: float | None = None  # the confidence an answer needed (None: the margin threshold alone)

    @property
    def found(self) -> bool:
        return bool(self.text)

    @property
    def confidence(self) -> float:
        """How likely the shown answer is right; without an answer, how likely the best candidate would have
        been (0 when the reader found no span)."""
        best = self.citations or self.evidence or self.candidates
        return best[0].confidence if best else 0.0

    @property
    def supporting(self) -> list[Citation]:
        """The citations whose span says the answer (the same text once SQuAD-normalised), best first."""
        return [c for c in self.citations if self.supports(c)]

    @property
    def alternatives(self) -> list[Citation]:
        """The citations whose span says something else: other possible answers, not support for this one."""
        return [c for c in self.citations if not self.supports(c)]

    def supports(self, citation: Citation) -> bool:
        """True when ``citation``'s span says this answer (the same text once SQuAD-normalised)."""
        return normalize_answer(citation.text) == normalize_answer(self.text)

    @property
    def rewritten(self) -> bool:
        """True when the question was rewritten (a request unwrapped, a follow-up made self-contained):
        ``question`` differs from ``asked``."""
        return bool(self.question) and self.question != self.asked

    @property
    def message(self) -> str:
        return self.text or NO_ANSWER


def answer_record(answer: Answer) -> dict:
    """An answer as JSON-ready data (``qa ask --json``, the cluster's ``POST /answer``): the question as asked
    and as understood, the answer ("" when the documents do not answer), its margin and the threshold, and the
    citations and evidence, each with its passage, offsets, ``source`` and ``text`` (and, for citations,
    ``supports``: False for another possible answer), ``confidence`` (how likely the answer is right; each
    citation has its own; ``calibrated`` says whether they are fitted probabilities or the margin's softmax),
    and ``clarify`` (the readings to ask back about, [] when the question is clear). Infinite scores become
    null."""
    return {
        "question": answer.asked,
        "understood": answer.question,
        "answer": answer.text,
        "found": answer.found,
        "message": answer.message,
        "score": _finite(answer.score),
        "confidence": answer.confidence,
        "calibrated": answer.calibrated,
        "min_confidence": answer.min_confidence,
        "threshold": answer.threshold,
        "seconds": answer.seconds,
        "citations": [{**_citation_record(c), "supports": answer.supports(c)} for c in answer.citations],
        "evidence": [_citation_record(c) for c in answer.evidence],
        "clarify": list(answer.clarify),
    }


def _citation_record(citation: Citation) -> dict:
    return {**asdict(citation), "score": _finite(citation.score), "source": citation.source, "text": citation.text}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
