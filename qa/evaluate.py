"""Score the system: end to end on a question set (``qa eval``), the reader alone on SQuAD (``qa eval-reader``)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qa.confidence import calibration_report
from qa.pipeline import QA
from qa.read import Reader
from qa.squad import apply_threshold, load_squad, predict, score_answer, squad_v2_metrics

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
    right = [bool(r.prediction and r.answers) and r.f1 >= 0.5 for r in results]
    metrics.update(calibration_report([r.confidence for r in results], right, [bool(r.prediction) for r in results]))
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


def plot(path: str | Path, results: list[QuestionResult]) -> None:
    """A PNG with the F1 distribution and the latency distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist([r.f1 for r in results], bins=10, range=(0, 1), color="#4a7bd0")
    left.set(title="F1 per question", xlabel="F1", ylabel="questions")
    right.hist([r.seconds * 1000 for r in results], bins=20, color="#d0884a")
    right.set(title="Answer latency", xlabel="ms", ylabel="questions")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_calibration(path: str | Path, confidence, right, answered) -> None:
    """A PNG with the reliability diagram of the answers given (10 equal-mass bins: mean confidence against the
    share right) and the precision-coverage curve (answers taken most confident first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confidence, right, answered = (np.asarray(a, dtype=float) for a in (confidence, right, answered))
    given = answered > 0
    order = np.argsort(-confidence[given], kind="stable")
    figure, (left, curve) = plt.subplots(1, 2, figsize=(10, 4))
    bins = [chunk for chunk in np.array_split(np.argsort(confidence[given]), 10) if len(chunk)]
    left.plot([0, 1], [0, 1], color="#999999", linewidth=1)
    left.plot(
        [confidence[given][b].mean() for b in bins], [right[given][b].mean() for b in bins], "o-", color="#4a7bd0"
    )
    left.set(title="Reliability (answers given)", xlabel="confidence", ylabel="share right", xlim=(0, 1), ylim=(0, 1))
    taken = np.arange(1, len(order) + 1)
    curve.plot(100 * taken / len(confidence), 100 * np.cumsum(right[given][order]) / taken, color="#d0884a")
    curve.set(title="Precision against coverage", xlabel="% of all questions answered", ylabel="% of answers right")
    curve.set_ylim(0, 100)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluate_reader(
    reader: Reader, squad_file: str | Path, sweep: tuple[float, ...] = ()
) -> tuple[dict, dict[str, str], list[dict]]:
    """Official SQuAD 2.0 metrics of the reader on gold paragraphs (no retrieval), plus questions/s.

    Returns the metrics at the reader's threshold, the predictions, and the metrics at each threshold of
    ``sweep`` (from the same single read), so that a user can see the answer/decline trade-off.
    """
    examples = load_squad(squad_file)
    started = time.perf_counter()
    texts, margins = predict(reader, examples)
    seconds = time.perf_counter() - started

    def at(threshold: float) -> tuple[dict, dict[str, str]]:
        predictions = apply_threshold(texts, margins, threshold)
        return {**squad_v2_metrics(examples, predictions), "threshold": threshold}, predictions

    metrics, predictions = at(reader.threshold)
    metrics["questions_per_second"] = len(examples) / seconds
    return metrics, predictions, [at(threshold)[0] for threshold in sweep]


def format_sweep(swept: list[dict]) -> str:
    """The metrics at each swept threshold as a terminal table."""
    columns = [key for key in ("f1", "exact", "HasAns_f1", "NoAns_f1") if key in swept[0]]
    lines = [f"{'threshold':>10}" + "".join(f"{column:>11}" for column in columns)]
    lines += [f"{row['threshold']:>10.2f}" + "".join(f"{row[column]:>11.2f}" for column in columns) for row in swept]
    return "\n".join(lines)
