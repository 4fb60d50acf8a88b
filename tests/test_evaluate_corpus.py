"""``qa reader eval-corpus``: a SQuAD-format file becomes documents, the real system answers, the figures add up."""

import json
import math
import shutil

import pytest

from qa.cli import main
from qa.evaluation.corpus import (
    STOP_MARGINS,
    CorpusRun,
    choose_settings,
    evaluate_corpus,
    gold_finder,
    lost_to_other_paragraph,
    sample_examples,
    sample_keeping,
    store_settings,
    write_corpus,
)
from qa.evaluation.squad import SquadExample, load_squad, write_squad
from qa.models import PACKAGED_READER
from qa.pipeline import QA
from qa.reading.reader import read_card, write_card
from tests.conftest import SEED_DOC, SEEDS, needs_trained_reader

QUESTIONS = [
    ("Where did the meeting take place?", "Ayn Issa"),
    ("How many civilians were evacuated since Monday?", "at least 700"),
    ("Who won the football world cup in 1998?", None),
]


@pytest.fixture(scope="module")
def seed_squad_file(tmp_path_factory):
    """The seed article as a two-article SQuAD file (first and second half of its paragraphs)."""
    blocks = [b.strip() for b in (SEEDS / SEED_DOC).read_text(encoding="utf-8").split("\n\n") if len(b.split()) > 8]
    halves = {"Meeting": blocks[: len(blocks) // 2], "Evacuation": blocks[len(blocks) // 2 :]}
    examples = []
    for number, (question, answer) in enumerate(QUESTIONS):
        if answer is None:
            examples.append(SquadExample(f"q{number}", "Meeting", question, halves["Meeting"][0], (), -1))
            continue
        title, context = next((t, c) for t, cs in halves.items() for c in cs if answer in c)
        examples.append(SquadExample(f"q{number}", title, question, context, (answer,), context.index(answer)))
    for title, contexts in halves.items():  # every paragraph must reach the corpus, asked about or not
        examples += [SquadExample(f"{title}-{i}", title, "What?", c, (), -1) for i, c in enumerate(contexts)]
    return write_squad(tmp_path_factory.mktemp("corpus") / "seed.json", examples)


def test_each_article_becomes_a_document_and_gold_paragraphs_hold_the_answer(seed_squad_file, tmp_path):
    examples = load_squad(seed_squad_file)
    where = write_corpus(examples, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000_Meeting.txt", "0001_Evacuation.txt"]
    for example in examples:
        doc_id, offset = where[example.context]
        assert (tmp_path / doc_id).read_text()[offset : offset + len(example.context)] == example.context
    from qa.documents.paragraphs import load_paragraphs

    paragraphs = load_paragraphs(tmp_path)[1]
    gold_of = gold_finder(where, paragraphs)
    ayn_issa = gold_of(examples[0])
    text_of = {p.id: p.text for p in paragraphs}
    assert len(ayn_issa) == 1 and "Ayn Issa" in text_of[next(iter(ayn_issa))]
    assert gold_of(examples[2]) == set()


@needs_trained_reader
def test_the_shipped_system_on_a_corpus(seed_squad_file, tmp_path):
    metrics, runs, choices = evaluate_corpus(seed_squad_file, QA, limit=None, choose=True, progress=False)
    by_id = {run.example.id: run for run in runs}
    assert by_id["q0"].prediction == "Ayn Issa"
    assert by_id["q2"].prediction == ""  # nothing in the article answers it
    assert by_id["q0"].gold & set(by_id["q0"].retrieved[:1])  # the right paragraph came first
    assert metrics["total"] == len(runs) and metrics["recall@3"] == 100.0
    assert 0 <= metrics["latency_ms_p50"] <= metrics["latency_ms_p95"]
    assert sorted(row["stop_margin"] for row in choices) == sorted(STOP_MARGINS)
    assert [row["f1"] for row in choices] == sorted((row["f1"] for row in choices), reverse=True)

    reader_copy = tmp_path / "reader"
    shutil.copytree(PACKAGED_READER, reader_copy)
    fresh_card = read_card(PACKAGED_READER)  # as training writes it: its gold threshold at the top level
    fresh_card["threshold"] = -7.5
    fresh_card["calibration"].pop("threshold", None)
    write_card(reader_copy, fresh_card)
    store_settings(reader_copy, choices[0], seed_squad_file)
    card = read_card(reader_copy)
    assert card["threshold"] == choices[0]["threshold"] and "end_to_end_choice" in card
    assert card["calibration"]["threshold"] == -7.5  # the training's threshold moves beside its metrics
    assert card["dev"] == read_card(PACKAGED_READER)["dev"]  # the rest of the card is kept
    store_settings(reader_copy, {**choices[0], "stop_margin": math.inf}, seed_squad_file)
    assert read_card(reader_copy)["stop_margin"] is None  # JSON has no infinity
    assert QA(tmp_path / "d", tmp_path / "i", reader=str(reader_copy)).stop_margin == math.inf


def test_stop_margins_are_replayed_from_one_read():
    example = SquadExample("a", "t", "q", "ctx", ("right",), 0)
    # the top-ranked passage holds a weaker span than the second one
    run = CorpusRun(example, {"d#0"}, "", ["d#0", "d#1"], 0.01, spans=[(1, 5.0, "right"), (0, 2.0, "wrong")])
    rows = {row["stop_margin"]: row for row in choose_settings([run])}
    assert rows[math.inf]["f1"] == 100.0  # reading both passages finds the right span
    assert rows[1.0]["f1"] == 0.0 and rows[1.0]["read_one_share"] == 1.0  # stopping after the first does not
    assert rows[3.0]["f1"] == 100.0 and rows[3.0]["read_one_share"] == 0.0


def test_the_chosen_stop_margin_reads_least_within_the_f1_tolerance():
    def run(number, spans):
        example = SquadExample(f"q{number}", "t", "q", "ctx", ("right",), 0)
        return CorpusRun(example, {"d#0"}, "", ["d#0", "d#1"], 0.01, spans=spans)

    # 299 questions answered by the top passage (margin 5); one where only the second passage is right
    runs = [run(n, [(0, 5.0, "right"), (1, 1.0, "wrong")]) for n in range(299)]
    runs.append(run(299, [(0, 5.0, "wrong"), (1, 8.0, "right")]))
    rows = choose_settings(runs)
    assert rows[0]["stop_margin"] == 4.0 and rows[0]["read_one_share"] == 1.0  # 0.33 points below reading all
    assert rows[1]["stop_margin"] in (6.0, math.inf) and rows[1]["f1"] == 100.0
    runs.append(run(300, [(0, 5.0, "wrong"), (1, 8.0, "right")]))  # now stopping costs 0.66 points: read all
    chosen = choose_settings(runs)[0]
    assert chosen["read_one_share"] == 0.0 and chosen["f1"] == 100.0


def test_the_chosen_threshold_is_the_highest_within_the_f1_tolerance():
    def run(number, margin, text, answers=("right",)):
        example = SquadExample(f"q{number}", "t", "q", "ctx", answers, 0 if answers else -1)
        return CorpusRun(example, {"d#0"} if answers else set(), "", ["d#0"], 0.01, spans=[(0, margin, text)])

    # 300 questions: 297 right at margin 9, two right at margin 2 (0.67 points), one right at margin 1 (0.33)
    runs = [run(n, 9.0, "right") for n in range(297)] + [run(297, 2.0, "right"), run(298, 2.0, "right")]
    runs.append(run(299, 1.0, "right"))
    row = {row["stop_margin"]: row for row in choose_settings(runs)}[math.inf]
    assert row["best_f1"] == 100.0 and 1.0 <= row["threshold"] < 2.0  # declining the margin-1 one costs 0.33
    assert row["f1"] == pytest.approx(100 * 299 / 300)
    runs.append(run(300, 1.5, "wrong", answers=()))  # an unanswerable one at 1.5: now 1.5 is worth raising to
    row = {row["stop_margin"]: row for row in choose_settings(runs)}[math.inf]
    assert 1.5 <= row["threshold"] < 2.0 and row["NoAns_f1"] == 100.0


def test_a_right_gold_span_beaten_by_another_paragraph_counts_as_lost():
    example = SquadExample("a", "t", "q", "ctx", ("right",), 0)

    def run(spans):
        return CorpusRun(example, {"d#1"}, "", ["d#0", "d#1"], 0.01, spans=spans)

    lost = run([(0, 5.0, "wrong"), (1, 2.0, "right")])
    won = run([(0, 1.0, "wrong"), (1, 2.0, "right")])
    gold_wrong_too = run([(0, 5.0, "wrong"), (1, 2.0, "also wrong")])
    other_paragraph_right = run([(0, 5.0, "right"), (1, 2.0, "right")])
    unread = CorpusRun(example, {"d#9"}, "", ["d#0", "d#1"], 0.01, spans=[(0, 5.0, "wrong")])
    assert lost_to_other_paragraph([lost]) == 1.0
    assert lost_to_other_paragraph([won, gold_wrong_too, other_paragraph_right, unread]) == 0.0
    assert lost_to_other_paragraph([lost, won, unread, gold_wrong_too]) == 0.25


@needs_trained_reader
def test_eval_corpus_command_prints_json(seed_squad_file, capsys):
    assert main(["reader", "eval-corpus", str(seed_squad_file), "--limit", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["total"] == 2 and {"f1", "recall@1", "recall@3", "latency_ms_p95"} <= set(result)
    assert main(["reader", "eval-corpus", str(seed_squad_file), "--store"]) == 1


def test_foreign_questions_are_unanswerable_and_come_from_articles_left_out():
    from qa.evaluation.corpus import split_foreign

    examples = [
        SquadExample(f"{title}-{n}", title, f"Question {n} about {title}?", f"{title} context {n}.", ("x",), 0)
        for title in "ABCDEFGH"
        for n in range(10)
    ]
    corpus, questions = split_foreign(examples, share=0.25, seed=3)
    inside = {e.title for e in corpus}
    foreign = [q for q in questions if q.title not in inside]
    assert len(inside) == 4 and all(not q.is_impossible for q in questions if q.title in inside)
    assert foreign and all(q.is_impossible for q in foreign)
    assert len(foreign) / len(questions) == pytest.approx(0.25, abs=0.02)


def test_a_sample_keeping_unanswerable_questions_holds_all_of_them_and_stays_fixed():
    questions = [
        SquadExample(f"q{n}", "A", f"Question {n}?", "Context.", () if n % 10 == 0 else ("x",), 0 if n % 10 else -1)
        for n in range(200)
    ]
    unanswerable = [q for q in questions if q.is_impossible]
    sample = sample_keeping(questions, unanswerable, 50)
    assert len(sample) == 50 and len({q.id for q in sample}) == 50
    assert {q.id for q in unanswerable} <= {q.id for q in sample}
    assert sample == sample_keeping(questions, unanswerable, 50)
    assert sum(q.is_impossible for q in sample_examples(questions, 50)) < len(unanswerable)
    assert sample_keeping(questions, [], 50) == sample_examples(questions, 50)
    assert len(sample_keeping(questions, unanswerable, 5)) == 5
    assert sample_keeping(questions, unanswerable, None) == questions
