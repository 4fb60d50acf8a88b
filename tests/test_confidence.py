"""Confidence: the features, the logistic fit, the calibration figures, the model shipped in the reader card,
and the answer policy in the real pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qa import QA
from qa.reading.answers import answer_record, margin_probability
from qa.reading.confidence import (
    FEATURES,
    Candidate,
    ConfidenceModel,
    calibration_report,
    expected_calibration_error,
    features,
    fit,
    shape_fit,
)
from tests.conftest import needs_trained_reader


def test_shape_fit_reads_the_question_word():
    assert shape_fit("How many militants remain?", "around 400") == 1
    assert shape_fit("How many militants remain?", "the city") == -1
    assert shape_fit("When was the deal reached?", "in May") == 1
    assert shape_fit("Who said so?", "the spokesperson") == -1
    assert shape_fit("Where did it happen?", "Ayn Issa") == 0


def test_features_count_agreeing_passages_and_the_lead_over_other_answers():
    rows = features(
        "Where did the meeting take place?",
        [Candidate("Ayn Issa", 6.0, 0, 0.7), Candidate("ayn issa", 2.0, 2, 0.5), Candidate("Raqqa", 1.0, 1, 0.6)],
    )
    assert rows.shape == (3, len(FEATURES))
    named = dict(zip(FEATURES, rows[0]))
    assert named["agreeing_passages"] == 2 and named["passages_read"] == 3
    assert named["lead_over_other_answers"] == 5.0 and named["passage_rank"] == 0
    assert dict(zip(FEATURES, rows[2]))["lead_over_other_answers"] == -5.0


def test_fit_recovers_a_logistic_relation_and_is_calibrated_on_fresh_draws():
    generator = np.random.default_rng(0)
    rows = generator.normal(size=(4000, len(FEATURES)))
    truth = 1 / (1 + np.exp(-(0.5 + 2.0 * rows[:, 0] - 1.0 * rows[:, 4])))
    model = fit(rows, (generator.random(4000) < truth).astype(float))
    fresh = generator.normal(size=(4000, len(FEATURES)))
    fresh_truth = 1 / (1 + np.exp(-(0.5 + 2.0 * fresh[:, 0] - 1.0 * fresh[:, 4])))
    fresh_right = (generator.random(4000) < fresh_truth).astype(float)
    assert expected_calibration_error(model.probabilities(fresh), fresh_right) < 0.03
    assert expected_calibration_error(np.full(4000, 0.99), fresh_right) > 0.3  # always sure: badly calibrated


def test_the_model_round_trips_through_the_card_and_refuses_other_features():
    model = ConfidenceModel(tuple(range(len(FEATURES))), 0.5, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES))
    assert ConfidenceModel.from_card({"confidence": model.to_card()}) == model
    assert ConfidenceModel.from_card({"confidence": {**model.to_card(), "features": ["margin"]}}) is None
    assert ConfidenceModel.from_card({}) is None


def test_calibration_report_counts_answered_questions_only():
    report = calibration_report([0.9, 0.9, 0.2, 0.95], [True, False, False, True], [True, True, False, True])
    assert report["coverage"] == 75.0
    assert report["precision@0.9"] == pytest.approx(200 / 3) and report["share@0.9"] == 75.0
    assert 0 <= report["ece"] <= 1 and 0 <= report["brier"] <= 1


@needs_trained_reader
def test_the_shipped_reader_gives_calibrated_confidences_and_a_policy(seed_qa):
    assert seed_qa.reader.confidence_model is not None and seed_qa.min_confidence is not None
    answer = seed_qa.answer("Where did the meeting take place?")
    assert answer.calibrated and answer.text == "Ayn Issa"
    assert seed_qa.min_confidence <= answer.confidence < 1 and 0 < answer.citations[0].confidence < 1
    record = answer_record(answer)
    assert record["calibrated"] is True and record["confidence"] == answer.confidence
    declined = seed_qa.answer("What is the capital of France?")
    assert not declined.found and 0 <= declined.confidence < seed_qa.min_confidence


def test_a_reader_without_a_model_falls_back_to_the_margin_softmax(seeds_copy, tiny_reader_dir, tmp_path):
    tiny_qa = QA(seeds_copy, tmp_path / "index", reader=str(tiny_reader_dir), threshold=float("-inf"))
    answer = tiny_qa.answer("Where did the meeting take place?")
    assert not answer.calibrated and tiny_qa.min_confidence is None
    for candidate in answer.candidates:
        assert math.isclose(candidate.confidence, margin_probability(candidate.score))


def test_a_policy_outside_0_to_1_is_refused_with_a_clear_message(seeds_copy, tmp_path, capsys):
    from qa.cli import main

    with pytest.raises(ValueError, match="between 0 and 1"):
        QA(seeds_copy, tmp_path / "index", min_confidence=80)
    args = ["ask", "Where?", "--documents", str(seeds_copy), "--index", str(tmp_path / "index")]
    assert main([*args, "--min-confidence", "1.5"]) == 1
    assert "between 0 and 1" in capsys.readouterr().err
