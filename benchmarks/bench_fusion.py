"""Retrieval alone: recall@1/@3/@5 of the gold paragraph for dense, BM25, and their reciprocal rank fusion at several
constants, side by side against the usual constant of 60 (the baseline) and the shipped one
(``qa.search.retriever.RRF_K``). The SQuAD file's articles become the documents as in ``qa reader eval-corpus`` (same
corpus builder, same index path); a fixed random sample of ``--limit`` answerable questions is asked.

    python benchmarks/bench_fusion.py /root/runs/q1/calibration.json   # held-out training articles: choose here
    python benchmarks/bench_fusion.py ../shared/data/squad/dev.json     # report only

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

BASELINE = 60.0
RECALL_AT = (1, 3, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("squad_file")
    parser.add_argument("--limit", type=int, default=3000, help="answerable questions asked (default: %(default)s)")
    parser.add_argument("--constants", default="0,1,2,3,5,10,20,60", help="fusion constants compared")
    parser.add_argument("--depth", type=int, default=20, help="paragraphs taken from each list (as the product)")
    args = parser.parse_args()

    from qa.evaluation.corpus import gold_finder, write_corpus
    from qa.evaluation.squad import load_squad
    from qa.search.embedder import Embedder
    from qa.search.retriever import RRF_K, Retriever, fuse
    from qa.search.sync import open_index

    examples = load_squad(args.squad_file)
    answerable = [example for example in examples if not example.is_impossible]
    questions = random.Random(0).sample(answerable, min(args.limit, len(answerable)))
    with tempfile.TemporaryDirectory(prefix="bench-fusion-") as temp:
        documents, index = Path(temp) / "documents", Path(temp) / "index"
        where = write_corpus(examples, documents)
        embedder = Embedder()
        retriever = Retriever(open_index(documents, index, embedder), embedder)
        paragraphs = retriever.index.paragraphs()
        gold_of = gold_finder(where, paragraphs)
        position_of = {paragraph.id: row for row, paragraph in zip(retriever.index.rows(), paragraphs)}
        asked = []
        for example in questions:
            gold = {position_of[pid] for pid in gold_of(example)}
            asked.append((gold, retriever.rankings(example.question, min(args.depth, len(paragraphs)))))

    def recall(order) -> dict[str, float]:
        found = [(gold, order(dense, lexical)) for gold, (dense, lexical) in asked]
        return {
            f"recall@{n}": 100 * sum(bool(gold & set(ranks[:n])) for gold, ranks in found) / len(found)
            for n in RECALL_AT
        }

    constants = sorted({float(c) for c in args.constants.split(",")} | {BASELINE, float(RRF_K)})
    rows = {"dense": recall(lambda dense, lexical: list(dense)), "bm25": recall(lambda dense, lexical: list(lexical))}
    rows |= {f"rrf {c:g}": recall(lambda dense, lexical, c=c: list(fuse((dense, lexical), c))) for c in constants}
    baseline = rows[f"rrf {BASELINE:g}"]
    print(f"{args.squad_file}: {len(asked)} answerable questions, {len(paragraphs)} paragraphs, depth {args.depth}")
    print(f"{'':<10}" + "".join(f"{k:>11}" for k in baseline) + f"{'@3 vs 60':>11}")
    for name, row in rows.items():
        shipped = "  <- shipped" if name == f"rrf {float(RRF_K):g}" else ""
        ratio = row["recall@3"] / baseline["recall@3"]
        print(f"{name:<10}" + "".join(f"{v:>11.2f}" for v in row.values()) + f"{ratio:>11.3f}{shipped}")
    print(json.dumps({"file": args.squad_file, "questions": len(asked), "shipped": RRF_K, "rows": rows}))


if __name__ == "__main__":
    main()
