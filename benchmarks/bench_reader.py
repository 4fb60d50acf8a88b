"""The reader alone, float32 vs dynamic int8 (``QA_READER_QUANTIZE=int8``): SQuAD 2.0 F1 / EM on the
first ``--limit`` questions of a SQuAD file (gold paragraphs, no retrieval, the reader's own threshold)
through ``qa.evaluate.evaluate_reader``, and reader throughput on them.

    python benchmarks/bench_reader.py --reader qa/models/reader                # 500 dev questions
    python benchmarks/bench_reader.py --reader qa/models/reader --limit 100    # quick check

The int8 reader is kept opt-in unless its F1 is within 1 point of float32's. The last line printed is
one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "squad" / "dev.json"


def squad_slice(source: Path, limit: int, target: Path) -> int:
    """Write the first ``limit`` questions of a SQuAD file to ``target`` (same structure); their count."""
    data = json.loads(source.read_text(encoding="utf-8"))
    kept, total = [], 0
    for article in data["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = paragraph["qas"][: max(0, limit - total)]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
                total += len(qas)
        if paragraphs:
            kept.append({**article, "paragraphs": paragraphs})
        if total >= limit:
            break
    target.write_text(json.dumps({"version": data.get("version"), "data": kept}), encoding="utf-8")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", required=True, help="reader folder")
    parser.add_argument("--squad", default=str(DEV))
    parser.add_argument("--limit", type=int, default=500, help="questions from the start of the file")
    args = parser.parse_args()

    import torch

    from qa.evaluate import evaluate_reader
    from qa.read import Reader

    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-reader-") as folder:
        subset = Path(folder) / "slice.json"
        count = squad_slice(Path(args.squad), args.limit, subset)
        previous = os.environ.get("QA_READER_QUANTIZE")
        try:
            for variant in ("float32", "int8"):
                os.environ["QA_READER_QUANTIZE"] = "int8" if variant == "int8" else ""
                reader = Reader(args.reader, device="cpu")
                evaluate_reader(reader, subset)  # warm-up pass (also checks it runs)
                metrics, _ = evaluate_reader(reader, subset)
                rows[variant] = {key: metrics[key] for key in ("exact", "f1", "questions_per_second", "threshold")}
                for key in ("HasAns_f1", "NoAns_f1"):
                    if key in metrics:
                        rows[variant][key] = metrics[key]
        finally:
            if previous is None:
                os.environ.pop("QA_READER_QUANTIZE", None)
            else:
                os.environ["QA_READER_QUANTIZE"] = previous

    print(f"{'reader':<10}{'EM':>8}{'F1':>8}{'HasAns F1':>11}{'NoAns F1':>10}{'q/s':>8}")
    for variant, row in rows.items():
        print(
            f"{variant:<10}{row['exact']:>8.2f}{row['f1']:>8.2f}{row.get('HasAns_f1', float('nan')):>11.2f}"
            f"{row.get('NoAns_f1', float('nan')):>10.2f}{row['questions_per_second']:>8.2f}"
        )
    drop = rows["float32"]["f1"] - rows["int8"]["f1"]
    speedup = rows["int8"]["questions_per_second"] / rows["float32"]["questions_per_second"]
    print(f"{count} questions of {args.squad}; int8 F1 drop {drop:.2f} points, speed-up x{speedup:.2f}")
    summary = {
        "benchmark": "reader",
        "reader": args.reader,
        "questions": count,
        "torch_threads": torch.get_num_threads(),
        **rows,
        "f1_drop": drop,
        "speedup": speedup,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
