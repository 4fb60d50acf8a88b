"""A question's grammar, as far as follow-ups need it: word classes, and a wh-question cut into its wh-phrase,
its rest and (when inverted) its subject. Word lists and capitalisation, no parser."""

from __future__ import annotations

from dataclasses import dataclass

WH_WORDS = {"what", "which", "who", "whom", "whose", "where", "when", "why", "how"}
AUXILIARIES = {
    "is", "are", "was", "were", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would",
    "should", "shall", "may", "might", "must",
}  # fmt: skip
PARTICIPLES = {
    "made", "held", "done", "seen", "given", "taken", "known", "built", "born", "left", "sent", "said", "told",
    "found", "kept", "brought", "thought", "bought", "won", "lost", "paid", "met", "led", "run", "put", "set",
}  # fmt: skip
DO_FORMS = {"do", "does", "did"}
PREPOSITIONS = {"between", "to", "from", "with", "since", "after", "before", "in", "on", "at", "for", "by", "about"}
LEADING_CONNECTIVES = {"and", "but", "so", "then"}
NEGATIONS = {"not", "never", "no"}
DETERMINERS = {"a", "an", "the", "this", "that", "these", "those", "his", "her", "its", "their", "our", "my", "your"}
SUBJECT_PRONOUNS = {"he", "she", "it", "they"}


@dataclass(frozen=True)
class Parsed:
    """A question cut into its wh-phrase and the rest, and whether the rest is inverted (aux + subject)."""

    wh_phrase: str  # "Where", "How many militants", "Between whom"
    rest: str  # "was a similar deal reached in May"
    inverted: bool  # the rest starts with an auxiliary and then its subject
    subject: str  # the subject noun phrase of an inverted rest ("a similar deal"), else ""


def parse(question: str) -> Parsed | None:
    """Split a wh-question; None when it does not start with a (prepositional) wh-phrase."""
    words = question.rstrip(" ?").split()
    position = 1 if words and words[0].lower() in LEADING_CONNECTIVES else 0
    if len(words) > position + 1 and words[position].lower() in PREPOSITIONS:
        position += 1
    if position >= len(words) or words[position].lower() not in WH_WORDS:
        return None
    end = position + 1
    wh = words[position].lower()
    if wh == "how" and end < len(words) and words[end].lower() not in AUXILIARIES:
        end += 2 if words[end].lower() in ("many", "much") else 1  # "how many militants", "how old"
    elif wh in ("which", "what", "whose"):  # "which activist group": the noun phrase runs to the verb
        limit = min(len(words), end + 3)
        while end < limit and not is_verb(words[end]) and words[end][0].islower():
            end += 1
        if end == limit and limit < len(words) and not is_verb(words[end]):
            end = position + 1
    rest = words[end:]
    inverted = len(rest) >= 2 and rest[0].lower() in AUXILIARIES and not is_verb(rest[1])
    subject = noun_phrase_at(rest[1:]) if inverted else ""
    return Parsed(" ".join(words[:end]), " ".join(rest), inverted, subject)


def is_verb(word: str) -> bool:
    """An auxiliary, or a word that reads as a participle or past tense ("posted", "trying", "held")."""
    lower = word.lower()
    return lower in AUXILIARIES or lower in PARTICIPLES or (len(lower) > 4 and lower.endswith(("ed", "ing")))


def is_noun(word: str) -> bool:
    """A lower-case word that is no verb, auxiliary, preposition, determiner or negation."""
    lower = word.lower()
    return word.islower() and not is_verb(word) and lower not in PREPOSITIONS | DETERMINERS | NEGATIONS


def starts_noun_phrase(word: str) -> bool:
    lower = word.lower()
    return lower in DETERMINERS or lower in SUBJECT_PRONOUNS or lower in ("i", "we", "you") or word[:1].isupper()


def noun_phrase_at(words: list[str]) -> str:
    """The noun phrase at the start of ``words``: a determiner then lower-case words, or capitalised words."""
    if not words:
        return ""
    if words[0][:1].isupper():
        phrase = [words[0]]
        for word in words[1:]:
            if not (word[:1].isupper() or word.lower() in ("of", "for")):
                break
            phrase.append(word)
        rest = words[len(phrase) :]
        nouns = 0
        while nouns < len(rest) and is_noun(rest[nouns]):
            nouns += 1
        if 0 < nouns < len(rest) and is_verb(rest[nouns]):  # "Coalition aircraft do", "Arab tribal elders were"
            phrase.extend(rest[:nouns])
        return " ".join(phrase).rstrip(",")
    if words[0].lower() in SUBJECT_PRONOUNS:
        return ""
    phrase = [words[0]]
    if len(words) > 1 and words[1][:1].isupper():  # "the Raqqah Civil Council"
        return " ".join([words[0], noun_phrase_at(words[1:])])
    for word in words[1:3]:  # "the meeting", "a similar deal"
        if word.lower() in AUXILIARIES or word.lower() in PREPOSITIONS:
            break
        phrase.append(word)
        if not word.endswith(("ar", "al", "ic", "ed")) or len(phrase) == 3:  # adjectives let the phrase go on
            break
    return " ".join(phrase)
