from dataclasses import fields

import pytest

from qa import QA, Answer, Citation, QuestionError
from qa.conversation.chat import render_markdown
from qa.pipeline import MAX_QUESTION_CHARS, as_asked, clean_question
from qa.reading.answers import NO_ANSWER
from qa.search.index import load_index
from tests.conftest import SEEDS, needs_trained_reader


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory, tiny_reader_dir):
    """The real embedder and index with a tiny untrained reader: checks the contract, not the answers."""
    base = tmp_path_factory.mktemp("tiny-qa")
    qa = QA(SEEDS, base / "index", reader=str(tiny_reader_dir), threshold=float("-inf"), stop_margin=float("inf"))
    return qa


def test_answer_contract(tiny_qa):
    answer = tiny_qa.answer("Where did the meeting take place?", top_k=3)
    assert isinstance(answer, Answer)
    assert {f.name for f in fields(Citation)} >= {"doc_id", "paragraph", "start", "end", "passage"}
    assert len(answer.hits) == 3 and len(answer.citations) == 3  # threshold -inf, no early stop: all answer
    assert answer.text == answer.citations[0].passage[answer.citations[0].start : answer.citations[0].end]
    scores = [c.score for c in answer.citations]
    assert scores == sorted(scores, reverse=True) and answer.score == scores[0]
    for citation in answer.citations:
        hit = next(h for h in answer.hits if h.paragraph.paragraph == citation.paragraph)
        assert citation.passage == hit.paragraph.text and citation.doc_id == hit.paragraph.doc_id
        assert 0 <= citation.start < citation.end <= len(citation.passage)


def test_models_and_index_load_once(tiny_qa):
    tiny_qa.answer("Who attended the meeting?")
    reader, embedder, retriever = tiny_qa.reader, tiny_qa.embedder, tiny_qa._retriever
    tiny_qa.answer("Who refused to take part?")
    assert tiny_qa.reader is reader and tiny_qa.embedder is embedder and tiny_qa._retriever is retriever


def test_new_document_is_picked_up_without_restart(tmp_path, seeds_copy, tiny_reader_dir):
    qa = QA(seeds_copy, tmp_path / "index", reader=str(tiny_reader_dir))
    assert len(qa.index()) == 14
    (seeds_copy / "whales.txt").write_text("The blue whale is the largest animal known to have ever existed.\n")
    hits = qa.retrieve("largest animal blue whale", top_k=1)
    assert hits[0].paragraph.doc_id == "whales.txt"


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_questions_are_refused_clearly(question):
    with pytest.raises(QuestionError, match="Please type a question"):
        clean_question(question)


def test_too_long_question_is_refused_with_its_length():
    with pytest.raises(QuestionError, match=f"too long \\(100000 characters, limit {MAX_QUESTION_CHARS}\\)"):
        clean_question("a" * 100_000)


def test_question_cleaning_keeps_text_and_drops_controls():
    assert clean_question("  Where\x00 is\u2028it? \ud800 ") == "Where is it?"
    assert clean_question("¿Dónde está Ayn Issa? 🤔") == "¿Dónde está Ayn Issa? 🤔"


@pytest.mark.parametrize(
    "typed, read",
    [
        ("who leads the SDF", "who leads the SDF?"),
        ("Who leads the SDF?  ", "Who leads the SDF?"),
        ("name the news site.", "name the news site."),
        ("Tell me now!", "Tell me now!"),
        ("\u8c01\u9886\u5bfc\uff1f", "\u8c01\u9886\u5bfc\uff1f"),
        ('What does "SDF" mean', 'What does "SDF" mean?'),
        ("", ""),
    ],
)
def test_a_question_is_read_ending_in_a_question_mark(typed, read):
    assert as_asked(typed) == read


@needs_trained_reader
def test_meeting_question_answers_ayn_issa_with_the_right_citation(seed_qa):
    answer = seed_qa.answer("Where did the meeting take place?")
    assert answer.text == "Ayn Issa"
    citation = answer.citations[0]
    assert citation.paragraph == 2 and citation.passage[citation.start : citation.end] == "Ayn Issa"


@needs_trained_reader
def test_a_question_asked_as_a_request_gets_the_plain_questions_answer(seed_qa):
    answer = seed_qa.answer("do you know who refused to take part in the meeting")
    assert answer.rewritten and answer.question == "Who refused to take part in the meeting"
    assert answer.text == seed_qa.answer(answer.question).text == "Coalition officials"


@needs_trained_reader
def test_a_question_typed_without_its_question_mark_gets_the_answer_of_the_question_with_it(seed_qa):
    typed = seed_qa.answer("What did Dillon say the Coalition would not be a part of")  # read as typed: declined
    written = seed_qa.answer("What did Dillon say the Coalition would not be a part of?")
    assert not typed.rewritten  # the "?" is the models' business: the chat shows the question as typed
    assert [hit.paragraph.id for hit in typed.hits] == [hit.paragraph.id for hit in written.hits]
    assert typed.text == written.text == "a negotiated withdrawal"


@needs_trained_reader
def test_unanswerable_question_gets_no_answer(seed_qa):
    answer = seed_qa.answer("Who won the 2017 Nobel Peace Prize?")
    assert answer.text == "" and answer.citations == [] and answer.message == NO_ANSWER


@needs_trained_reader
def test_follow_up_question_uses_the_history(seed_qa):
    history = [
        {"role": "user", "content": "What was the Coalition focused on according to Dillon?"},
        {"role": "assistant", "content": "**the safe evacuation of civilians from Raqqa**"},
    ]
    answer = seed_qa.answer("How many of them were evacuated?", history=history)
    assert answer.rewritten and "civilians" in answer.question and "them" not in answer.question
    assert answer.found and "700" in answer.text and answer.citations[0].paragraph == 11


@needs_trained_reader
def test_module_level_answer_uses_the_library_started_with_the_sample(monkeypatch, tmp_path):
    import qa.pipeline

    monkeypatch.chdir(tmp_path)  # a fresh working directory, as a new user's
    monkeypatch.setattr(qa.pipeline, "_default", None)
    from qa import answer

    result = answer("How many militants remain in the city?")
    assert "400" in result.text
    assert [c.doc_id for c in result.citations][:1] == ["000_ba938e0baee4174c.txt"]
    assert (tmp_path / "library" / "000_ba938e0baee4174c.txt").is_file()
    assert list(load_index(tmp_path / "index").documents) == ["000_ba938e0baee4174c.txt"]


@needs_trained_reader
def test_below_the_threshold_the_real_reader_shows_its_evidence(seed_qa):
    sure = seed_qa.answer("Where did the meeting take place?")
    strict = QA(seed_qa.documents_dir, seed_qa.index_dir, threshold=sure.score + 0.5)
    unsure = strict.answer("Where did the meeting take place?")
    assert unsure.text == "" and unsure.citations == []
    assert [c.text for c in unsure.evidence] == ["Ayn Issa"] and unsure.threshold == sure.score + 0.5
    assert "<u>Ayn Issa</u>" in render_markdown(unsure)
    hopeless = seed_qa.answer("Who won the 2018 football World Cup?")
    assert hopeless.text == "" and hopeless.evidence == [] and hopeless.candidates


@needs_trained_reader
def test_the_answering_reader_runs_on_one_onnx_thread(seed_qa):
    """One question at a time reads faster on one thread (see ``ANSWER_THREADS``); bulk readers keep them all."""
    from qa.pipeline import ANSWER_THREADS

    assert seed_qa.reader.backend == "onnx"
    assert seed_qa.reader.encoder.session.get_session_options().intra_op_num_threads == ANSWER_THREADS == 1
