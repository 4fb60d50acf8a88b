"""Score follow-ups (``qa eval --conversations``): multi-turn conversations played through ``QA.answer`` with the
answers the system gave as history, each turn also asked in its standalone form."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qa.evaluation.questions import read_jsonl
from qa.evaluation.squad import score_answer
from qa.pipeline import QA
from qa.reading.answers import normalize_answer


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation: the question as asked, its acceptable answers ([] when the documents
    cannot answer it) and the same question made self-contained."""

    question: str
    answers: list[str]
    standalone: str


@dataclass
class TurnResult:
    conversation: str
    turn: int  # 0-based position in the conversation
    question: str
    understood_as: str  # the question the system resolved it to
    prediction: str
    standalone_prediction: str  # the answer to ``standalone`` asked without history
    answers: list[str]
    f1: float
    standalone_f1: float
    standalone: str = ""  # the self-contained form the set gives
    seconds: float = 0.0  # the system's time to answer the turn

    @property
    def rewrite_exact(self) -> bool:
        """The question as the system understood it equals the set's standalone form (SQuAD-normalised)."""
        return normalize_answer(self.understood_as) == normalize_answer(self.standalone)


def load_conversations(path: str | Path) -> list[tuple[str, list[Turn]]]:
    """Read a JSON-lines conversation set (``{"id", "turns": [{"question", "answers", "standalone"}]}``)."""

    def parse(record: dict) -> tuple[str, list[Turn]]:
        turns = [
            Turn(t["question"], list(t.get("answers", [])), t.get("standalone") or t["question"])
            for t in record["turns"]
        ]
        if not turns:
            raise ValueError("a conversation needs at least one turn")
        return str(record.get("id", "")), turns

    return read_jsonl(path, parse, "conversation")


def evaluate_conversations(
    qa: QA, conversations: list[tuple[str, list[Turn]]], progress: bool = True
) -> tuple[dict, list[TurnResult]]:
    """Play each conversation through ``qa.answer(question, history)`` with the answers the system actually
    gave, and ask every turn's standalone form without history: F1 on first turns, on follow-ups, and on
    the same follow-ups asked standalone (the cost of being a follow-up is the difference)."""
    results = []
    for conversation_id, turns in tqdm(conversations, desc="conversations", disable=not progress):
        history: list[tuple[str, str]] = []
        for position, turn in enumerate(turns):
            answer = qa.answer(turn.question, history=history)
            # a first turn asked as written is its own standalone form: no second answer needed
            same = position == 0 and turn.standalone == turn.question
            standalone = answer if same else qa.answer(turn.standalone)
            history.append((turn.question, answer.message))
            results.append(
                TurnResult(
                    conversation=conversation_id,
                    turn=position,
                    question=turn.question,
                    understood_as=answer.question,
                    prediction=answer.text,
                    standalone_prediction=standalone.text,
                    answers=turn.answers,
                    f1=score_answer(answer.text, turn.answers)[1],
                    standalone_f1=score_answer(standalone.text, turn.answers)[1],
                    standalone=turn.standalone,
                    seconds=answer.seconds,
                )
            )
    first = [r for r in results if r.turn == 0]
    follow = [r for r in results if r.turn > 0]

    def mean(values) -> float | None:
        values = list(values)
        return 100 * float(np.mean(values)) if values else None

    metrics = {
        "conversations": len(conversations),
        "turns": len(results),
        "first_turn_f1": mean(r.f1 for r in first),
        "follow_up_f1": mean(r.f1 for r in follow),
        "follow_up_standalone_f1": mean(r.standalone_f1 for r in follow),
        "follow_up_no_answer_accuracy": mean(not r.prediction for r in follow if not r.answers),
        "follow_up_rewrite_exact": mean(r.rewrite_exact for r in follow),
        "follow_up_rewrite_f1": mean(score_answer(r.understood_as, [r.standalone])[1] for r in follow),
        "first_turn_seconds": float(np.mean([r.seconds for r in first])),
        "follow_up_seconds": float(np.mean([r.seconds for r in follow])) if follow else None,
    }
    if metrics["follow_up_f1"] is not None:
        metrics["follow_up_cost"] = metrics["follow_up_standalone_f1"] - metrics["follow_up_f1"]
    return metrics, results
