"""Early stop in the reader: how often reading only the top-ranked passage, when its span is confident,
changes the answer, and how many passages it saves, at each stop margin.

``QA.answer()`` reads the best-ranked passage first and skips the others when its span's score (span logit
minus null logit) reaches ``QA.stop_margin``. This script picks that margin on data the reader never trained
on and that is not the dev set: the SQuAD training articles the reader card lists as its calibration
(held-out) articles. Their paragraphs become the documents (one file per article), each of their questions
goes through the real retriever (top_k), and the reader reads all retrieved passages once; every stop
margin is then applied to the same spans. Baseline: no early stop (all passages read).

    python benchmarks/bench_early_stop.py                     # the shipped reader, top_k 3

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT.parent / "shared" / "data" / "squad" / "train.json"
MARGINS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", default=None, help="reader folder (default: the shipped qa/models/reader)")
    parser.add_argument("--squad", default=str(TRAIN), help="SQuAD file holding the reader's calibration articles")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()

    from qa.pipeline import QA
    from qa.read import Reader
    from qa.squad import load_squad, score_answer

    reader = Reader(args.reader)
    titles = set(reader.card.get("calibration", {}).get("titles", []))
    if not titles:
        raise SystemExit(f"{reader.name} has no calibration articles in its reader card")
    examples = [example for example in load_squad(args.squad) if example.title in titles]
    runs = []  # per question: gold answers and the spans of the retrieved passages, in rank order
    with tempfile.TemporaryDirectory(prefix="bench-early-stop-") as folder:
        documents = Path(folder) / "documents"
        documents.mkdir()
        for title in sorted(titles):
            contexts = dict.fromkeys(example.context for example in examples if example.title == title)
            (documents / f"{title}.txt").write_text("\n\n".join(contexts), encoding="utf-8")
        qa = QA(documents_dir=documents, index_dir=Path(folder) / "index", reader=args.reader, top_k=args.top_k)
        qa._reader = reader
        for example in examples:
            hits = qa.retrieve(example.question)
            spans = reader.read_pairs([example.question] * len(hits), [hit.paragraph.text for hit in hits])
            runs.append((example.answers, spans))

    def answer_text(spans) -> str:
        best = max(spans, key=lambda span: span.score)
        return best.text if best.is_answer(reader.threshold) else ""

    full_answers = [answer_text(spans) for _, spans in runs]
    rows = []
    for margin in (None, *MARGINS):
        changed, f1_total, passages, stopped = 0, 0.0, 0, 0
        for (gold, spans), full in zip(runs, full_answers):
            stops = margin is not None and spans[0].score >= margin
            stopped += stops
            read = spans[:1] if stops else spans
            text = answer_text(read)
            changed += text != full
            f1_total += score_answer(text, gold)[1]
            passages += len(read)
        rows.append(
            {
                "stop_margin": margin,
                "f1": 100 * f1_total / len(runs),
                "answers_changed_pct": 100 * changed / len(runs),
                "passages_read_per_question": passages / len(runs),
                "stopped_early_pct": 100 * stopped / len(runs),
            }
        )

    print(f"{'stop margin':>12}{'F1':>8}{'changed %':>11}{'stopped early %':>17}{'passages read':>15}")
    for row in rows:
        label = "none" if row["stop_margin"] is None else f"{row['stop_margin']:.1f}"
        print(
            f"{label:>12}{row['f1']:>8.2f}{row['answers_changed_pct']:>11.2f}{row['stopped_early_pct']:>17.1f}"
            f"{row['passages_read_per_question']:>15.2f}"
        )
    print(
        f"{len(runs)} questions of {len(titles)} held-out articles ({', '.join(sorted(titles))}); top_k {args.top_k}; "
        f"baseline: no early stop; reader threshold {reader.threshold:.3f}"
    )
    summary = {
        "benchmark": "early_stop",
        "reader": reader.name,
        "questions": len(runs),
        "articles": sorted(titles),
        "top_k": args.top_k,
        "threshold": reader.threshold,
        "rows": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
