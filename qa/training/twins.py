"""Unanswerable twins of answerable training questions: the right paragraph, a question it does not answer.

SQuAD 2.0 wrote most of its unanswerable questions by editing answerable ones (Rajpurkar et al. 2018: entity
swaps 21%, antonyms 20%, ...); the shared data holds only 5.7k such questions against 88k answerable ones, and
retrieval negatives teach "wrong paragraph", not "this paragraph, but not about that". Each generator here
writes one kind of edit, labelled unanswerable, for a share of the answerable examples:

- ``swapped_questions``: a name or year the question shares with its paragraph replaced by one from another
  article ("When was the deal at the Tabqa dam reached?" -> "... at the Paris dam ...").
- ``antonym_questions``: an adjective replaced by its opposite that the paragraph never uses ("Who was the first
  mayor?" -> "Who was the last mayor?" on a paragraph without "last", "final" or "latest").
- ``paragraph_swapped_questions``: a name or year the question shares with its paragraph replaced by another
  one of the same paragraph that no sentence ties to the question's other words ("When did Tesla move to New
  York?" -> "When did Edison move to New York?"): every word of the twin is in the paragraph, the fact is not.
- ``answer_cut_twins``: the question unchanged, its paragraph without the sentences that hold the answer: the
  names and topic the question asks about are still there, the fact is not.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import replace

from qa.evaluation.squad import SquadExample, lacks_answer

SWAPPED_ID_SUFFIX = "#swapped"
ANTONYM_ID_SUFFIX = "#antonym"
CUT_ID_SUFFIX = "#cut"
PARAGRAPH_SWAPPED_ID_SUFFIX = "#paragraph-swapped"
# Where a sentence may end: ., ! or ? (closing quotes or brackets may follow), white space, then a capital, digit,
# quote or bracket. Not after an initial or a title ("U.S. Army", "Dr. Smith"), checked in ``sentence_spans``.
# Stricter than ``qa.documents.paragraphs.SENTENCE_END``, which only looks for a place to cut a block too long to
# read whole: a twin must lose the whole sentence that holds the answer.
# A stop, closing quotes or brackets and citation marks ("1945.[3] It", in 2.6% of SQuAD 1.1 paragraphs), a space.
SENTENCE_END = re.compile(r"[.!?](?:[\"')\]\u201d\u2019]|\[[^\[\]]{1,20}\])*\s+(?=[A-Z0-9\"'(\u201c\u2018])")
NOT_AN_END = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Col|Lt|Gov|Sen|Rep|No|vs|ca|c))\.$")
# What a swap replaces: a year, or a run of capitalised words (a name: "Ryan Dillon", "U.S.", "Tabqa").
SWAPPABLE = re.compile(r"(?P<year>\b(?:1[5-9]|20)\d\d\b)|(?P<name>\b[A-Z][\w.-]*(?:\s+[A-Z][\w.-]*)*)")
# Capitalised, but no name to swap for another ("May", "Monday"); and question or function words that say nothing
# of what a sentence is about, left out when checking whether a name is written beside the question's words.
CALENDAR_WORDS = frozenset(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday".split()
)
STOP_WORDS = frozenset("what which when where whom whose does have were that this with from into about after".split())
# Opposites whose swap makes a question that a paragraph without the opposite (nor the words after "|", which
# say the same) cannot answer. Left out on purpose: words whose opposite a paragraph often says otherwise
# (start/end -> "began", increase/decrease -> "fell", won/lost -> "defeated") and quantifiers (most, more).
OPPOSITES = """
first last|final latest; earliest latest|last; oldest youngest|newest; largest smallest|least; biggest smallest|least;
highest lowest; longest shortest; strongest weakest; richest poorest; fastest slowest; heaviest lightest;
best worst; north south|southern; east west|western; northern southern|south; eastern western|west;
public private; ancient modern; major minor; majority minority; maximum minimum; internal external;
legal illegal; upper lower
"""


def _opposites(table: str) -> dict[str, tuple[str, ...]]:
    """word -> (its opposite, other words for the opposite), both ways round for each pair in ``table``."""
    opposites: dict[str, tuple[str, ...]] = {}
    for entry in table.replace("\n", " ").split(";"):
        pair, _, same = entry.partition("|")
        word, opposite = pair.split()
        opposites.setdefault(word, (opposite, *same.split()))
        opposites.setdefault(opposite, (word,))
    return opposites


ANTONYMS = _opposites(OPPOSITES)


def antonym_questions(examples: list[SquadExample], share: float, seed: int) -> list[SquadExample]:
    """For ``share`` of the answerable examples whose question uses a lower-case word of ``OPPOSITES`` (after
    its first word) whose opposite neither the question nor the paragraph uses: the question with that word
    replaced by its opposite, labelled unanswerable."""
    if share <= 0:
        return []
    rng = random.Random(f"{seed}{ANTONYM_ID_SUFFIX}")  # not the draws of swapped_questions: other examples
    twins = []
    for example in _drawn(examples, share, rng):
        words = [match for match in list(re.finditer(r"\b[a-z]+\b", example.question))[1:] if match[0] in ANTONYMS]
        used = set(re.findall(r"\w+", f"{example.question} {example.context}".lower())) if words else set()
        for match in words:
            opposite, *same = ANTONYMS[match[0]]
            if not {opposite, *same} & used:
                question = example.question[: match.start()] + opposite + example.question[match.end() :]
                twins.append(unanswerable_twin(example, ANTONYM_ID_SUFFIX, question=question))
                break
    return twins


def _drawn(examples: list[SquadExample], share: float, rng: random.Random):
    """The answerable examples, each kept with probability ``share`` (one draw each, in order, drawn lazily so
    that the caller's own draws interleave as they come)."""
    return (example for example in examples if not example.is_impossible and rng.random() < share)


def unanswerable_twin(example: SquadExample, suffix: str, **changes: str) -> SquadExample:
    """``example`` with ``changes`` (its question or its paragraph), labelled unanswerable, its id + ``suffix``."""
    return replace(example, id=example.id + suffix, answers=(), answer_start=-1, **changes)


def swapped_questions(examples: list[SquadExample], share: float, seed: int) -> list[SquadExample]:
    """For ``share`` of the answerable examples whose question names something its paragraph also names (a
    year or a capitalised name, not the question's first word), the question with that name replaced by one
    that questions of another article use and this paragraph never mentions, labelled unanswerable."""
    if share <= 0:
        return []
    rng = random.Random(seed)
    pools: dict[str, dict[str, set[str]]] = {"year": defaultdict(set), "name": defaultdict(set)}
    for example in examples:
        for kind, text, _ in _swappable(example.question):
            pools[kind][text].add(example.title)
    names = {kind: sorted(pool) for kind, pool in pools.items()}
    swapped = []
    for example in _drawn(examples, share, rng):
        shared = [found for found in _swappable(example.question) if found[1] in example.context]
        rng.shuffle(shared)
        question = next((q for found in shared if (q := _swap(example, *found, pools, names, rng))), None)
        if question:
            swapped.append(unanswerable_twin(example, SWAPPED_ID_SUFFIX, question=question))
    return swapped


def _swap(example: SquadExample, kind: str, text: str, start: int, pools, names, rng: random.Random) -> str | None:
    """``example``'s question with ``text`` (at ``start``) replaced by a ``kind`` of another article that the
    paragraph does not mention; None when ten draws find none."""
    context = example.context.lower()
    for _ in range(10 if names[kind] else 0):
        other = rng.choice(names[kind])
        if example.title not in pools[kind][other] and other.lower() not in context:
            return example.question[:start] + other + example.question[start + len(text) :]
    return None


def _swappable(question: str) -> list[tuple[str, str, int]]:
    """(kind, text, start) of the years and names in ``question`` after its first word."""
    found = []
    for match in SWAPPABLE.finditer(question):
        kind, text, start = match.lastgroup, match.group(), match.start()
        if kind == "name":
            if text.endswith(".") and text.count(".") == 1:
                text = text[:-1]  # the question's full stop, not an abbreviation's
            if text.startswith("The "):
                text, start = text[4:], start + 4
        if start > 0 and len(text) > 1:  # not the question word, not "I" or an initial
            found.append((kind, text, start))
    return found


def paragraph_swapped_questions(examples: list[SquadExample], share: float, seed: int) -> list[SquadExample]:
    """For ``share`` of the answerable examples whose question names something its paragraph also names: the
    question with it replaced by another name (or year) of the paragraph that neither the question nor the
    answer holds and that no sentence of the paragraph names together with two of the question's other content
    words, labelled unanswerable."""
    if share <= 0:
        return []
    rng = random.Random(f"{seed}{PARAGRAPH_SWAPPED_ID_SUFFIX}")
    twins = []
    for example in _drawn(examples, share, rng):
        shared = [
            found
            for found in _swappable(example.question)
            if found[1] in example.context and found[1].lower() not in CALENDAR_WORDS
        ]
        rng.shuffle(shared)
        names = _names_in(example.context)  # the paragraph read once for every name of the question
        sentences = [
            (example.context[s:e].lower(), _content_words(example.context[s:e]))
            for s, e in sentence_spans(example.context)
        ]
        question = next((q for found in shared if (q := _swap_within(example, *found, names, sentences, rng))), None)
        if question:
            twins.append(unanswerable_twin(example, PARAGRAPH_SWAPPED_ID_SUFFIX, question=question))
    return twins


def _swap_within(
    example: SquadExample,
    kind: str,
    text: str,
    start: int,
    names: set[tuple[str, str]],
    sentences: list[tuple[str, set[str]]],
    rng: random.Random,
) -> str | None:
    """``example``'s question with ``text`` replaced by another ``kind`` among the paragraph's ``names`` that no
    one of its ``sentences`` (lower-cased text, content words) ties to the question's other words; None where
    there is none."""
    taken = f"{example.question} {example.answers[0]}".lower()
    others = sorted(
        name
        for found_kind, name in names
        if found_kind == kind and name.lower() not in taken and text.lower() not in name.lower()
    )
    words = _content_words(example.question[:start] + example.question[start + len(text) :])
    rng.shuffle(others)
    for other in others:
        if not any(other.lower() in sentence and len(words & stems) >= 2 for sentence, stems in sentences):
            return example.question[:start] + other + example.question[start + len(text) :]
    return None


def _names_in(text: str) -> set[tuple[str, str]]:
    """(kind, text) of the years and names of a paragraph, leaving out a capitalised word that starts a
    sentence ("However", "The"), also after a citation mark ("[1] However")."""
    found = set()
    for match in SWAPPABLE.finditer(text):
        before = match.start() - 1
        while before >= 0 and text[before].isspace():
            before -= 1
        name = re.split(r"\.\s", match.group())[0]  # "Jordan Hall. The Boston Ballet": one sentence's name
        name = name.rstrip(".") if name.count(".") == 1 else name
        if match.lastgroup == "name" and (before < 0 or text[before] in ".!?\"'\u201c\u201d(]"):
            continue
        if len(name) > 1 and name.lower() not in CALENDAR_WORDS:
            found.add((match.lastgroup, name))
    return found


def _content_words(text: str) -> set[str]:
    """The first four letters of each word of four letters or more of ``text`` that is no question or function
    word: a crude stem, so that "move" and "moved" meet."""
    return {word[:4] for word in re.findall(r"[a-z]{4,}", text.lower()) if word not in STOP_WORDS}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, trailing white space left out."""
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        if NOT_AN_END.search(text, max(0, match.start() - 8), match.start() + 1):  # the word before the stop
            continue
        end = match.start() + len(match.group().rstrip())
        spans.append((start, end))
        start = match.end()
    if start < len(text.rstrip()):
        spans.append((start, len(text.rstrip())))
    return spans


def answer_cut_twins(examples: list[SquadExample], share: float, seed: int) -> list[SquadExample]:
    """For ``share`` of the answerable examples whose paragraph has a sentence more than the ones holding the
    answer: the question over the paragraph without those sentences, labelled unanswerable, where no reference
    answer is left in it."""
    if share <= 0:
        return []
    rng = random.Random(f"{seed}{CUT_ID_SUFFIX}")
    twins = []
    for example in _drawn(examples, share, rng):
        answer_end = example.answer_start + len(example.answers[0])
        kept = [
            (start, end)
            for start, end in sentence_spans(example.context)
            if end <= example.answer_start or start >= answer_end
        ]
        paragraph = " ".join(example.context[start:end] for start, end in kept)
        if kept and lacks_answer(paragraph, example):
            twins.append(unanswerable_twin(example, CUT_ID_SUFFIX, context=paragraph))
    return twins
