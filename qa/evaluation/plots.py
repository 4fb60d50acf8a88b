"""Pictures of an evaluation: score and latency distributions, the reliability diagram of the confidences."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.evaluation.questions import QuestionResult


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
