"""Follow-up rewrites against people's: how close each resolver's self-contained question comes to the
human-written rewrite of CANARD (``../shared/data/canard/train.jsonl.gz``, follow-ups of QuAC dialogues).

The dialogues are split by a hash of their id, so no dialogue is in two slices: ``tune`` (one in ten) is where
rules and weights may be chosen, ``held-out`` (another one in ten) is reported once. Each follow-up gets the
resolver's rewrite from its history (QuAC's "I don't know." turns become declined turns, as the chat has them),
and is scored two ways against the human rewrite:

- token F1 of the two questions (lower-cased words), as typed being the baseline;
- "added words match": the content words the human rewrite adds to the question (the referent: "the Colts",
  "Johnny Unitas") are all in ours, and ours adds no content word the human one lacks; also on the follow-ups
  whose added words are all in the history the resolver sees ("resolvable": many CANARD rewrites name the
  article's subject, which no turn mentions).

Side by side: the question as typed, and ``qa.conversation.followup.resolve`` (the rewrite the chat reads first). To
compare two versions of the rules, run the script in a checkout of each (``git worktree add``).

    python benchmarks/bench_rewrites.py [--slice tune|held-out] [--limit N] [--turns 2] [--show 20]

Prints one row per resolver and a JSON line with every figure. Deterministic: no model, no sampling noise.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANARD = ROOT.parent / "shared" / "data" / "canard" / "train.jsonl.gz"
SLICES = {"tune": 0, "held-out": 1}  # the dialogue hash's last digit (of ten) for each slice
DECLINED = "I don't know."
WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = set(
    "a an the of in on at to for by with from and or but is are was were be been do does did has have had what "
    "which who whom whose where when why how that this these those it its he she they them his her their him "
    "there any other else about as so than then after before did s".split()
)


def dialogue_slice(item_id: str) -> int:
    """The last decimal digit of a stable hash of the item's dialogue (its id without the "_q#N" turn)."""
    dialogue = item_id.rsplit("_q#", 1)[0]
    return int(hashlib.sha256(dialogue.encode()).hexdigest(), 16) % 10


def load(slice_name: str, limit: int | None) -> list[dict]:
    wanted = SLICES[slice_name]
    items = []
    with gzip.open(CANARD, "rt", encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            if item["history"] and dialogue_slice(item["id"]) == wanted:
                items.append(item)
                if limit and len(items) >= limit:
                    break
    return items


def pairs(history: list[str], turns: int) -> list[tuple[str, str]]:
    """CANARD's flat [q1, a1, q2, a2, ...] as the last ``turns`` (question, answer) pairs; declined -> ""."""
    flat = list(zip(history[0::2], history[1::2]))
    return [(q, "" if a.strip() == DECLINED else a) for q, a in flat][-turns:]


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def token_f1(prediction: str, reference: str) -> float:
    predicted, gold = words(prediction), words(reference)
    common = sum(min(predicted.count(w), gold.count(w)) for w in set(predicted))
    if not predicted or not gold or not common:
        return float(predicted == gold)
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def added_words(rewrite: str, question: str) -> set[str]:
    """Content words of ``rewrite`` that ``question`` does not have."""
    return {w for w in words(rewrite) if w not in STOP_WORDS} - set(words(question))


def resolvable(item: dict, turns: int) -> bool:
    """The human rewrite adds words, and every one of them is in the history the resolver sees."""
    needed = added_words(item["rewrite"], item["question"])
    seen = set(words(" ".join(q + " " + a for q, a in pairs(item["history"], turns))))
    return bool(needed) and needed <= seen


def score(resolver, items: list[dict], turns: int) -> tuple[dict, list[tuple]]:
    f1s, matches, examples = [], [], []
    for item in items:
        rewrite = resolver(item["question"], pairs(item["history"], turns))
        f1s.append(token_f1(rewrite, item["rewrite"]))
        match = added_words(rewrite, item["question"]) == added_words(item["rewrite"], item["question"])
        matches.append(match)
        if not match and resolvable(item, turns):
            examples.append((item["question"], rewrite, item["rewrite"]))
    within = [m for m, item in zip(matches, items) if resolvable(item, turns)]
    return {
        "token_f1": 100 * sum(f1s) / len(f1s),
        "added_words_match": 100 * sum(matches) / len(matches),
        "resolvable": len(within),
        "resolvable_added_words_match": 100 * sum(within) / max(len(within), 1),
    }, examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", choices=sorted(SLICES), default="tune")
    parser.add_argument("--limit", type=int, help="at most this many follow-ups")
    parser.add_argument("--turns", type=int, default=2, help="earlier turns a resolver sees (the chat's default)")
    parser.add_argument("--show", type=int, default=0, help="print this many misses of the last resolver")
    args = parser.parse_args()
    if not CANARD.is_file():
        raise SystemExit(f"{CANARD} is absent (it comes with ../shared/data)")

    from qa.conversation.followup import resolve

    items = load(args.slice, args.limit)
    resolvers = {"as typed": lambda question, history: question, "rules": resolve}
    figures = {"slice": args.slice, "follow_ups": len(items), "turns": args.turns}
    examples: list[tuple] = []
    for name, resolver in resolvers.items():
        figures[name], examples = score(resolver, items, args.turns)
        row = figures[name]
        print(
            f"{name:10s} token F1 {row['token_f1']:6.2f}  added words match {row['added_words_match']:6.2f}  "
            f"on the {row['resolvable']} resolvable from the history {row['resolvable_added_words_match']:6.2f}"
        )
    for question, ours, theirs in examples[: args.show]:
        print(f"- {question!r}\n    ours:   {ours!r}\n    theirs: {theirs!r}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
