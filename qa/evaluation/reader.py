"""Score the reader alone on gold paragraphs of a SQuAD file (``qa reader eval``): the official SQuAD 2.0 metrics."""

from __future__ import annotations

import time
from pathlib import Path

from qa.evaluation.squad import apply_threshold, load_squad, predict, squad_v2_metrics
from qa.reading.reader import Reader


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
