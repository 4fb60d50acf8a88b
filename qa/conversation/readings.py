"""Which reading of a follow-up the documents answer (``QA.answer``): each reading's best passage is read in one
batch and the reader's margins choose; two readings the documents answer differently and about as surely make
the chat ask back ("Do you mean A or B?")."""

from __future__ import annotations

from qa.reading.answers import normalize_answer
from qa.reading.reader import Reader, Span

# A follow-up is read up to this many ways (``qa.conversation.followup.readings``): the rules' reading and the question
# with its pronoun standing for each other earlier referent that agrees with it; the documents choose. Follow-up F1 on
# seeds/conversations.jsonl (the development set) at prior 1.0: 1 / 2 / 3 / 4 readings 81.7 / 81.7 / 82.8 / 83.2 (the
# 4th reading's gain is one turn).
DEFAULT_READINGS = 3
# The rules' reading is kept unless another reading's answer margin beats it by this much. On the same set at 3
# readings: prior 0 / 0.5 / 1 / 2 / 4 -> 80.6 / 80.6 / 82.8 / 82.8 / 82.8.
READING_PRIOR = 1.0
# Two readings whose answers differ, both above the threshold and within this margin of each other: the chat asks
# back which one the user means (``Answer.clarify``).
CLARIFY_WINDOW = 1.0


def choose_reading(reader: Reader, questions: list[str], passages: list[str]) -> tuple[int, int | None, Span]:
    """(the reading to answer, a rival reading to ask back about or None, the chosen reading's span in its
    passage), given each reading's question and its best-ranked passage. The rules' reading (the first) keeps its
    place unless another's margin beats it by ``READING_PRIOR``; a rival has a different answer, both margins
    above the threshold and within ``CLARIFY_WINDOW`` of each other."""
    spans = reader.read_pairs(questions, passages)
    scores = [span.score + (READING_PRIOR if position == 0 else 0.0) for position, span in enumerate(spans)]
    best = max(range(len(spans)), key=scores.__getitem__)
    rivals = [
        position
        for position, span in enumerate(spans)
        if position != best
        and min(span.score, spans[best].score) > reader.threshold
        and normalize_answer(span.text) != normalize_answer(spans[best].text)
        and abs(spans[best].score - span.score) < CLARIFY_WINDOW
    ]
    return best, rivals[0] if rivals else None, spans[best]
