"""SQuAD-format data (v1.1 and v2.0), a reader's predictions on it and the official SQuAD 2.0 metric."""

from __future__ import annotations

import collections
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from qa.reading.answers import normalize_answer

if TYPE_CHECKING:
    from qa.reading.reader import Reader


@dataclass(frozen=True)
class SquadExample:
    """One question about one paragraph; ``answers`` is empty when the paragraph cannot answer it."""

    id: str
    title: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_start: int  # char offset of the first reference answer, -1 when unanswerable

    @property
    def is_impossible(self) -> bool:
        return not self.answers


def load_squad(path: str | Path) -> list[SquadExample]:
    """Read a SQuAD v1.1/v2.0 JSON file (or its ``.gz``) into examples (answerable or not)."""
    path = Path(path)
    try:
        data = json.loads(read_text(path))["data"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path} is not a readable SQuAD JSON file: {error}") from error
    examples = []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                examples.append(
                    SquadExample(
                        id=qa["id"],
                        title=article.get("title", ""),
                        question=qa["question"],
                        context=context,
                        answers=tuple(answer["text"] for answer in answers),
                        answer_start=answers[0]["answer_start"] if answers else -1,
                    )
                )
    return examples


def read_text(path: Path) -> str:
    """A UTF-8 text file's content, gunzipped when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return handle.read()
    return path.read_text(encoding="utf-8")


def write_squad(path: str | Path, examples: list[SquadExample]) -> Path:
    """Write examples as a SQuAD 2.0 file (gzipped when the name ends in ``.gz``), through a temp file.

    Articles and paragraphs keep the order in which they first appear; only the first reference answer
    of each question has a known ``answer_start``, the others get the first occurrence of their text."""
    path = Path(path)
    articles: dict[str, dict[str, list]] = {}
    for ex in examples:
        answers = [
            {"text": text, "answer_start": ex.answer_start if i == 0 else max(ex.context.find(text), 0)}
            for i, text in enumerate(ex.answers)
        ]
        qa = {"id": ex.id, "question": ex.question, "answers": answers, "is_impossible": ex.is_impossible}
        articles.setdefault(ex.title, {}).setdefault(ex.context, []).append(qa)
    data = [
        {"title": title, "paragraphs": [{"context": context, "qas": qas} for context, qas in paragraphs.items()]}
        for title, paragraphs in articles.items()
    ]
    text = json.dumps({"version": "v2.0", "data": data}, ensure_ascii=False)
    temp = path.with_name(path.name + ".tmp")
    if path.suffix == ".gz":
        with gzip.open(temp, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    return path


def lacks_answer(paragraph: str, example: SquadExample) -> bool:
    """Whether ``paragraph`` is another text than ``example``'s and holds none of its reference answers."""
    text = normalize_answer(paragraph)
    return paragraph != example.context and not any(normalize_answer(a) in text for a in example.answers)


def exact_score(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    if not pred_tokens or not truth_tokens:
        return float(pred_tokens == truth_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(truth_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def score_answer(prediction: str, answers: tuple[str, ...] | list[str]) -> tuple[float, float]:
    """(exact, f1) of one prediction, max over the references; no references means "" is right."""
    references = [a for a in answers if normalize_answer(a)] or [""]
    return (
        max(exact_score(prediction, ref) for ref in references),
        max(f1_score(prediction, ref) for ref in references),
    )


def squad_v2_metrics(examples: list[SquadExample], predictions: dict[str, str]) -> dict[str, float]:
    """The official SQuAD 2.0 figures in percent: exact, f1, HasAns_*, NoAns_*, total."""
    scores = {ex.id: score_answer(predictions.get(ex.id, ""), ex.answers) for ex in examples}

    def mean(ids: list[str], column: int) -> float:
        return 100.0 * sum(scores[i][column] for i in ids) / len(ids) if ids else 0.0

    all_ids = [ex.id for ex in examples]
    has_ans = [ex.id for ex in examples if not ex.is_impossible]
    no_ans = [ex.id for ex in examples if ex.is_impossible]
    metrics = {"exact": mean(all_ids, 0), "f1": mean(all_ids, 1), "total": len(all_ids)}
    if has_ans:
        metrics.update(HasAns_exact=mean(has_ans, 0), HasAns_f1=mean(has_ans, 1), HasAns_total=len(has_ans))
    if no_ans:
        metrics.update(NoAns_exact=mean(no_ans, 0), NoAns_f1=mean(no_ans, 1), NoAns_total=len(no_ans))
    return metrics


def threshold_curve(
    examples: list[SquadExample], margins: dict[str, float], texts: dict[str, str]
) -> list[tuple[float, float]]:
    """(threshold, F1 in %) for every threshold that changes a decision, from "never answer" downwards.

    ``margins[id]`` is the reader's best span score minus its null score and ``texts[id]`` that span's
    text; the reader answers when ``margin > threshold``. Sweeps every distinct margin (the same search
    as the official ``find_best_thresh``).
    """
    f1_if_answered = {ex.id: score_answer(texts[ex.id], ex.answers)[1] for ex in examples}
    f1_if_silent = {ex.id: float(ex.is_impossible) for ex in examples}
    # Start with a threshold above every margin (never answer), then lower it one example at a time.
    total = sum(f1_if_silent.values())
    curve = [(max(margins.values()) + 1e-3, 100 * total / len(examples))]
    for example_id in sorted(margins, key=margins.get, reverse=True):
        total += f1_if_answered[example_id] - f1_if_silent[example_id]
        curve.append((margins[example_id] - 1e-3, 100 * total / len(examples)))
    return curve


def best_threshold(examples: list[SquadExample], margins: dict[str, float], texts: dict[str, str]) -> float:
    """The no-answer threshold that maximises F1 on ``examples`` (the highest one of equals)."""
    return max(threshold_curve(examples, margins, texts), key=lambda point: point[1])[0]


def predict(reader: Reader, examples: list[SquadExample]) -> tuple[dict[str, str], dict[str, float]]:
    """The reader's best span text and margin for each example (no threshold applied)."""
    texts, margins = {}, {}
    chunk = 64
    for offset in tqdm(range(0, len(examples), chunk), desc="reading", unit="chunk", leave=False):
        batch = examples[offset : offset + chunk]
        for example, span in zip(batch, reader.read_pairs([e.question for e in batch], [e.context for e in batch])):
            texts[example.id], margins[example.id] = span.text, span.score
    return texts, margins


def apply_threshold(texts: dict[str, str], margins: dict[str, float], threshold: float) -> dict[str, str]:
    """The predictions at ``threshold``: each span text where its margin exceeds it, else "" (no answer)."""
    return {i: (texts[i] if margins[i] > threshold else "") for i in texts}
