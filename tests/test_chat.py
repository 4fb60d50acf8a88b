from dataclasses import replace

import pytest

from qa.conversation.chat import answer_text, escape, render_markdown, turns, understand, without_request
from qa.documents.paragraphs import Paragraph
from qa.reading.answers import NO_ANSWER, NOT_SURE, Answer, Citation, likelihood, margin_probability, percent
from qa.search.retriever import Hit

PASSAGE = "The meeting reportedly occurred in Ayn Issa, the interim base for Raqqa Civil Council."


def test_turns_accepts_messages_and_pairs():
    messages = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": [{"type": "text", "text": "Q2"}]},
    ]
    assert turns(messages) == [("Q1", "A1"), ("Q2", "")]
    assert turns([("Q1", "A1")]) == [("Q1", "A1")]
    assert turns(None) == []


def test_a_follow_up_is_understood_and_retrieved_as_a_self_contained_question():
    history = [
        ("Which council is making a broader effort to get civilians out?", "**the Raqqa Civil Council**\n[1] ...")
    ]
    understood, query = understand("Where is its interim base?", history)[0]
    assert understood == "Where is the Raqqa Civil Council's interim base?"
    assert query == understood


def test_an_unresolved_follow_up_keeps_the_last_turn_in_its_query():
    history = [("Who is making a broader effort to get civilians out?", "**the Raqqa Civil Council**\n[1] ...")]
    understood, query = understand("Who else?", history)[0]
    assert query.startswith("Who else") and "broader effort" in query and "Raqqa Civil Council" in query
    assert "[1]" not in query and "*" not in query


def test_self_contained_question_is_left_alone():
    history = [("Where did the meeting take place?", "Ayn Issa")]
    question = "How many civilians were evacuated from Raqqa since Monday according to Dillon?"
    assert understand(question, history)[0] == (question, question)
    assert understand("Where did it happen?", [])[0] == ("Where did it happen?", "Where did it happen?")


@pytest.mark.parametrize(
    ("asked", "question"),
    [
        ("tell me what kind of withdrawal was discussed", "What kind of withdrawal was discussed"),
        ("Can you tell me where the meeting took place?", "Where the meeting took place?"),
        ("Could you please tell me, who refused?", "Who refused?"),
        ("do you know who refused to take part in the meeting", "Who refused to take part in the meeting"),
        ("I would like to know when Dillon spoke", "When Dillon spoke"),
        ("I\u2019d like to know which town it was", "Which town it was"),
        ("Please tell me: how many civilians left?", "How many civilians left?"),
    ],
)
def test_a_request_around_a_wh_question_is_unwrapped(asked, question):
    assert without_request(asked) == question
    assert understand(asked, [])[0] == (question, question)


@pytest.mark.parametrize(
    "asked", ["Tell me about Raqqa", "Who told you?", "Do you know Raqqa?", "tell me whether it rained"]
)
def test_text_that_is_no_request_around_a_wh_question_is_left_alone(asked):
    assert without_request(asked) == asked


def test_an_earlier_request_is_unwrapped_before_a_follow_up_leans_on_it():
    history = [("Can you tell me who spoke to the Associated Press on Wednesday?", "**Colonel Ryan Dillon**")]
    understood, _ = understand("When?", history)[0]
    assert understood == "When Colonel Ryan Dillon spoke to the Associated Press on Wednesday?"


def test_the_products_own_messages_are_not_answers():
    assert answer_text(f"**{escape(NO_ANSWER)}**\n\nClosest passage: news.txt") == ""
    assert answer_text("**Please type a question\\.**") == ""
    assert answer_text("**at least 700**\n\n[1] news.txt") == "at least 700"
    assert answer_text("**Raqqa24 \\(activists\\) &amp; co**") == "Raqqa24 (activists) & co"
    history = [("Who won the cup?", f"**{escape(NO_ANSWER)}**"), ("When?", "")]
    understood, query = understand("Where?", history[:1])[0]
    assert "find that" not in understood and "find that" not in query


def test_escape_neutralises_html_and_markdown():
    escaped = escape("<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))")
    assert "<" not in escaped and ">" not in escaped
    assert "**" not in escaped and "](" not in escaped


def answer_with(passage, start, end):
    paragraph = Paragraph("news.txt", 2, passage, 0, len(passage))
    citation = Citation("news.txt", 2, start, end, passage, 3.0, confidence=margin_probability(3.0))
    return Answer(passage[start:end], 3.0, [citation], [Hit(paragraph, 0.1, 0.5, 1, 2.0, 1)])


