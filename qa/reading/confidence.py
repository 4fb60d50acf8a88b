"""How likely an answer is to be right: a small logistic model over what the pipeline already knows about a
candidate span, fitted end to end on held-out training articles (``qa reader calibrate``), shipped in the
reader's card and loaded with it.

Right means token F1 >= 0.5 against a gold answer; any answer to a question the documents do not answer is
wrong. The features of a candidate (one span the reader found in one retrieved passage):

- its margin (span score minus "no answer" score), as it is and squashed (``tanh(margin / 4)``);
- how many of the passages read give the same answer, and how many were read;
- its margin's lead over the best candidate that says something else;
- the retrieval rank of its passage and that passage's dense (cosine) score;
- its length in words;
- whether its shape fits the question word ("How many ...?" and a number, "When ...?" and a date or time,
  "Who ...?" and a capitalised name), or does not.

A reader without a fitted model (one given by the user) falls back to the two-way softmax of the margin, which
is no probability of being right; ``Answer.calibrated`` says which one a figure is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from qa.reading.answers import margin_probability, normalize_answer

RIGHT_F1 = 0.5  # an answer counts as right at this token F1 against a gold answer (the module docstring)
FEATURES = (
    "margin",
    "margin_squashed",
    "agreeing_passages",
    "passages_read",
    "lead_over_other_answers",
    "passage_rank",
    "passage_dense_score",
    "log_words",
    "shape_fits_question",
    "shape_misfits_question",
)
L2 = 1.0  # ridge penalty on the standardised weights (a few thousand examples, ten features)
NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|dozen)s?\b", re.I
)
TIME = re.compile(
    r"\d|\b(?:january|february|march|april|may|june|july|august|september|october|november|december|monday|tuesday"
    r"|wednesday|thursday|friday|saturday|sunday|century|year|years|day|days|week|month|morning|evening|night)\b",
    re.I,
)
CAPITALISED = re.compile(r"\b[A-Z][a-z]")


@dataclass(frozen=True)
class Candidate:
    """What the features need of one candidate span: its text and margin, and its passage's retrieval facts."""

    text: str
    margin: float
    passage_rank: int  # 0: the best-ranked retrieved passage
    dense_score: float  # the passage's cosine similarity to the query (0 when outside the dense list)


def shape_fit(question: str, text: str) -> int:
    """+1 when the span has the shape the question word asks for, -1 when it has not, 0 when the question word
    asks for no particular shape."""
    asked = question.lower()
    if re.search(r"\bhow (?:many|much)\b", asked):
        expected = NUMBER
    elif re.match(r"\s*(?:when|what year|in what year|what date|on what date)\b", asked):
        expected = TIME
    elif re.match(r"\s*who\b", asked):
        expected = CAPITALISED
    else:
        return 0
    return 1 if expected.search(text) else -1


