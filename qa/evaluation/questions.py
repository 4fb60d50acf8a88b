"""Score the whole system end to end on a JSON-lines question set (``qa eval``)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qa.evaluation.squad import score_answer
from qa.pipeline import QA
from qa.reading.confidence import RIGHT_F1, calibration_report

RECALL_AT = (1, 3, 5)


@dataclass(frozen=True)
class EvalQuestion:
    """A question with its acceptable answers ([] when the documents cannot answer it) and the id of
    the paragraph that answers it (``doc_id#n``; None when unanswerable)."""

    question: str
    answers: list[str]
    paragraph: str | None


@dataclass
class QuestionResult:
    question: str
    prediction: str
    answers: list[str]
    paragraph: str | None
    exact: float
    f1: float
    retrieved: list[str]
    seconds: float
    confidence: float = 0.0  # how likely the answer (or, declined, the best candidate) is right

    @property
    def right(self) -> bool:
        """An answer with token F1 >= 0.5 against a gold answer (never for a question the documents do not answer)."""
        return bool(self.prediction and self.answers) and self.f1 >= RIGHT_F1


def read_jsonl(path: str | Path, parse, kind: str) -> list:
    """``parse(record)`` for each non-blank line of a JSON-lines file; ``ValueError`` naming a bad line."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(parse(json.loads(line)))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a {kind} record ({error}).") from error
    if not items:
        raise ValueError(f"{path} holds no {kind}s.")
    return items


def load_questions(path: str | Path) -> list[EvalQuestion]:
    """Read a JSON-lines question set; raises ``ValueError`` naming the bad line."""
    return read_jsonl(
        path,
        lambda record: EvalQuestion(record["question"], list(record.get("answers", [])), record.get("paragraph")),
        "question",
    )


def evaluate_questions(
    qa: QA, questions: list[EvalQuestion], progress: bool = True
) -> tuple[dict, list[QuestionResult]]:
    """Answer every question once (after a warm-up) and compute the quality, retrieval and latency figures."""
    qa.answer(questions[0].question)  # load models and index outside the timed loop
    depth = max(RECALL_AT)
    results = []
    for item in tqdm(questions, desc="questions", disable=not progress):
        started = time.perf_counter()
        answer = qa.answer(item.question)
        seconds = time.perf_counter() - started
        retrieved = [hit.paragraph.id for hit in qa.retrieve(answer.query, depth)]
        exact, f1 = score_answer(answer.text, item.answers)
        results.append(
            QuestionResult(
                item.question,
                answer.text,
                item.answers,
                item.paragraph,
                exact,
                f1,
                retrieved,
                seconds,
                answer.confidence,
            )
        )
    return summarise(results), results


def summarise(results: list[QuestionResult]) -> dict:
    answerable = [r for r in results if r.paragraph]
    unanswerable = [r for r in results if not r.answers]
    latencies = np.array([r.seconds for r in results]) * 1000
    metrics = {
        "questions": len(results),
        "exact": 100 * float(np.mean([r.exact for r in results])),
        "f1": 100 * float(np.mean([r.f1 for r in results])),
        "answerable_f1": 100 * float(np.mean([r.f1 for r in answerable])) if answerable else None,
        "no_answer_accuracy": 100 * float(np.mean([not r.prediction for r in unanswerable])) if unanswerable else None,
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
    }
    for k in RECALL_AT:
        metrics[f"recall@{k}"] = (
            float(np.mean([r.paragraph in r.retrieved[:k] for r in answerable])) if answerable else None
        )
    metrics["mrr"] = float(np.mean([_mrr(r) for r in answerable])) if answerable else None
    metrics.update(
        calibration_report(
            [r.confidence for r in results], [r.right for r in results], [bool(r.prediction) for r in results]
        )
    )
    return metrics


def _mrr(result: QuestionResult) -> float:
    return next((1.0 / rank for rank, pid in enumerate(result.retrieved, start=1) if pid == result.paragraph), 0.0)


def format_table(metrics: dict) -> str:
    """A two-column table of the figures, for the terminal."""
    width = max(len(key) for key in metrics)
    rows = []
    for key, value in metrics.items():
        shown = "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        rows.append(f"{key:<{width}}  {shown:>10}")
    rule = "-" * (width + 12)
    return "\n".join([rule, *rows, rule])


def write_report(path: str | Path, metrics: dict, results: list) -> None:
    Path(path).write_text(
        json.dumps({"metrics": metrics, "results": [asdict(r) for r in results]}, indent=2, ensure_ascii=False),
        encoding="utf-8",
    )
