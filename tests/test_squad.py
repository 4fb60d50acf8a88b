import json

import pytest

from qa.evaluation.squad import (
    SquadExample,
    best_threshold,
    load_squad,
    normalize_answer,
    score_answer,
    squad_v2_metrics,
)


def example(id, answers):
    return SquadExample(id, "t", "q?", "context", tuple(answers), 0 if answers else -1)


def test_normalisation_matches_the_official_script():
    assert normalize_answer("The  Tabqa Dam!") == "tabqa dam"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_score_answer_takes_the_best_reference_and_handles_no_answer():
    assert score_answer("at least 700", ["700", "at least 700"]) == (1.0, 1.0)
    exact, f1 = score_answer("700 civilians", ["at least 700"])
    assert exact == 0.0 and f1 == pytest.approx(0.4)
    assert score_answer("", []) == (1.0, 1.0)
    assert score_answer("something", []) == (0.0, 0.0)
    assert score_answer("", ["700"]) == (0.0, 0.0)


def test_squad_v2_metrics_split_has_and_no_answer():
    examples = [example("a", ["Ayn Issa"]), example("b", ["May"]), example("c", [])]
    metrics = squad_v2_metrics(examples, {"a": "Ayn Issa", "b": "June", "c": ""})
    assert metrics["exact"] == pytest.approx(200 / 3)
    assert metrics["HasAns_exact"] == 50.0 and metrics["NoAns_exact"] == 100.0
    assert metrics["total"] == 3 and metrics["HasAns_total"] == 2 and metrics["NoAns_total"] == 1


def test_best_threshold_maximises_f1():
    examples = [example("a", ["x"]), example("b", ["y"]), example("c", []), example("d", [])]
    texts = {"a": "x", "b": "y", "c": "z", "d": "w"}
    margins = {"a": 5.0, "b": 1.0, "c": 0.5, "d": -2.0}
    threshold = best_threshold(examples, margins, texts)
    assert 0.5 <= threshold < 1.0  # answer a and b, decline c and d
    predictions = {i: texts[i] if margins[i] > threshold else "" for i in texts}
    assert squad_v2_metrics(examples, predictions)["f1"] == 100.0


def test_load_squad_reads_v2_and_rejects_garbage(tmp_path):
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Ayn Issa is a town.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "What?",
                                "answers": [{"text": "Ayn Issa", "answer_start": 0}],
                                "is_impossible": False,
                            },
                            {"id": "2", "question": "Who?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    first, second = load_squad(path)
    assert first.answers == ("Ayn Issa",) and first.answer_start == 0 and not first.is_impossible
    assert second.is_impossible and second.answer_start == -1
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable SQuAD"):
        load_squad(tmp_path / "bad.json")
