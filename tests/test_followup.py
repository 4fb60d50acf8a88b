"""Follow-up questions: the rules that make them self-contained, the real pipeline reading the rewritten
question, the conversation evaluation, and the chat page's multi-turn path through ``gradio_client``."""

import pytest

from qa.conversation.chat import escape, render_markdown
from qa.conversation.followup import is_elliptical, resolve
from qa.evaluation.conversations import evaluate_conversations, load_conversations
from qa.evaluation.squad import score_answer
from qa.reading.answers import NO_ANSWER
from qa.serving.web import build_app, launch_options
from tests.conftest import SEEDS
from tests.test_web import free_port

MEETING = "Where did the meeting take place?"
TWEETS = "Which activist group posted a series of tweets?"


@pytest.mark.parametrize(
    "history, question, expected",
    [
        # ellipsis: the wh-phrase goes in front of the previous question (inverted where it was), with its answer
        (
            [("Where was a similar deal reached in May?", "the Tabqa dam")],
            "Between whom?",
            "Between whom was a similar deal reached in May the Tabqa dam?",
        ),
        (
            [("Who released hundreds of ISIS-linked detainees?", "the SDF")],
            "After what?",
            "After what the SDF released hundreds of ISIS-linked detainees?",
        ),
        # an answer that already holds what the ellipsis asks about loses that phrase
        (
            [("What is the Coalition committed to?", "defeat of ISIS in Syria and Iraq")],
            "In which countries?",
            "In which countries is the Coalition committed to defeat of ISIS?",
        ),
        # a capitalised subject runs on through the common nouns before its verb
        (
            [
                ("Who met with the Raqqah Civil Council?", "local Syrian Arab tribal elders"),
                ("What were they discussing?", ""),
            ],
            "Where?",
            "Where were local Syrian Arab tribal elders discussing?",
        ),
        # "said so / that": the previous question as a statement, its answer in place
        (
            [("How many militants remain in the city?", "around 400")],
            "Who said so?",
            "Who said that around 400 militants remain in the city?",
        ),
        # pronouns: the subject the previous question asked about, or its subject
        (
            [("Which activist group posted a series of tweets?", "Raqqa24")],
            "Where is it based?",
            "Where is Raqqa24 based?",
        ),
        ([("Where did the meeting take place?", "Ayn Issa")], "What was it about?", "What was the meeting about?"),
        (
            [("Where did the meeting take place?", "Ayn Issa")],
            "How many people live there?",
            "How many people live in Ayn Issa?",
        ),
        (
            [("Who did local mediators talk to?", "US officers")],
            "What did they tell them?",
            "What did local mediators tell US officers?",
        ),
        # after a clause-long answer, "them" is the plural noun phrase after its "of", not the previous subject
        (
            [("What was the Coalition focused on?", "the safe evacuation of civilians from Raqqa")],
            "How many of them were evacuated?",
            "How many of civilians from Raqqa were evacuated?",
        ),
        (
            [("What was the Coalition focused on?", "the safe evacuation of civilians from Raqqa")],
            "Their number in the city?",
            "The number of civilians from Raqqa in the city?",
        ),
        (
            [("What did The Defense Post ask about?", "the composition of the ISIS militants remaining in Raqqa,")],
            "What might be higher than usual among them?",
            "What might be higher than usual among the ISIS militants remaining in Raqqa?",
        ),
        (
            [("What is the Coalition committed to?", "the defeat of ISIS in Syria and Iraq")],
            "Who leads them?",
            "Who leads the Coalition?",
        ),
        # a negation after the subject is no part of it
        (
            [("Which forces is the Coalition not negotiating with?", "ISIS forces")],
            "How much money has it spent on them?",
            "How much money has the Coalition spent on ISIS forces?",
        ),
        # a complete new question is left alone
        (
            [("Where did the meeting take place?", "Ayn Issa")],
            "What is the capital of France?",
            "What is the capital of France?",
        ),
    ],
)
def test_rules(history, question, expected):
    assert resolve(question, history) == expected


