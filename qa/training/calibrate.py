"""Fit a reader's confidence model and answer policy end to end (``qa reader calibrate``).

The held-out training articles (a reader's ``calibration.json``: articles no stage of it trained on) become a
library; every question goes through ``QA.answer()`` with the margin threshold alone; the best candidate's
features (``qa.reading.confidence.features``) and whether it is right are kept. The articles are split in two by a
hash of their title: the model is fitted on one half and its calibration (ECE, Brier) measured on the other,
side by side with the margin's softmax. The answer policy (``min_confidence``) is the one that maximises
end-to-end F1 over all of them. ``--store`` writes the model, the policy and the figures into the card.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qa.evaluation.corpus import sample_examples, write_corpus
from qa.evaluation.squad import SquadExample, load_squad, score_answer
from qa.models import resolve_reader
from qa.pipeline import QA
from qa.reading.answers import margin_probability
from qa.reading.confidence import brier_score, candidates_of, expected_calibration_error, fit
from qa.reading.reader import read_card, write_card

MIN_CONFIDENCES = tuple(round(0.05 * step, 2) for step in range(20))  # 0.0 ... 0.95, searched for best F1


@dataclass(frozen=True)
class Observed:
    """The best candidate of one question: its features, margin and how it scores against the gold answers."""

    title: str
    rows: np.ndarray  # the candidate's features (empty when the reader found no span)
    margin: float
    f1: float  # token F1 of the candidate against the gold answers (0 for unanswerable questions)
    answerable: bool

    @property
    def right(self) -> bool:
        return self.answerable and self.f1 >= 0.5


def observe(qa: QA, examples: list[SquadExample], progress: bool = True) -> list[Observed]:
    """Each question through ``qa.answer()``; its best candidate observed."""
    observed = []
    for example in tqdm(examples, desc="questions", unit="q", disable=not progress):
        answer = qa.answer(example.question)
        rows = candidates_of(answer.question, answer.candidates, answer.hits)[:1]
        best = answer.candidates[0] if answer.candidates else None
        f1 = score_answer(best.text, example.answers)[1] if best and example.answers else 0.0
        margin = best.score if best else float("-inf")
        observed.append(Observed(example.title, rows, margin, f1, bool(example.answers)))
    return observed


def fitting_half(title: str) -> bool:
    """True for the articles the model is fitted on (a stable hash of the title), False for those it is checked on."""
    return int(hashlib.sha256(title.encode()).hexdigest(), 16) % 2 == 0


def policy_f1(observed: list[Observed], confidences: np.ndarray, threshold: float, min_confidence: float) -> dict:
    """End-to-end F1 (SQuAD 2.0 style) when the best candidate is answered iff its margin is above ``threshold``
    and its confidence at least ``min_confidence``; also the share answered."""
    scores, answered = [], []
    for item, confidence in zip(observed, confidences):
        given = item.margin > threshold and confidence >= min_confidence
        answered.append(given)
        scores.append(item.f1 if given else float(not item.answerable))
    return {"f1": 100 * float(np.mean(scores)), "coverage": 100 * float(np.mean(answered))}


def calibrate(make_qa, squad_file: str | Path, limit: int | None = None, progress: bool = True) -> dict:
    """Observe ``squad_file`` end to end (through ``make_qa(documents_dir, index_dir)``), fit the model on one
    half of its articles, check it on the other, and choose the policy on all. Returns the model, the policy and
    the figures (``"confidence"``, ``"min_confidence"``, ``"confidence_fit"``: what ``--store`` writes into the
    card)."""
    examples = load_squad(squad_file)
    if not examples:
        raise ValueError(f"{squad_file} holds no questions.")
    questions = sample_examples(examples, limit)
    with tempfile.TemporaryDirectory(prefix="qa-calibrate-") as temp:
        write_corpus(examples, Path(temp) / "documents")
        qa = make_qa(Path(temp) / "documents", Path(temp) / "index")
        qa.index(progress=progress)
        observed = [item for item in observe(qa, questions, progress) if len(item.rows)]
    rows = np.vstack([item.rows for item in observed])
    right = np.array([item.right for item in observed], dtype=float)
    fitting = np.array([fitting_half(item.title) for item in observed])
    if fitting.all() or not fitting.any():
        raise ValueError("calibration needs articles on both sides of the split: give a file with more articles")
    model = fit(rows[fitting], right[fitting])
    checked, softmax = model.probabilities(rows[~fitting]), np.array([margin_probability(i.margin) for i in observed])
    threshold = qa.reader.threshold
    confidences = model.probabilities(rows)
    policies = [
        {"min_confidence": level, **policy_f1(observed, confidences, threshold, level)} for level in MIN_CONFIDENCES
    ]
    best = max(policies, key=lambda row: (round(row["f1"], 1), row["min_confidence"]))  # ties: the safer policy
    margins = np.array([item.margin for item in observed])
    answered = ~fitting & (margins > threshold) & (confidences >= best["min_confidence"])
    figures = {
        "file": str(squad_file),
        "questions": len(observed),
        "fitted_on": int(fitting.sum()),
        "checked_on": int((~fitting).sum()),
        "check_ece": expected_calibration_error(checked, right[~fitting]),
        "check_brier": brier_score(checked, right[~fitting]),
        "check_ece_softmax": expected_calibration_error(softmax[~fitting], right[~fitting]),
        "check_brier_softmax": brier_score(softmax[~fitting], right[~fitting]),
        "check_ece_answered": expected_calibration_error(confidences[answered], right[answered]),
        "policies": policies,
    }
    return {"confidence": model.to_card(), "min_confidence": best["min_confidence"], "confidence_fit": figures}


def store_calibration(reader_name: str | Path | None, result: dict) -> Path:
    """Write ``calibrate``'s model, policy and figures into the reader's card (atomically)."""
    folder = Path(resolve_reader(reader_name))
    if not folder.is_dir():
        raise ValueError(f"--store needs a reader folder; {folder} is not one.")
    return write_card(folder, {**read_card(folder), **result})
