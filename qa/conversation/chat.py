"""Chat helpers: earlier turns -> the question understood and the retrieval query; answer -> escaped markdown
with highlighted citations."""

from __future__ import annotations

import html
import re
from typing import Any

from qa.conversation.followup import readings
from qa.conversation.grammar import WH_WORDS
from qa.reading.answers import (
    CLARIFY,
    NO_ANSWER,
    NOT_SURE,
    OTHER_ANSWERS,
    Answer,
    Citation,
    likelihood,
    margin_probability,
)

# Either Gradio-style messages ({"role": ..., "content": ...}) or (user, assistant) pairs.
History = list[dict[str, Any] | tuple[str, str] | list[str]]

FOLLOW_UP_WORDS = {
    "it",
    "its",
    "they",
    "them",
    "their",
    "theirs",
    "he",
    "him",
    "his",
    "she",
    "her",
    "hers",
    "there",
    "that",
    "this",
    "those",
    "these",
    "then",
    "such",
    "one",
    "ones",
}
# "Who else?" leans on the last turn; "Who gave assurances?" is complete (at 6 words, the conversation set's
# follow-up F1 was 72.8; at 2, 77.1: the previous turn's words pulled retrieval off for complete short questions).
SHORT_QUESTION_WORDS = 2
TURN_CHARS = 1000  # of each earlier message that goes into a follow-up's query
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
ANSWER_TAG = re.compile(r"<[^>]*>")
MARKDOWN_ESCAPE = re.compile(r"\\(.)")
# A request wrapped around a question lowers the reader's margin, sometimes below the threshold (1.19): on the
# seed article "tell me what kind of withdrawal was discussed" 0.87 against 1.53 unwrapped, "Can you tell me
# ..." -1.18, "do you know who refused to take part in the meeting" 5.59 against 8.42. Every seed-set question
# asked in three wrappings (benchmarks/bench_requests.py), as typed -> unwrapped: F1 fresh 77.1 -> 87.5 (plain
# 87.5), unseen 53.5 -> 60.9, seed 85.9 -> 86.8, out-of-corpus all declined either way. Only a wh-question is
# unwrapped: "Tell me about Raqqa" asks for no span.
REQUEST = re.compile(
    r"^(?:please\s+)?(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?tell\s+me|tell\s+me|do\s+you\s+know"
    r"|i(?:\s+want|\s+would\s+like|['\u2019]d\s+like|\s+need)\s+to\s+know|i\s+wonder|i\s+was\s+wondering)[\s,:]+"
    rf"(?=(?:{'|'.join(sorted(WH_WORDS))})\b)",
    re.IGNORECASE,
)
# Messages the product writes itself: an earlier turn that shows one of them had no answer, not content.
PRODUCT_MESSAGES = (
    NO_ANSWER,
    NOT_SURE,
    "Please type a question",
    "Your question is too long",
    "Sorry, something went wrong",
)


def turns(history: History | None) -> list[tuple[str, str]]:
    """Normalise a chat history to (user message, assistant message) pairs."""
    pairs: list[tuple[str, str]] = []
    for item in history or []:
        if isinstance(item, dict):
            content = _plain(item.get("content"))
            if item.get("role") == "user":
                pairs.append((content, ""))
            elif item.get("role") == "assistant" and pairs:
                pairs[-1] = (pairs[-1][0], content)
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            pairs.append((_plain(item[0]), _plain(item[1])))
    return pairs


def _plain(content: Any) -> str:
    """Text of a message whose content may be a string, a list of parts or None."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_plain(part.get("text") if isinstance(part, dict) else part) for part in content)
    return ""


def is_follow_up(question: str) -> bool:
    """A question that leans on earlier turns: short, or with a pronoun/demonstrative."""
    words = re.findall(r"[a-z']+", question.lower())
    return len(words) <= SHORT_QUESTION_WORDS or any(word in FOLLOW_UP_WORDS for word in words)


def answer_text(message: str) -> str:
    """The answer an assistant message gave, as plain text: its first line without markup; "" when the message
    is one of the product's own (no answer, an error)."""
    first_line = ANSWER_TAG.sub(" ", message.strip().split("\n", 1)[0] if message.strip() else "")
    text = unescape(first_line.replace("**", "")).strip()
    return "" if text.startswith(PRODUCT_MESSAGES) else " ".join(text.split())[:TURN_CHARS]


