"""Follow-up questions: turn (earlier turns, question) into a self-contained question.

Rules over the previous turn's (resolved) question and the answer the system gave, no model:

- **Complete questions stay as they are**: no pronoun that points back, not elliptical.
- **Ellipsis** ("When?", "Between whom?", "On what date?"): the short question's wh-phrase is put in front of
  the previous question (its statement where it was not inverted), with the previous answer at its end:
  "Where was a similar deal reached in May?" / "the Tabqa dam" + "Between whom?" ->
  "Between whom was a similar deal reached in May the Tabqa dam?"; an answer that holds the phrase asked
  about loses it: "In which countries?" after "defeat of ISIS in Syria and Iraq" -> "In which countries is
  the Coalition committed to defeat of ISIS?"
- **Said so / that**: "Who said so?" after "How many militants remain in the city?" / "around 400" ->
  "Who said that around 400 militants remain in the city?"
- **Pronouns**: a subject pronoun (he, she, it, they) becomes the previous turn's subject, or its answer when
  the previous question asked for the subject ("Which group posted...?"); an object pronoun (him, them, it
  at the end) becomes the previous answer; possessives get "'s". After an answer too long to be a referent,
  "they", "their" and "them" point to the plural noun phrase after its "of": "the safe evacuation of civilians
  from Raqqa" + "How many of them were evacuated?" -> "How many of civilians from Raqqa were evacuated?",
  "their exit" -> "the exit of civilians from Raqqa".
- **Agreement** (``qa/conversation/referents.py``): a filler the pronoun surely cannot stand for (a number, date or
  quantity; "he" for a group or a thing; "it" for a person or a plural) gives way to the earlier turns' most
  mentioned referent that agrees ("How many engineers did the firm hire?" / "40" + "Where do they work?" is
  never "Where do 40 work?"); a yes/no or a negation ("not") is no referent.
- **Readings** (``readings``): besides the rules' reading, the question with its first pronoun standing for
  each other agreeing referent; ``QA.answer`` lets the documents choose among them.

The product's own messages ("I could not find that in the documents.") are never taken as an answer. Every
earlier turn is resolved in order, so a chain of follow-ups keeps its referents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from qa.conversation.grammar import (
    DETERMINERS,
    DO_FORMS,
    LEADING_CONNECTIVES,
    PREPOSITIONS,
    WH_WORDS,
    Parsed,
    is_noun,
    parse,
    starts_noun_phrase,
)
from qa.conversation.referents import (
    AGREEMENT,
    PLURAL,
    QUANTITY,
    Referent,
    agrees,
    conflicts,
    from_turn,
    kind_of,
    usable_answer,
)

MAX_REFERENT_WORDS = 6  # a longer previous answer is a clause: pronouns do not point to it
MAX_REFERENTS = 12  # noun phrases and answers of earlier turns kept as candidates, most recent first
POSSESSIVES = {"his": "he", "its": "it", "their": "they"}
SPEECH_VERBS = r"(?:say|says|said|tell|tells|told|report|reports|reported|claim|claims|claimed|state|stated|confirm|confirmed|deny|denied|announce|announced)"  # noqa: E501
CLAUSE_REFERENCE = re.compile(rf"\b({SPEECH_VERBS}\b[^?]*?)\s+(so|that|this|it)\s*\??\s*$", re.IGNORECASE)
PLACE_REFERENCE = re.compile(r"\b(that place|this place)\b", re.IGNORECASE)
THERE = re.compile(r"\bthere\b(?=\s*\?|\s*$)", re.IGNORECASE)  # "How many people live there?", not "Is there ..."
OF_PHRASE = re.compile(r"\bof\s+(.+)$")  # what follows an answer's "of": "the evacuation of civilians"
THEIR_NOUN = re.compile(r"\btheir\s+([a-z][\w-]*)(\s+[a-z][\w-]*)?", re.IGNORECASE)  # "their (safe) exit"
PRONOUN = re.compile(r"\b(he|she|it|they|him|them|his|its|their)\b", re.IGNORECASE)


def _filler(parsed: Parsed, answer: str) -> str:
    """The answer with the preposition of the question's wh-phrase: "Between whom" + "the SDF and ISIS" ->
    "between the SDF and ISIS"."""
    first = parsed.wh_phrase.split()[0].lower()
    preposition = first if first in PREPOSITIONS | LEADING_CONNECTIVES else ""
    return " ".join(part for part in (preposition, answer) if part)


def statement(parsed: Parsed, answer: str) -> str:
    """The previous question as a statement, with its answer (if any) where the wh-phrase was."""
    wh_words = parsed.wh_phrase.split()
    rest = parsed.rest
    if parsed.inverted:  # "was a similar deal reached" -> "a similar deal was reached"; "did X say" -> "X say"
        auxiliary, remainder = rest.split(" ", 1)
        after_subject = remainder[len(parsed.subject) :].strip() if remainder.startswith(parsed.subject) else ""
        if parsed.subject and after_subject:
            verb = "" if auxiliary.lower() in DO_FORMS else auxiliary.lower()
            rest = " ".join(part for part in (parsed.subject, verb, after_subject) if part)
    if parsed.inverted or (rest and starts_noun_phrase(rest.split()[0])):
        return " ".join(part for part in (rest, _filler(parsed, answer)) if part)
    head = answer
    noun = [w for w in wh_words if w.lower() not in WH_WORDS | PREPOSITIONS | {"many", "much"}]
    if answer and noun and wh_words[0].lower() == "how":  # "around 400" + "militants"
        head = f"{answer} {' '.join(noun)}"
    return " ".join(part for part in (head or " ".join(noun), parsed.rest) if part)


def is_elliptical(question: str) -> bool:
    """A wh-phrase alone: "When?", "Between whom?", "On what date?", "And in which countries?"."""
    parsed = parse(question)
    return parsed is not None and not parsed.rest and len(parsed.wh_phrase.split()) <= 4


@dataclass(frozen=True)
class Context:
    """What the previous turn leaves for the next one to refer to."""

    question: str = ""  # the previous question, resolved
    answer: str = ""  # the answer the system gave to it ("" when none)
    topic: str = ""  # the latest common-noun subject ("the meeting", "a similar deal"): what "it" points to
    referents: tuple[Referent, ...] = ()  # what earlier turns offer a pronoun, most salient first


def resolve(question: str, history: list[tuple[str, str]]) -> str:
    """``question`` made self-contained, given earlier (question, answer) turns; answers are plain text and
    "" where the system found none."""
    return _resolve_one(question, context_of(history))


def readings(question: str, history: list[tuple[str, str]], limit: int = 3) -> list[str]:
    """Up to ``limit`` self-contained readings of ``question``, the rules' first (``resolve``), then the
    question with its first pronoun standing for each other earlier referent that agrees with it, most
    salient first: what the documents choose among (``QA.answer``)."""
    context = context_of(history)
    found = [_resolve_one(question, context)]
    pronoun = PRONOUN.search(question)
    if pronoun:
        for referent in context.referents:
            if len(found) >= limit:
                break
            if agrees(pronoun.group(0), referent) and referent.text not in found[0]:
                text = f"{referent.text}'s" if pronoun.group(0).lower() in POSSESSIVES else referent.text
                substituted = question[: pronoun.start()] + text + question[pronoun.end() :]
                reading = _resolve_one(substituted, context)
                if reading not in found:
                    found.append(reading)
    return found


def context_of(history: list[tuple[str, str]]) -> Context:
    """What the earlier turns leave to the next question: each turn resolved in order; its referents ranked by
    how often the turns mention them (their last word), then by recency. On CANARD's tune slice
    (``benchmarks/bench_rewrites.py --turns 4``) the mention ranking took the rewrites' token F1 from 68.5 to
    69.1 and the added-words match of the resolvable follow-ups from 11.0 to 12.0."""
    context = Context()
    for asked, answered in history:
        resolved = _resolve_one(asked, context)
        parsed = parse(resolved)
        subject = parsed.subject if parsed and parsed.inverted else ""
        topic = subject if subject[:1].islower() and subject.split()[0] in DETERMINERS else context.topic
        fresh = from_turn(resolved, answered, parsed.wh_phrase if parsed else "", turns_back=1)
        older = [replace(referent, turns_back=referent.turns_back + 1) for referent in context.referents]
        context = Context(resolved, answered, topic, tuple([*fresh, *older][:MAX_REFERENTS]))
    text = " ".join(f"{asked} {answered}" for asked, answered in history)
    ranked = sorted(context.referents, key=lambda r: -len(re.findall(rf"\b{re.escape(r.text.split()[-1])}\b", text)))
    return replace(context, referents=tuple(ranked))


def _resolve_one(question: str, context: Context) -> str:
    if not context.question:
        return question
    previous = parse(context.question)
    if is_elliptical(question):
        if previous is None:
            return f"{question.rstrip(' ?')} {context.question.rstrip(' ?')}?"
        wh = " ".join(w for w in parse(question).wh_phrase.split() if w.lower() not in LEADING_CONNECTIVES)
        return f"{wh[0].upper()}{wh[1:]} {_elliptical_body(previous, context.answer, wh)}?"
    said = CLAUSE_REFERENCE.search(question)
    if said and previous is not None:
        return f"{question[: said.start()]}{said.group(1)} that {statement(previous, context.answer)}?"
    answer = context.answer if usable_answer(context.answer) else ""  # a name, not a clause, a yes or a "not"
    group = "" if answer else plural_complement(context.answer)
    subject = previous.subject if previous and previous.inverted else ""
    if previous is not None and not previous.inverted and answer:
        subject = answer  # "Which group posted the tweets?" -> "Raqqa24": the subject is the answer
    asked_for_person = previous is not None and previous.wh_phrase.split()[-1].lower() in ("who", "whom")
    if asked_for_person and answer:
        person = answer
    else:
        person = subject if subject[:1].isupper() else (answer or subject)
    fillers = Fillers(subject or answer, answer or subject, person, context.topic, group)
    return _replace_pronouns(question, fillers, context.referents)


def _elliptical_body(previous: Parsed, answer: str, wh: str) -> str:
    """What follows the wh-phrase of an elliptical follow-up: the previous question, in its own word order where
    it was inverted, with its answer; an answer that already holds the phrase asked about loses it: "In which
    countries?" after "defeat of ISIS in Syria and Iraq" keeps "defeat of ISIS"."""
    preposition = wh.split()[0].lower()
    if preposition in PREPOSITIONS:
        answer = re.split(rf"\s+{preposition}\s+", answer, maxsplit=1, flags=re.IGNORECASE)[0]
    if not previous.inverted:
        return statement(previous, answer)
    return " ".join(part for part in (previous.rest, _filler(previous, answer)) if part)


