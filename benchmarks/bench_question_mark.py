"""Questions typed without their question mark: what giving it back (``qa.pipeline.as_asked``) is worth, against
answering them as typed (the baseline, run side by side on the same models and index).

Every question of the seed sets, and of a SQuAD-format file end to end with ``--corpus`` (its articles become
the documents, as ``qa reader eval-corpus`` does), loses its final "?" and is answered twice through ``QA.answer()``:

    python benchmarks/bench_question_mark.py [--corpus ../shared/data/squad/dev.json] [--limit N] [--reader DIR]

Prints, per set: F1 (and no-answer accuracy or HasAns / NoAns F1) as typed, with the "?" given back, and of the
questions as written; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ("questions", "fresh_questions", "unseen_questions", "out_of_corpus", "unseen_out_of_corpus")


def without_mark(question: str) -> str:
    return question.rstrip().rstrip("?").rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="a SQuAD-format file to answer end to end as well")
    parser.add_argument("--limit", type=int, help="a fixed random sample of the corpus questions")
    parser.add_argument("--reader", help="reader folder or hub id (default: the shipped reader)")
    args = parser.parse_args()

    import qa.pipeline as pipeline
    from qa.evaluation.corpus import answer_all, corpus_metrics, gold_finder, sample_examples, write_corpus
    from qa.evaluation.questions import evaluate_questions, load_questions
    from qa.evaluation.squad import load_squad
    from qa.pipeline import QA

    give_back = pipeline.as_asked

    def compare(score, typed, written) -> dict:
        row = {}
        for label, questions, reading in (
            ("as typed", typed, str),
            ("with ?", typed, give_back),
            ("written", written, give_back),
        ):
            pipeline.as_asked = reading  # str: the question reaches both models as typed
            row[label] = score(questions)
        pipeline.as_asked = give_back
        return row

    figures = {}
    with tempfile.TemporaryDirectory() as temp:
        qa = QA(ROOT / "seeds", Path(temp) / "seed-index", reader=args.reader)

        def seed_score(questions):
            metrics, _ = evaluate_questions(qa, questions, progress=False)
            return {"f1": metrics["f1"], "no_answer_accuracy": metrics.get("no_answer_accuracy")}

        for name in SETS:
            written = load_questions(ROOT / "seeds" / f"{name}.jsonl")
            typed = [replace(q, question=without_mark(q.question)) for q in written]
            figures[name] = row = compare(seed_score, typed, written)
            cells = "  ".join(
                f"{label} F1 {r['f1']:6.2f}"
                + (f" (declined {r['no_answer_accuracy']:.0f}%)" if r["no_answer_accuracy"] is not None else "")
                for label, r in row.items()
            )
            print(f"{name:21s} {len(written):4d} questions  {cells}", flush=True)

        if args.corpus:
            examples = load_squad(args.corpus)
            written = sample_examples(examples, args.limit)
            typed = [replace(e, question=without_mark(e.question)) for e in written]
            where = write_corpus(examples, Path(temp) / "documents")
            corpus_qa = QA(Path(temp) / "documents", Path(temp) / "corpus-index", reader=args.reader)
            gold_of = gold_finder(where, corpus_qa.index().paragraphs)

            def corpus_score(questions):
                metrics = corpus_metrics(answer_all(corpus_qa, questions, gold_of, progress=False))
                return {key: metrics.get(key) for key in ("f1", "HasAns_f1", "NoAns_f1")}

            figures["corpus"] = row = compare(corpus_score, typed, written)
            cells = "  ".join(
                f"{label} F1 {r['f1']:6.2f} (HasAns {r['HasAns_f1'] or 0:5.2f}, NoAns {r['NoAns_f1'] or 0:5.2f})"
                for label, r in row.items()
            )
            print(f"{Path(args.corpus).name:21s} {len(written):4d} questions  {cells}", flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
