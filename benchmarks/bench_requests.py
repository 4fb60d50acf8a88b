"""Questions asked as requests ("Can you tell me who ...?"): what unwrapping them
(``qa.conversation.chat.without_request``) is worth, against answering the request as typed (the baseline, run side by
side on the same models and index).

Every question of the seed sets is asked in each of ``WRAPPINGS`` (its first letter lower-cased), and the
wrapped set is scored with ``qa.evaluation.questions`` as ``qa eval`` scores the plain one:

    python benchmarks/bench_requests.py [--reader FOLDER]

Prints, per set: F1 and no-answer accuracy as typed, unwrapped, and of the plain questions; the last line is
one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ("questions", "fresh_questions", "unseen_questions", "out_of_corpus")
WRAPPINGS = ("Can you tell me {}", "do you know {}", "Tell me {}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", help="reader folder or hub id (default: the shipped reader)")
    args = parser.parse_args()

    import qa.conversation.chat as chat
    from qa.evaluation.questions import EvalQuestion, evaluate_questions, load_questions
    from qa.pipeline import QA

    unwrap = chat.without_request
    figures = {}
    with tempfile.TemporaryDirectory() as index:
        qa = QA(ROOT / "seeds", index, reader=args.reader)
        for name in SETS:
            plain = load_questions(ROOT / "seeds" / f"{name}.jsonl")
            wrapped = [
                EvalQuestion(wrapping.format(q.question[:1].lower() + q.question[1:]), q.answers, q.paragraph)
                for q in plain
                for wrapping in WRAPPINGS
            ]
            row = {}
            for label, questions, rewrite in (
                ("as typed", wrapped, str),
                ("unwrapped", wrapped, unwrap),
                ("plain", plain, unwrap),
            ):
                chat.without_request = rewrite  # str: the request reaches the reader as typed
                metrics, _ = evaluate_questions(qa, questions, progress=False)
                row[label] = {"f1": metrics["f1"], "no_answer_accuracy": metrics.get("no_answer_accuracy")}
            chat.without_request = unwrap
            figures[name] = {"questions": len(plain), "wrappings": len(WRAPPINGS), **row}
            cells = "  ".join(
                f"{label} F1 {row[label]['f1']:6.2f}"
                + (
                    f" (declined {row[label]['no_answer_accuracy']:.0f}%)"
                    if row[label]["no_answer_accuracy"] is not None
                    else ""
                )
                for label in row
            )
            print(f"{name:18s} {len(plain):3d} questions x {len(WRAPPINGS)} wrappings  {cells}", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