def plural_complement(clause: str) -> str:
    """The plural noun phrase after the first "of" of a clause-long answer, at most ``MAX_REFERENT_WORDS``
    words ("the composition of the ISIS militants remaining in Raqqa" -> "the ISIS militants remaining in
    Raqqa"); "" when its first common noun is not plural ("the defeat of ISIS in Syria and Iraq")."""
    match = OF_PHRASE.search(clause)
    if not match:
        return ""
    words = match.group(1).split()[:MAX_REFERENT_WORDS]
    head = next((word for word in words if is_noun(word)), "")
    return " ".join(words).rstrip(",;:.") if head.endswith("s") and not head.endswith("ss") else ""


def _of_group(match: re.Match, group: str) -> str:
    """ "their" + its noun (and a second noun) as "the NOUN of ``group``"; a non-noun second word stays after."""
    second = match.group(2) or ""
    noun, after = (match.group(1) + second, "") if is_noun(second.strip()) else (match.group(1), second)
    article = "The" if match.group(0)[0].isupper() else "the"
    return f"{article} {noun} of {group}{after}"


@dataclass(frozen=True)
class Fillers:
    """What the rules put in place of each kind of pronoun, before the agreement check."""

    subject: str  # they/their, and it/its without a topic
    obj: str  # him/them, a final "it", "that place", "there"
    person: str  # he/she/his
    topic: str  # it/its
    group: str  # they/their/them after a clause-long answer