def unescape(text: str) -> str:
    """Text that ``escape`` made safe for the page, back as it was typed."""
    return html.unescape(MARKDOWN_ESCAPE.sub(r"\1", text))


def without_request(question: str) -> str:
    """The wh-question inside a request ("Can you tell me who ...?" -> "Who ...?"); other text as it is."""
    plain = REQUEST.sub("", question, count=1)
    return question if plain == question else plain[:1].upper() + plain[1:]


def understand(question: str, history: History | None, limit: int = 1) -> list[tuple[str, str]]:
    """Up to ``limit`` readings of the question, each (the question made self-contained, its retrieval query),
    the rules' reading first (``qa.conversation.followup.readings``). A request is unwrapped (``without_request``); a
    follow-up that the rules could not rewrite keeps the previous turn's question and answer in its retrieval
    query."""
    question = without_request(question)
    pairs = [(without_request(asked[:TURN_CHARS]), answer_text(answered)) for asked, answered in turns(history)]
    if not pairs:
        return [(question, question)]
    found = readings(question, pairs, limit)
    if found[0] != question or not is_follow_up(question):
        return [(reading, reading) for reading in found]
    last_question, last_answer = pairs[-1]
    query = " ".join(part for part in (question, last_question, last_answer) if part.strip())
    return [(question, query), *[(reading, reading) for reading in found[1:]]]


def escape(text: str) -> str:
    """Text safe to place in markdown that is rendered as HTML: no tags, no markdown syntax."""
    return html.escape(MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False).replace("\n", " ")


def render_markdown(answer: Answer, max_citations: int = 3) -> str:
    """The answer in bold (and, when the question was rewritten, the question as understood; when it could mean
    two things, "Do you mean A or B?"), then each citation:
    document, paragraph, chars, confidence, and the paragraph with the answer highlighted (``<mark>``).
    Without an answer: "not sure" and the best candidate underlined (``<u>``) when there is evidence worth
    checking, else "could not find". All text from documents and questions is escaped."""
    understood = f"\n\n_Understood as: {escape(answer.question)}_" if answer.rewritten else ""
    if answer.clarify:
        choices = " or ".join(f"“{escape(reading)}”" for reading in answer.clarify)
        understood += f"\n\n{CLARIFY} {choices}"
    if answer.found:
        lines = [f"**{escape(answer.text)}**{understood}", ""]
        supporting = answer.supporting[:max_citations]
        alternatives = answer.alternatives[: max_citations - len(supporting)]
        for number, citation in enumerate(supporting, start=1):
            lines += [*_cited(number, citation, "mark", answer.calibrated), ""]
        if alternatives:
            lines += [f"_{OTHER_ANSWERS}_", ""]
        for number, citation in enumerate(alternatives, start=len(supporting) + 1):
            lines += [*_cited(number, citation, "mark", answer.calibrated), ""]
        return "\n".join(lines).rstrip()
    if not answer.evidence:
        return f"**{escape(NO_ANSWER)}**{understood}"
    lines = [
        f"**{escape(NOT_SURE)}**{understood}",
        "",
        f"The closest passage, with a possible answer underlined (answers need: {needed(answer)}):",
        "",
    ]
    for number, citation in enumerate(answer.evidence[:max_citations], start=1):
        lines += [*_cited(number, citation, "u", answer.calibrated), ""]
    return "\n".join(lines).rstrip()


def needed(answer: Answer) -> str:
    """What an answer needed, on the scale its confidences are shown in."""
    if answer.calibrated and answer.min_confidence is not None:
        return likelihood(answer.min_confidence, calibrated=True)
    return likelihood(margin_probability(answer.threshold), calibrated=False)


def _cited(number: int, citation: Citation, tag: str, calibrated: bool) -> list[str]:
    """A citation's heading line and its quoted passage with ``passage[start:end]`` inside ``<tag>``."""
    passage = citation.passage
    highlighted = (
        escape(passage[: citation.start])
        + f"<{tag}>"
        + escape(passage[citation.start : citation.end])
        + f"</{tag}>"
        + escape(passage[citation.end :])
    )
    heading = (
        f"[{number}] {escape(citation.source)}, paragraph {citation.paragraph}, "
        f"characters {citation.start}–{citation.end} · {likelihood(citation.confidence, calibrated)}"
    )
    return [heading, f"> {highlighted}"]