def features(question: str, candidates: list[Candidate]) -> np.ndarray:
    """One row of ``FEATURES`` per candidate (same order)."""
    said = [normalize_answer(candidate.text) for candidate in candidates]
    rows = []
    for position, candidate in enumerate(candidates):
        margin = float(np.clip(candidate.margin, -30.0, 30.0))
        others = [c.margin for c, text in zip(candidates, said) if text != said[position] and math.isfinite(c.margin)]
        lead = margin - max(others) if others else 10.0
        fit = shape_fit(question, candidate.text)
        rows.append(
            [
                margin,
                math.tanh(margin / 4.0),
                sum(text == said[position] for text in said),
                len(candidates),
                float(np.clip(lead, -10.0, 10.0)),
                candidate.passage_rank,
                candidate.dense_score,
                math.log1p(len(candidate.text.split())),
                float(fit > 0),
                float(fit < 0),
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


@dataclass(frozen=True)
class ConfidenceModel:
    """A logistic model over standardised ``FEATURES``: P(right) = sigmoid(bias + weights . (x - mean) / scale)."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    features: tuple[str, ...] = FEATURES

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        standard = (rows - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(self.bias + standard @ np.asarray(self.weights))))

    def to_card(self) -> dict:
        return {
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
        }

    @classmethod
    def from_card(cls, card: dict) -> ConfidenceModel | None:
        """The model a reader card stores under "confidence", None when it has none or one of other features."""
        stored = card.get("confidence")
        if not stored or tuple(stored.get("features", ())) != FEATURES:
            return None
        return cls(tuple(stored["weights"]), float(stored["bias"]), tuple(stored["mean"]), tuple(stored["scale"]))


def fit(rows: np.ndarray, right: np.ndarray, l2: float = L2, steps: int = 50) -> ConfidenceModel:
    """Logistic regression by Newton's method (ridge ``l2`` on the standardised weights, none on the bias)."""
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale == 0] = 1.0
    design = np.hstack([np.ones((len(rows), 1)), (rows - mean) / scale])
    penalty = np.diag([0.0] + [l2] * rows.shape[1])
    theta = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (p - right) + penalty @ theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return ConfidenceModel(tuple(theta[1:]), float(theta[0]), tuple(mean), tuple(scale))


def expected_calibration_error(probabilities: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-mass bins: the mean |confidence - accuracy| of the bins, weighted by size."""
    if not len(probabilities):
        return float("nan")
    order = np.argsort(probabilities, kind="stable")
    return float(
        sum(
            len(chunk) * abs(probabilities[chunk].mean() - right[chunk].mean())
            for chunk in np.array_split(order, bins)
            if len(chunk)
        )
        / len(probabilities)
    )


def brier_score(probabilities: np.ndarray, right: np.ndarray) -> float:
    return float(np.mean((probabilities - right) ** 2)) if len(probabilities) else float("nan")


def candidates_of(question: str, spans: list, hits: list) -> np.ndarray:
    """``features`` of the citations ``spans`` found in the retrieved ``hits`` (matched by document and paragraph)."""
    rank = {(hit.paragraph.doc_id, hit.paragraph.paragraph): position for position, hit in enumerate(hits)}
    dense = {(hit.paragraph.doc_id, hit.paragraph.paragraph): hit.dense_score or 0.0 for hit in hits}
    return features(
        question,
        [
            Candidate(
                c.text, c.score, rank.get((c.doc_id, c.paragraph), len(hits)), dense.get((c.doc_id, c.paragraph), 0.0)
            )
            for c in spans
        ],
    )


def calibration_report(confidence: np.ndarray, right: np.ndarray, answered: np.ndarray) -> dict:
    """How well the confidences of the answers given (``answered``) match how often they are right: ECE (10
    equal-mass bins) and Brier score over the answered questions, coverage (the share answered), and for
    confidence >= 0.5 / 0.8 / 0.9 the precision of those answers and their share of all questions."""
    confidence, right, answered = (np.asarray(a, dtype=float) for a in (confidence, right, answered))
    given = answered > 0
    report = {
        "ece": expected_calibration_error(confidence[given], right[given]) if given.any() else None,
        "brier": brier_score(confidence[given], right[given]) if given.any() else None,
        "coverage": 100 * float(given.mean()) if len(given) else float("nan"),
    }
    for level in (0.5, 0.8, 0.9):
        sure = given & (confidence >= level)
        report[f"precision@{level}"] = 100 * float(right[sure].mean()) if sure.any() else None
        report[f"share@{level}"] = 100 * float(sure.mean()) if len(sure) else None
    return report


def with_confidence(model: ConfidenceModel | None, question: str, spans: list, hits: list) -> list:
    """The citations ``spans`` with how likely each is right (the margin's softmax where there is no model)."""
    if model is None or not spans:
        return [replace(span, confidence=margin_probability(span.score)) for span in spans]
    return [
        replace(span, confidence=float(p))
        for span, p in zip(spans, model.probabilities(candidates_of(question, spans, hits)))
    ]


def card_min_confidence(card: dict) -> float | None:
    """The answer policy a reader card stores (``qa reader calibrate --store``); None without a confidence model."""
    stored = card.get("min_confidence")
    return float(stored) if stored is not None and ConfidenceModel.from_card(card) else None