def _replace_pronouns(question: str, fillers: Fillers, referents: tuple[Referent, ...] = ()) -> str:
    """Pronouns replaced: he/she/his -> person, it/its -> topic (else subject), they/their -> subject,
    him/them and a final "it" -> obj; they/their/them -> group where there is one; "that place" and a final
    "there" -> obj. A filler the pronoun cannot stand for (``qa.conversation.referents.agrees``: never a number, date or
    quantity; he/she a person or a name; they a group or plural) gives way to the most salient referent of the
    earlier turns that agrees, else the pronoun stays."""
    place = fillers.obj if fillers.obj and kind_of(fillers.obj) != QUANTITY else ""
    if place:
        question = PLACE_REFERENCE.sub(place, question, count=1)
        question = THERE.sub(f"in {place}", question, count=1)
    group = fillers.group
    if group:  # a phrase with its own "from Raqqa" takes no "'s": "their exit" -> "the exit of civilians from Raqqa"
        question = THEIR_NOUN.sub(lambda match: _of_group(match, group), question)
    used: set[str] = set()
    kinds = {referent.text: referent for referent in referents}
    fallback: dict[tuple, str] = {}

    def substitute(match: re.Match) -> str:
        word, lower = match.group(0), match.group(0).lower()
        at_end = question[match.end() :].strip() in ("", "?")
        if lower in ("he", "she", "his"):
            choice = fillers.person
        elif lower in ("it", "its"):
            choice = (
                fillers.obj
                if at_end and lower == "it" and fillers.obj not in used
                else (fillers.topic or fillers.subject)
            )
        elif lower in ("they", "their", "them") and group:
            choice = group
        elif lower in ("they", "their"):
            choice = fillers.subject
        else:  # him, them
            choice = fillers.obj if fillers.obj not in used else ""
        plural = Referent(group, PLURAL)  # plural_complement found it plural
        if not choice or conflicts(
            lower, kinds.get(choice) or (plural if choice == group else Referent(choice, kind_of(choice)))
        ):
            agreeing = AGREEMENT.get(lower)  # "he ... his": one person, so one referent for both
            choice = fallback.get(agreeing) or next(
                (r.text for r in referents if agrees(lower, r) and r.text not in used), ""
            )
            fallback[agreeing] = choice
        if not choice:
            return word
        used.add(choice)
        return f"{choice}'s" if lower in POSSESSIVES and not choice.endswith(("'s", "’s")) else choice

    return PRONOUN.sub(substitute, question)
