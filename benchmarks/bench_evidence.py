"""When the reader is unsure, which candidates are worth showing? Measures the evidence window of ``QA``.

Below the no-answer threshold the chat shows the best candidate span as evidence when its margin is within
``evidence_window`` of the threshold, and says "could not find" otherwise. A good window shows evidence for
answerable questions the reader declined (and that evidence holds the answer) but not for questions the
documents cannot answer. Measured on:

- the seed article: ``seeds/questions.jsonl`` (answerable and unanswerable) and ``seeds/out_of_corpus.jsonl``
  (questions about things the article never says);
- SQuAD dev end to end (``--corpus``, a fixed sample of ``--limit`` questions, its articles as the documents).

    python benchmarks/bench_evidence.py --corpus ../shared/data/squad/dev.json --limit 400

For each window: the share of declined answerable questions that get evidence, the mean F1 of that evidence,
and the share of unanswerable questions (seed, out of corpus, SQuAD) that get a (misleading) passage.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)


def seed_runs(reader: str | None) -> list[tuple[list[str], float, str, str]]:
    """(answers, best candidate margin, its text, set) for every seed and out-of-corpus question."""
    from qa.evaluation.questions import load_questions
    from qa.pipeline import QA

    rows = []
    with tempfile.TemporaryDirectory() as index:
        qa = QA(ROOT / "seeds", index, reader=reader)
        for name in ("questions.jsonl", "out_of_corpus.jsonl"):
            for item in load_questions(ROOT / "seeds" / name):
                answer = qa.answer(item.question)
                best = answer.candidates[0] if answer.candidates else None
                margin, text = (best.score, best.text) if best else (-math.inf, "")
                rows.append((item.answers, margin, text, "seed" if name == "questions.jsonl" else "out of corpus"))
        threshold = qa.reader.threshold
    return rows, threshold


def corpus_rows(corpus: str, limit: int, reader: str | None) -> list[tuple[list[str], float, str, str]]:
    from qa.evaluation.corpus import evaluate_corpus
    from qa.pipeline import QA

    _, runs, _ = evaluate_corpus(corpus, lambda docs, index: QA(docs, index, reader=reader), limit, progress=False)
    rows = []
    for run in runs:
        best = max(run.spans, key=lambda span: span[1]) if run.spans else (0, -math.inf, "")
        rows.append((list(run.example.answers), best[1], best[2], "squad"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", default=None, help="reader folder (default: the shipped one)")
    parser.add_argument("--corpus", help="SQuAD-format file scored end to end as well")
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args()

    from qa.evaluation.squad import score_answer

    rows, threshold = seed_runs(args.reader)
    if args.corpus:
        rows += corpus_rows(args.corpus, args.limit, args.reader)
    results = []
    print(f"threshold {threshold:.3f}")
    print(f"{'window':>7}{'declined answerable w/ evidence':>33}{'its F1':>8}   unanswerable shown a passage")
    for window in WINDOWS:
        shown = [row for row in rows if threshold - window < row[1] <= threshold]
        declined = [row for row in rows if row[0] and row[1] <= threshold]
        evidence = [row for row in shown if row[0]]
        f1 = [score_answer(row[2], row[0])[1] for row in evidence]
        misleading = {}
        for group in ("seed", "out of corpus", "squad"):
            unanswerable = [row for row in rows if not row[0] and row[3] == group]
            if unanswerable:
                hits = sum(1 for row in unanswerable if threshold - window < row[1] <= threshold)
                misleading[group] = (hits, len(unanswerable))
        result = {
            "window": window,
            "declined_answerable": len(declined),
            "with_evidence": len(evidence),
            "evidence_f1": 100 * sum(f1) / len(f1) if f1 else None,
            "unanswerable_shown": misleading,
        }
        results.append(result)
        misleading_text = ", ".join(f"{group} {hit}/{total}" for group, (hit, total) in misleading.items())
        evidence_f1 = "-" if result["evidence_f1"] is None else f"{result['evidence_f1']:.1f}"
        print(f"{window:>7.1f}{len(evidence):>26}/{len(declined):<6}{evidence_f1:>8}   {misleading_text}")
    print(json.dumps({"benchmark": "evidence", "threshold": threshold, "corpus": args.corpus, "rows": results}))


if __name__ == "__main__":
    main()
