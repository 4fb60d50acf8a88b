"""Calibrated confidence against the margin's softmax, end to end, side by side on the same models and questions.

Each article of a SQuAD-format file becomes a document and every question goes through ``QA.answer()``
(``qa.evaluation.corpus``), twice:

- ``softmax``: the reader as it was, its confidence model switched off: answers when the margin clears the
  threshold, confidence = the two-way softmax of the margin;
- ``calibrated``: the shipped policy (``min_confidence`` from the card) and the fitted confidences.

    python benchmarks/bench_confidence.py FILE [--limit N] [--reader FOLDER] [--plot DIR]

FILE is held-out training material or, to report once, ``../shared/data/squad/dev.json``. Prints per way:
F1, NoAns F1, coverage, ECE (10 equal-mass bins over the answered questions), Brier score, and the precision of
the answers at confidence >= 0.5 / 0.8 / 0.9 with their share of all questions; the last line is JSON. The
figures are deterministic (no sampling) apart from latency, which is not reported here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KEYS = ("f1", "NoAns_f1", "coverage", "ece", "brier", "precision@0.5", "share@0.5", "precision@0.8", "share@0.8",
        "precision@0.9", "share@0.9")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad_file")
    parser.add_argument("--limit", type=int, help="a fixed random sample of N questions")
    parser.add_argument("--reader", help="reader folder (default: the shipped reader)")
    parser.add_argument("--plot", metavar="DIR", help="write each way's reliability / precision-coverage PNG here")
    args = parser.parse_args()

    from qa.evaluation.corpus import evaluate_corpus
    from qa.evaluation.questions import plot_calibration
    from qa.pipeline import QA

    def make_qa(calibrated: bool):
        def made(documents, index):
            qa = QA(documents, index, reader=args.reader)
            if not calibrated:
                qa.reader.confidence_model = None  # today's mapping: the margin's softmax, threshold alone
            return qa

        return made

    figures = {}
    for way, calibrated in (("softmax", False), ("calibrated", True)):
        metrics, runs, _ = evaluate_corpus(args.squad_file, make_qa(calibrated), args.limit, progress=False)
        figures[way] = {key: metrics.get(key) for key in KEYS}
        cells = "  ".join(f"{key} {'-' if value is None else f'{value:.3f}'}" for key, value in figures[way].items())
        print(f"{way:10s} {cells}", flush=True)
        if args.plot:
            Path(args.plot).mkdir(parents=True, exist_ok=True)
            path = Path(args.plot) / f"confidence-{way}.png"
            plot_calibration(
                path, [r.confidence for r in runs], [r.right for r in runs], [bool(r.prediction) for r in runs]
            )
    print(json.dumps({"file": args.squad_file, "limit": args.limit, **figures}))


if __name__ == "__main__":
    main()
