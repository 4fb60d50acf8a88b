"""Conversation past the rules' own set: pronouns checked against what they can stand for, the documents choosing
among readings, asking back when two readings answer differently (Python, CLI, ``gradio_client``), small talk,
and the unseen conversation set's structure."""

from __future__ import annotations

import json

import pytest

from qa.cli import main
from qa.conversation.chat import render_markdown
from qa.conversation.followup import readings, resolve
from qa.conversation.referents import NAME, PERSON, PLURAL, QUANTITY, THING, kind_of, noun_phrases
from qa.conversation.smalltalk import kind, reply
from qa.evaluation.conversations import load_conversations
from qa.reading.answers import CLARIFY, answer_record
from qa.serving.web import build_app, launch_options, titles
from tests.conftest import SEED_DOC, SEEDS, free_port, needs_trained_reader

QUANTITIES = ["40", "at least 700", "around 400", "Thursday, October 12", "1874", "three months", "hundreds", "1962"]
PRONOUN_QUESTIONS = [
    "Where do they work?",
    "What did he say?",
    "Where is it based?",
    "Who paid them?",
    "What is his title?",
    "When was its roof built?",
    "What did their leader say?",
    "Who met him?",
]
MEDIATORS = ["Which activist group posted a series of tweets?", "Who did local mediators talk to?"]
AMBIGUOUS = "What did they say?"


@pytest.mark.parametrize("quantity", QUANTITIES)
@pytest.mark.parametrize("question", PRONOUN_QUESTIONS)
@pytest.mark.parametrize("earlier", ["How many engineers did the firm hire?", "When did the council meet the mayor?"])
def test_no_reading_puts_a_number_date_or_quantity_in_a_pronouns_place(earlier, quantity, question):
    for reading in readings(question, [(earlier, quantity)], limit=5):
        assert quantity.lower() not in reading.lower(), reading


def test_a_pronoun_after_a_quantity_stands_for_the_noun_that_was_counted():
    found = readings("Where do they work?", [("How many engineers did the firm hire?", "40")], limit=3)
    assert "Where do the engineers work?" in found and not any("40" in reading for reading in found)


def test_a_pronoun_after_a_declined_turn_takes_a_person_not_any_word_of_that_question():
    assert resolve("When was he born?", [("What is the name of the founder?", "")]) == "When was the founder born?"


def test_it_never_takes_a_yes_no_or_negation_answer():
    for answer in ("not", "No", "yes", "never"):
        reading = resolve("Why did it happen?", [("Did the Coalition take part in the discussion?", answer)])
        assert answer.lower() not in reading.lower().split()


@pytest.mark.parametrize(
    "text, asked_for_person, expected",
    [
        ("at least 700", False, QUANTITY),
        ("Thursday, October 12", False, QUANTITY),
        ("Raqqa24", False, NAME),  # a name with digits is no number
        ("Colonel Ryan Dillon", True, PERSON),
        ("the spokesperson", False, PERSON),
        ("US officers", True, PLURAL),
        ("proportion of foreign fighters", False, THING),  # the head noun is before "of"
    ],
)
def test_kinds(text, asked_for_person, expected):
    assert kind_of(text, asked_for_person) == expected


def test_noun_phrases_of_a_question():
    assert noun_phrases("What is the name of the founder?") == ["the name", "the founder"]
    assert noun_phrases("Who told The Defense Post that the Wednesday meeting was held in Ayn Issa?") == [
        "The Defense Post",
        "the Wednesday meeting",
        "Ayn Issa",
    ]


def play(qa, questions: list[str]) -> list[tuple[str, str]]:
    """The conversation so far, with the answers the system gives."""
    history: list[tuple[str, str]] = []
    for question in questions:
        history.append((question, qa.answer(question, history=history).message))
    return history


@needs_trained_reader
def test_the_documents_choose_the_reading_they_answer(seed_qa):
    """The rules read "it" as the topic of two turns back ("a similar deal"); the article answers what the
    Wednesday meeting was about far more surely, so that reading is taken."""
    history = play(seed_qa, ["Where was a similar deal reached in May?", "Who attended the Wednesday meeting?"])
    answer = seed_qa.answer("What was it about?", history=history)
    assert answer.question == "What was the Wednesday meeting about?"
    assert "withdrawal from Raqqa" in answer.text
    rules_only = seed_qa.__class__(seed_qa.documents_dir, seed_qa.index_dir, readings=1)
    assert rules_only.answer("What was it about?", history=history).question != answer.question


