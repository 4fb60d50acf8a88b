from qa.chat import contextual_query, escape, render_markdown, turns
from qa.documents import Paragraph
from qa.pipeline import Answer, Citation
from qa.retrieve import Hit

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


def test_follow_up_gets_the_last_turn_added():
    history = [("Who is making a broader effort to get civilians out?", "**the Raqqa Civil Council**\n[1] ...")]
    query = contextual_query("Where is it based?", history)
    assert query.startswith("Where is it based?") and "broader effort" in query and "Raqqa Civil Council" in query
    assert "[1]" not in query and "*" not in query


def test_self_contained_question_is_left_alone():
    history = [("Where did the meeting take place?", "Ayn Issa")]
    question = "How many civilians were evacuated from Raqqa since Monday according to Dillon?"
    assert contextual_query(question, history) == question
    assert contextual_query("Where did it happen?", []) == "Where did it happen?"


def test_escape_neutralises_html_and_markdown():
    escaped = escape("<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))")
    assert "<" not in escaped and ">" not in escaped
    assert "**" not in escaped and "](" not in escaped


def answer_with(passage, start, end):
    paragraph = Paragraph("news.txt", 2, passage, 0, len(passage))
    citation = Citation("news.txt", 2, start, end, passage, 3.0)
    return Answer(passage[start:end], 3.0, [citation], [Hit(paragraph, 0.1, 0.5, 1, 2.0, 1)])


def test_markdown_has_bold_answer_source_and_highlight():
    start = PASSAGE.index("Ayn Issa")
    markdown = render_markdown(answer_with(PASSAGE, start, start + 8))
    first, *rest = markdown.splitlines()
    assert first == "**Ayn Issa**"
    body = "\n".join(rest)
    assert "news\\.txt, paragraph 2, characters 35–43" in body
    assert "<mark>Ayn Issa</mark>" in body


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
