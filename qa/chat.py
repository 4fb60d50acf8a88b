"""Chat helpers: earlier turns -> retrieval query, answer -> escaped markdown with highlighted citations."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.pipeline import Answer

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
SHORT_QUESTION_WORDS = 6
TURN_CHARS = 1000  # of each earlier message that goes into a follow-up's query
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
ANSWER_TAG = re.compile(r"<[^>]*>")


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


def contextual_query(question: str, history: History | None) -> str:
    """The retrieval query: the question, plus the last turn's question and answer for a follow-up."""
    pairs = turns(history)
    if not pairs or not is_follow_up(question):
        return question
    last_question, last_answer = (text[:TURN_CHARS] for text in pairs[-1])
    last_answer = ANSWER_TAG.sub(" ", last_answer.split("\n", 1)[0]).replace("*", "")
    return " ".join(part for part in (question, last_question, last_answer) if part.strip())


def escape(text: str) -> str:
    """Text safe to place in markdown that is rendered as HTML: no tags, no markdown syntax."""
    return html.escape(MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False).replace("\n", " ")


def render_markdown(answer: Answer, max_citations: int = 3) -> str:
    """The answer in bold, then each citation: document, paragraph, chars, and the paragraph with the
    answer span highlighted. All document and question text is escaped."""
    if not answer.found:
        lines = [f"**{escape(answer.message)}**"]
        if answer.hits:
            closest = answer.hits[0].paragraph
            lines.append(f"\nClosest passage: {escape(closest.doc_id)}, paragraph {closest.paragraph}")
        return "\n".join(lines)
    lines = [f"**{escape(answer.text)}**", ""]
    for number, citation in enumerate(answer.citations[:max_citations], start=1):
        passage = citation.passage
        highlighted = (
            escape(passage[: citation.start])
            + "<mark>"
            + escape(passage[citation.start : citation.end])
            + "</mark>"
            + escape(passage[citation.end :])
        )
        lines.append(
            f"[{number}] {escape(citation.doc_id)}, paragraph {citation.paragraph}, "
            f"characters {citation.start}–{citation.end}"
        )
        lines.append(f"> {highlighted}")
        lines.append("")
    return "\n".join(lines).rstrip()