@needs_trained_reader
def test_two_readings_with_different_confident_answers_ask_back(seed_qa):
    history = play(seed_qa, MEDIATORS)
    answer = seed_qa.answer(AMBIGUOUS, history=history)
    assert set(answer.clarify) == {"What did local mediators say?", "What did Raqqa24 say?"}
    assert answer.question == answer.clarify[0] and answer.found
    assert answer_record(answer)["clarify"] == list(answer.clarify)
    assert CLARIFY in render_markdown(answer)
    # answering the choice continues the conversation: the reading is self-contained
    chosen = seed_qa.answer(answer.clarify[1], history=[*history, (AMBIGUOUS, answer.message)])
    assert chosen.found and not chosen.clarify and "refused" in chosen.text
    assert not seed_qa.answer("Where did the meeting take place?").clarify  # a first turn never asks back


@needs_trained_reader
def test_qa_ask_after_earlier_questions_prints_the_choices(seed_qa, capsys):
    args = ["--documents", str(seed_qa.documents_dir), "--index", str(seed_qa.index_dir)]
    after = [flag for question in MEDIATORS for flag in ("--after", question)]
    assert main(["ask", *args, *after, AMBIGUOUS]) == 0
    printed = capsys.readouterr().out
    assert f"{CLARIFY} 'What did local mediators say?' or 'What did Raqqa24 say?'" in printed
    assert main(["ask", *args, *after, AMBIGUOUS, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["clarify"]) == 2


@pytest.mark.parametrize(
    "message, expected",
    [
        ("hello", "greeting"),
        ("Hi there!", "greeting"),
        ("thanks", "thanks"),
        ("Thank you so much!", "thanks"),
        ("bye", "goodbye"),
        ("help", "help"),
        ("What can you do?", "help"),
        ("hi, what can you do?", "help"),
        ("Which documents do you have?", "documents"),
        ("list the documents", "documents"),
        ("Hi, who leads the SDF?", None),  # a question about the documents
        ("What can you tell me about Raqqa?", None),
        ("thanks for nothing, where is Ayn Issa?", None),
    ],
)
def test_small_talk_is_recognised_only_when_the_whole_message_is(message, expected):
    assert kind(message) == expected


def test_the_documents_reply_lists_escaped_titles():
    listed = reply("which documents do you have?", ["Report <b>2024</b>", "notes.md"])
    assert "2 documents" in listed and "&lt;b&gt;" in listed and "notes\\.md" in listed
    assert "empty" in reply("which documents do you have?", [])
    assert reply("Where did the meeting take place?", ["x"]) is None


@needs_trained_reader
def test_the_chat_page_replies_to_small_talk_and_asks_back(seed_qa):
    """Through ``gradio_client``: small talk gets a proper reply (the documents' titles from the index), and the
    ambiguous follow-up gets the question back with both readings; asking one of them answers it."""
    from gradio_client import Client

    app = build_app(seed_qa)
    app.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", free_port()))
    try:
        client = Client(app.local_url, verbose=False)
        assert client.predict("hello", api_name="/chat").startswith("Hello!")
        assert SEED_DOC.split(".")[0].replace("_", "\\_") in client.predict(
            "which documents do you have?", api_name="/chat"
        )
        assert titles(seed_qa) == [SEED_DOC]
        for question in MEDIATORS:
            client.predict(question, api_name="/chat")
        asked_back = client.predict(AMBIGUOUS, api_name="/chat")  # a message with options: the choice buttons
        assert CLARIFY in asked_back["content"] and "What did Raqqa24 say?" in asked_back["content"]
        assert {option["value"] for option in asked_back["options"]} == {
            "What did local mediators say?",
            "What did Raqqa24 say?",
        }
        chosen = client.predict("What did Raqqa24 say?", api_name="/chat")
        assert "refused" in chosen.split("\n", 1)[0] and CLARIFY not in chosen
    finally:
        app.close()


def test_the_unseen_conversation_set_is_well_formed():
    conversations = load_conversations(SEEDS / "conversations_unseen.jsonl")
    assert len(conversations) >= 15 and sum(len(turns) for _, turns in conversations) >= 60
    for _, turns in conversations:
        assert turns[0].standalone == turns[0].question
        assert all(turn.standalone for turn in turns)
    documents = {json.loads(line)["document"] for line in (SEEDS / "conversations_unseen.jsonl").open()}
    assert {"seed", "seed.pdf", "guide.docx", "notes.html"} <= documents
