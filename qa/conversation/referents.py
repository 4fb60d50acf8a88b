"""What a pronoun can stand for: the noun phrases and answers of earlier turns, each with the kind of thing it
names, and the agreement check between a pronoun and a candidate.

No parser: word lists and capitalisation. A candidate is of one kind:

- ``person`` (he, she, him, his, her): a title or a person noun ("Colonel Ryan Dillon", "the spokesperson"),
  or the common-noun answer to a who-question;
- ``name``: a capitalised name, which may be a person, a place or an organisation ("Ryan Dillon", "Ayn Issa",
  "Raqqa24"): it agrees with he, they and it alike;
- ``group`` (they, and "it" for an organisation): an organisation word or an acronym ("the Coalition", "the
  Raqqa Civil Council", "the SDF"); ``plural`` (they): a plural noun phrase ("the militants", "US officers");
- ``thing`` (it, its): any other noun phrase ("the meeting", "the harbour lighthouse");
- ``quantity``: a number, a date, an amount ("40", "at least 700", "Thursday, October 12", "1874"). No
  pronoun stands for one: "How many engineers did the firm hire?" / "40" + "Where do they work?" is about
  the engineers, never "Where do 40 work?".

``agrees`` (strict) picks a replacement referent; ``conflicts`` (loose) only rejects what surely cannot be meant,
since "they" may be one person ("the spokesperson") and "aircraft" is a plural without an "s".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PERSON = "person"
NAME = "name"  # a capitalised name: a person, a place or an organisation ("Ryan Dillon", "Ayn Issa", "Raqqa24")
GROUP = "group"  # an organisation ("the Coalition", "the council", "the SDF")
PLURAL = "plural"  # a plural noun phrase ("the militants", "US officers")
THING = "thing"
QUANTITY = "quantity"

PERSON_PRONOUNS = {"he", "she", "him", "his", "her", "hers"}
GROUP_PRONOUNS = {"they", "them", "their", "theirs"}
THING_PRONOUNS = {"it", "its"}
# Which kinds each pronoun may stand for, in order of preference.
AGREEMENT = {
    **{pronoun: (PERSON, NAME) for pronoun in PERSON_PRONOUNS},
    **{pronoun: (PLURAL, GROUP, NAME) for pronoun in GROUP_PRONOUNS},  # "they" for a council, "Raqqa24"
    **{pronoun: (THING, GROUP, NAME) for pronoun in THING_PRONOUNS},  # "it" for the Coalition, a firm, a town
}
PERSON_NOUNS = set(
    "spokesperson spokesman spokeswoman leader founder engineer officer commander colonel general president "
    "minister author writer director manager chairman chairwoman keeper king queen prince princess man woman "
    "boy girl father mother son daughter brother sister wife husband player singer actor actress coach captain "
    "mayor governor senator judge doctor teacher student owner chief inventor scientist artist journalist "
    "reporter analyst activist official member worker soldier pilot driver architect lawyer priest bishop "
    "pope emperor ambassador secretary ceo founder partner friend child person".split()
)
TITLES = set("mr mrs ms dr sir lord lady colonel general captain president king queen prince saint st".split())
GROUP_NOUNS = set(
    "group council coalition army forces force government company firm team party committee agency ministry "
    "organisation organization union alliance militia band club board office department court parliament "
    "congress police community people public family tribe".split()
)
NUMBER_WORDS = set(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred hundreds "
    "thousand thousands million millions billion dozen dozens half several few many once twice".split()
)
TIME_WORDS = set(
    "january february march april may june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday today yesterday tomorrow year years month months week weeks day "
    "days century decade morning evening night".split()
)
QUANTITY_LEADS = set(
    "at least about around some nearly almost over under more less than up to only just roughly approximately in "
    "on since by until".split()
)
DECLINED = {"yes", "no", "not", "none", "nothing", "never", "nobody", "unknown"}
NOT_NOUNS = set(
    "a an the this that these those his her its their our my your of in on at to for by with from and or but "
    "is are was were be been do does did has have had what which who whom whose where when why how not no "
    "it he she they them him there here then so as than".split()
)
WORD = re.compile(r"[A-Za-z0-9][\w.'’-]*[\w]|[A-Za-z0-9]")
PHRASE_OPENERS = {"the", "a", "an", "this", "that", "these", "those"}
VERBISH = re.compile(
    r"^(?:\w+ed|\w+ing|is|are|was|were|be|been|has|have|had|do|does|did|made|held|built|left|said|told)$"
)
NUMBER = re.compile(r"^\d[\d,.]*(?:s|st|nd|rd|th|%)?$")  # "700", "1,500", "1870s", "12th"; not "Raqqa24"
HEAD_ENDS = re.compile(r"\s+(?:of|from|in|on|at|for|with|by|to|that|who|which)\s+")  # the head noun ends there
LEADING_PREPOSITION = re.compile(r"^(?:in|at|on|from|to|by|near)\s+(?=\S)", re.IGNORECASE)
COMPOUND_ADJECTIVE = re.compile(r"-[a-z]+$")  # "ISIS-linked", "U.S.-led": no names
NAME_LINKS = {"of", "for", "de", "the", "and"}  # "Bank of England"
SENTENCE_OPENERS = set("after before during while although however then when in on at as if i we you".split())
MAX_WORDS = 6  # a longer answer is a clause, not a referent


@dataclass(frozen=True)
class Referent:
    """A noun phrase an earlier turn offers to a pronoun, the kind of thing it names, and where it came from."""

    text: str
    kind: str  # PERSON, GROUP, THING or QUANTITY
    turns_back: int = 1  # 1: the previous turn
    from_answer: bool = False


def kind_of(text: str, asked_for_person: bool = False) -> str:
    """The kind of thing ``text`` names (see the module docstring); ``asked_for_person``: it answers a
    who-question."""
    everything = re.findall(r"[\w'’-]+", text)
    content = [w for w in everything if w.lower() not in QUANTITY_LEADS | {"a", "an", "the", "and", "of"}]
    if all(w.lower() in NUMBER_WORDS or w.lower() in TIME_WORDS or NUMBER.match(w) for w in content):
        return QUANTITY
    words = re.findall(r"[\w'’-]+", HEAD_ENDS.split(text, 1)[0]) or everything  # "proportion (of fighters)"
    lower = [word.lower() for word in words]
    head = lower[-1]
    if lower[0] in TITLES or head in PERSON_NOUNS:
        return PERSON
    if head in GROUP_NOUNS or _acronym(words[-1]):
        return GROUP
    if _plural(words[-1]) or " and " in f" {' '.join(lower)} ":
        return PLURAL
    if words[0][0].isupper() and all(word[0].isupper() or word.lower() in NAME_LINKS for word in words):
        return NAME  # a who-question's "Raqqa24" may be a group: a name agrees with "he" and with "they"
    return PERSON if asked_for_person else THING


def _plural(word: str) -> bool:
    lower = word.lower()
    return (
        word.islower() and lower.endswith("s") and not lower.endswith(("ss", "us", "is", "news", "series", "species"))
    )


def _acronym(word: str) -> bool:
    return len(word) >= 2 and word.isupper() and word.isalpha()


def agrees(pronoun: str, referent: Referent) -> bool:
    """True when ``pronoun`` can stand for ``referent``; quantities, and unknown pronouns, never agree."""
    return referent.kind in AGREEMENT.get(pronoun.lower(), ())


def conflicts(pronoun: str, referent: Referent) -> bool:
    """True when ``pronoun`` surely cannot stand for ``referent``: a quantity never; "he" no group, plural or
    thing; "it" no person or plural noun phrase. Looser than ``agrees``: "they" may be a person ("the
    spokesperson") and a thing may be an invariant plural ("Coalition aircraft")."""
    lower = pronoun.lower()
    if referent.kind == QUANTITY:
        return True
    if lower in PERSON_PRONOUNS:
        return referent.kind in (GROUP, PLURAL, THING)
    if lower in THING_PRONOUNS:
        return referent.kind in (PERSON, PLURAL)
    return False


def usable_answer(answer: str) -> bool:
    """An answer a pronoun could stand for: given, short, not a clause, not a bare yes/no/negation."""
    words = answer.split()
    return 0 < len(words) <= MAX_WORDS and not {w.lower().strip(".,") for w in words} <= DECLINED


def noun_phrases(question: str) -> list[str]:
    """The noun phrases of a question, in order: capitalised runs ("Colonel Ryan Dillon", "The Defense Post";
    not its first word alone) and determiner phrases up to their verb, preposition or next determiner ("the
    harbour lighthouse", "a similar deal"; "this"/"that" read as "the")."""
    words = WORD.findall(question)
    phrases, position = [], 0
    while position < len(words):
        lower = words[position].lower()
        run = _capitalised_run(words, position)
        if run and position == 0 and lower in NOT_NOUNS:  # "Which Coalition leader": the wh-phrase's (from_turn)
            position += len(run)
            continue
        if run and not (position == 0 and len(run) == 1):
            phrases.append(" ".join(run))
            position += len(run)
            continue
        if lower in PHRASE_OPENERS:
            nouns = []
            for following in words[position + 1 : position + 5]:
                if following.lower() in NOT_NOUNS or VERBISH.match(following.lower()) and not following.endswith("ing"):
                    break  # "the meeting", "the remaining civilians": an -ing word after a determiner is no verb
                nouns.append(following)
            if nouns:
                article = "the" if lower in ("this", "that", "these", "those") else lower
                phrases.append(" ".join([article, *nouns]))
                position += len(nouns)
        position += 1
    return phrases


def _capitalised_run(words: list[str], position: int) -> list[str]:
    """The capitalised words from ``position`` on, linked by "of"/"for"/... ("Bank of England"); no compound
    adjective ("ISIS-linked")."""
    run: list[str] = []
    while position < len(words):
        word = words[position]
        capitalised = word[0].isupper() and not COMPOUND_ADJECTIVE.search(word)
        linking = run and word in NAME_LINKS and position + 1 < len(words) and words[position + 1][0].isupper()
        if not (capitalised or linking):
            break
        run.append(word)
        position += 1
    return run


def from_turn(question: str, answer: str, wh_phrase: str, turns_back: int) -> list[Referent]:
    """The referents one earlier turn offers, most salient first: its answer (when usable and not a quantity),
    the noun of a "how many"/"which" wh-phrase ("How many militants" -> "the militants"), then the noun
    phrases of its question."""
    asked_for_person = wh_phrase.split()[-1].lower() in ("who", "whom") if wh_phrase else False
    referents: list[Referent] = []
    answer = LEADING_PREPOSITION.sub("", answer)  # "in the city" stands for "the city"
    if usable_answer(answer):
        asked_kind = kind_of(wh_phrase.split(" ", 1)[1]) if wh_phrase.lower().startswith(("which ", "what ")) else ""
        kind = kind_of(answer, asked_for_person)
        if kind not in (QUANTITY, PERSON) and asked_kind in (PERSON, GROUP):  # "Which activist group" -> "Raqqa24"
            kind = asked_kind
        if kind != QUANTITY:
            referents.append(Referent(answer, kind, turns_back, from_answer=True))
    wh_words = wh_phrase.split()
    wh_noun = [w for w in wh_words[1:] if w.lower() not in ("many", "much", "of", "old", "long", "far")]
    if wh_noun and wh_words[0].lower() in ("how", "which", "what", "whose"):
        phrase = "the " + " ".join(wh_noun)  # "How many militants" -> "the militants"
        referents.append(Referent(phrase, kind_of(phrase), turns_back))
    for phrase in noun_phrases(question):
        referents.append(Referent(phrase, kind_of(phrase), turns_back))
    if not usable_answer(answer):  # a clause-long answer still names people and places: "Taylor played for ..."
        for name in names(answer):
            referents.append(Referent(name, kind_of(name), turns_back, from_answer=True))
    return referents


def names(text: str) -> list[str]:
    """The capitalised runs of a clause or passage, but for runs that open with a common word ("In", "The")."""
    words = WORD.findall(text)
    found, position = [], 0
    while position < len(words):
        run = _capitalised_run(words, position)
        if run and run[0].lower() not in NOT_NOUNS | SENTENCE_OPENERS:
            found.append(" ".join(run))
        position += max(len(run), 1)
    return list(dict.fromkeys(found))