def test_markdown_has_bold_answer_source_and_highlight():
    start = PASSAGE.index("Ayn Issa")
    markdown = render_markdown(answer_with(PASSAGE, start, start + 8))
    first, *rest = markdown.splitlines()
    assert first == "**Ayn Issa**"
    body = "\n".join(rest)
    assert "news\\.txt, paragraph 2, characters 35–43" in body
    assert "<mark>Ayn Issa</mark>" in body


def test_citations_that_say_something_else_are_shown_as_other_possible_answers():
    other = "The Raqqa Civil Council met tribal elders on Wednesday."
    again = "Talks were held in ayn issa again in June."
    answer = Answer(
        "Ayn Issa",
        3.0,
        [
            Citation("news.txt", 2, 35, 43, PASSAGE, 3.0),
            Citation("news.txt", 5, other.index("tribal"), other.index(" on"), other, 2.0),
            Citation("news.txt", 7, again.index("ayn"), again.index(" again"), again, 1.0),
        ],
    )
    assert [c.paragraph for c in answer.supporting] == [2, 7]  # the same answer, SQuAD-normalised
    assert [c.paragraph for c in answer.alternatives] == [5]
    lines = render_markdown(answer).splitlines()
    other_at = lines.index("_Other possible answers in the documents:_")
    assert [line[:4] for line in lines if line.startswith("[")] == ["[1] ", "[2] ", "[3] "]
    assert lines.index(next(line for line in lines if line.startswith("[3] "))) > other_at
    assert "paragraph 7" in next(line for line in lines if line.startswith("[2] "))
    assert "<mark>tribal elders</mark>" in "\n".join(lines[other_at:])
    assert "Other possible" not in render_markdown(answer, max_citations=2)  # the two that support it


def test_document_html_is_escaped_in_citations():
    passage = "Attack: <script>alert(1)</script> happened at <b>noon</b>."
    start = passage.index("noon")
    markdown = render_markdown(answer_with(passage, start, start + 4))
    assert "<script>" not in markdown and "<b>" not in markdown
    assert "&lt;script&gt;" in markdown
    assert "<mark>noon</mark>" in markdown


def test_no_answer_says_so():
    paragraph = Paragraph("news.txt", 0, PASSAGE, 0, len(PASSAGE))
    markdown = render_markdown(Answer("", -3.0, [], [Hit(paragraph, 0.1, 0.5, 1, None, None)]))
    assert markdown.startswith("**I could not find that in the documents\\.**")


def test_confident_answers_show_their_confidence():
    start = PASSAGE.index("Ayn Issa")
    markdown = render_markdown(answer_with(PASSAGE, start, start + 8))
    assert "confidence 95%" in markdown  # uncalibrated: margin 3.0 -> 1 / (1 + e^-3)


def test_calibrated_confidence_reads_in_whole_percents_within_1_and_99():
    start = PASSAGE.index("Ayn Issa")
    uncalibrated = answer_with(PASSAGE, start, start + 8)
    sure = replace(uncalibrated.citations[0], confidence=0.9996)
    markdown = render_markdown(replace(uncalibrated, citations=[sure], calibrated=True))
    assert "99% likely right" in markdown and "confidence" not in markdown
    assert likelihood(0.724, calibrated=True) == "72% likely right"
    assert likelihood(0.001, calibrated=True) == "1% likely right"


def test_percentages_near_0_and_100_keep_the_digits_that_tell_them_apart():
    assert percent(0.95) == "95%" and percent(1.0) == "100%" and percent(0.0) == "0%"
    assert percent(margin_probability(9.0)) == "99.99%" and percent(margin_probability(10.0)) == "99.995%"
    assert percent(margin_probability(-9.0)) == "0.01%" and percent(margin_probability(15.0)) == ">99.9999%"


def test_unsure_answers_show_the_candidate_underlined_and_say_so():
    start = PASSAGE.index("Ayn Issa")
    candidate = Citation("news.txt", 2, start, start + 8, PASSAGE, -0.5, confidence=margin_probability(-0.5))
    unsure = Answer("", -0.5, [], [], candidates=[candidate], evidence=[candidate], threshold=0.5)
    markdown = render_markdown(unsure)
    first, *rest = markdown.splitlines()
    assert first == f"**{escape(NOT_SURE)}**" and answer_text(markdown) == ""
    assert "<u>Ayn Issa</u>" in markdown and "<mark>" not in markdown
    assert "confidence 38%" in markdown and "need: confidence 62%" in markdown
    calibrated = replace(unsure, calibrated=True, min_confidence=0.6, evidence=[replace(candidate, confidence=0.31)])
    assert "31% likely right" in render_markdown(calibrated) and "need: 60% likely right" in render_markdown(calibrated)
    hopeless = Answer("", -9.0, [], [], candidates=[candidate], evidence=[], threshold=0.5)
    assert render_markdown(hopeless) == f"**{escape(NO_ANSWER)}**"  # no misleading passage