def test_referents_carry_through_a_chain_of_follow_ups():
    history = [
        ("Who is the Coalition spokesperson quoted by the press?", "Colonel Ryan Dillon"),
        ("How old is he?", ""),
    ]
    assert resolve("Where was he born?", history) == "Where was Colonel Ryan Dillon born?"
    history = [("Where did the meeting take place?", "Ayn Issa"), ("What is that place?", "the interim base")]
    assert resolve("On what day was it held?", history) == "On what day was the meeting held?"


def test_ellipsis_is_a_wh_phrase_alone():
    assert all(is_elliptical(q) for q in ("When?", "Since when?", "Between whom?", "On what date?", "And where?"))
    assert not any(is_elliptical(q) for q in ("Who gave assurances?", "When did it happen?", "Really?"))


@pytest.fixture(scope="module")
def conversation(seed_qa):
    """One conversation played through the real pipeline, with the answers it actually gave."""
    turns = [
        "How many militants remain in the city?",
        "Who said so?",
        "Where was a similar deal reached in May?",
        "Between whom?",
        "What is the capital of France?",
    ]
    history, answers = [], []
    for question in turns:
        answer = seed_qa.answer(question, history=history)
        history.append((question, render_markdown(answer)))
        answers.append(answer)
    return answers


def test_the_reader_reads_the_rewritten_follow_up(conversation):
    militants, said_so, deal, between, france = conversation
    assert militants.text in ("400", "around 400") and militants.question == "How many militants remain in the city?"
    assert said_so.question == f"Who said that {militants.text} militants remain in the city?"
    assert "Dillon" in said_so.text
    assert "Tabqa" in deal.text
    assert between.question.startswith("Between whom was a similar deal reached in May")
    assert score_answer(between.text, ["the SDF and ISIS"])[1] >= 0.5


def test_a_new_question_mid_conversation_stays_as_asked(conversation):
    france = conversation[-1]
    assert france.question == "What is the capital of France?" and france.text == ""


def test_a_declined_turn_is_not_taken_as_content(seed_qa):
    history = [("Who won the 1998 football world cup?", f"**{escape(NO_ANSWER)}**")]
    answer = seed_qa.answer("When?", history=history)
    assert "could not find" not in answer.question.lower() and "could not find" not in answer.query.lower()


def test_conversation_evaluation_reports_the_cost_of_being_a_follow_up(seed_qa):
    conversations = load_conversations(SEEDS / "conversations.jsonl")
    assert len(conversations) >= 15 and sum(len(turns) for _, turns in conversations) >= 60
    metrics, results = evaluate_conversations(seed_qa, conversations[:3], progress=False)
    assert metrics["turns"] == len(results) == sum(len(turns) for _, turns in conversations[:3])
    assert metrics["follow_up_cost"] == pytest.approx(metrics["follow_up_standalone_f1"] - metrics["follow_up_f1"])
    assert all(r.understood_as for r in results)


def test_the_chat_page_resolves_follow_ups(seed_qa):
    """Two turns through ``gradio_client``: the page keeps the session's history and the follow-up uses it."""
    from gradio_client import Client

    app = build_app(seed_qa)
    app.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", free_port()))
    try:
        client = Client(app.local_url, verbose=False)
        first = client.predict("How many militants remain in the city?", api_name="/chat")
        said = first.split("**")[1]  # the answer, in bold on the first line
        assert said in ("400", "around 400") and "Understood as" not in first
        follow_up = client.predict("Who said so?", api_name="/chat")
        assert "Dillon" in follow_up.split("\n", 1)[0]
        assert f"Understood as: Who said that {said} militants remain in the city?" in follow_up
        fresh = Client(app.local_url, verbose=False).predict("Who said so?", api_name="/chat")
        assert "Understood as" not in fresh  # another session has no history
    finally:
        app.close()
