import json

import pytest

from qa.documents.paragraphs import Document, is_boilerplate, load_paragraphs, split_paragraphs
from qa.evaluation.squad import normalize_answer
from tests.conftest import SEED_DOC, SEEDS


def make_document(text: str) -> Document:
    return Document("doc.txt", None, "0", text)


def test_seed_article_paragraphs_are_exact_slices_of_the_file():
    documents, paragraphs = load_paragraphs(SEEDS)
    assert [d.doc_id for d in documents] == [SEED_DOC]
    source = (SEEDS / SEED_DOC).read_text(encoding="utf-8")
    assert len(paragraphs) == 14
    for number, paragraph in enumerate(paragraphs):
        assert paragraph.paragraph == number
        assert paragraph.id == f"{SEED_DOC}#{number}"
        assert source[paragraph.start : paragraph.end] == paragraph.text
        assert paragraph.text == paragraph.text.strip()


def test_boilerplate_dropped_and_headline_kept():
    _, paragraphs = load_paragraphs(SEEDS)
    texts = [p.text for p in paragraphs]
    assert texts[0] == "Coalition confirms meeting on ISIS withdrawal from Raqqa but says it did not participate"
    for noise in ("Middle EastWar", "Related Articles", "Back to top button"):
        assert noise not in texts
    assert texts[2] == "The meeting reportedly occurred in Ayn Issa, the interim base for Raqqa Civil Council."


def test_boilerplate_rule():
    assert is_boilerplate("Share this")
    assert is_boilerplate("Sports")
    assert not is_boilerplate("Yes.")  # a sentence, however short
    assert not is_boilerplate("Seven words in this headline without a stop")


def test_blank_lines_with_spaces_and_crlf_split_blocks():
    text = "First paragraph is here.\r\n  \r\nSecond paragraph, indented, ends here.  \n\n\n\nThird one here."
    paragraphs = split_paragraphs(make_document(text))
    assert [p.text for p in paragraphs] == [
        "First paragraph is here.",
        "Second paragraph, indented, ends here.",
        "Third one here.",
    ]
    for p in paragraphs:
        assert text[p.start : p.end] == p.text


def test_long_block_is_cut_at_sentence_ends_with_exact_offsets():
    sentence = "This sentence has exactly nine words in it today. "
    text = "Intro line that is long enough to stay.\n\n" + sentence * 100
    paragraphs = split_paragraphs(make_document(text), max_chars=300)
    assert len(paragraphs) > 10
    for p in paragraphs:
        assert len(p.text) <= 300
        assert text[p.start : p.end] == p.text
        assert p.text.endswith(".")
    assert "".join(p.text for p in paragraphs[1:]).replace(" ", "") == (sentence * 100).replace(" ", "")


@pytest.mark.parametrize(
    "question_set",
    [
        "questions.jsonl",
        "fresh_questions.jsonl",
        "out_of_corpus.jsonl",
        "unseen_questions.jsonl",
        "unseen_out_of_corpus.jsonl",
    ],
)
def test_seed_question_sets_point_at_paragraphs_that_hold_their_answers(question_set):
    _, paragraphs = load_paragraphs(SEEDS)
    by_id = {f"{p.doc_id}#{p.paragraph}": normalize_answer(p.text) for p in paragraphs}
    records = [json.loads(line) for line in (SEEDS / question_set).read_text(encoding="utf-8").splitlines()]
    assert records and all(r["question"].strip() for r in records)
    for record in records:
        if record["paragraph"] is None:
            assert record["answers"] == [], record
        else:
            held = by_id[record["paragraph"]]  # SQuAD's normalisation: "the Coalition" counts as "Coalition"
            assert any(normalize_answer(a) in held for a in record["answers"]), record
