"""The reader alone on its three runtimes: PyTorch float32 (the baseline), ONNX Runtime float32 (the
default, ``qa/models/runtime.py``) and ONNX Runtime with per-channel dynamic int8 weights (``QA_READER_QUANTIZE=int8``).
SQuAD 2.0 F1 / EM on the first ``--limit`` questions of a SQuAD file (gold paragraphs, no retrieval, the
reader's own threshold) through ``qa.evaluation.questions.evaluate_reader``, reader throughput on them, and the ratios
against PyTorch float32.

    python benchmarks/bench_reader.py --reader qa/models/reader                # every dev question
    python benchmarks/bench_reader.py --reader qa/models/reader --limit 300    # quick check

int8 stays opt-in (see ``Reader._quantization`` in qa/reading/reader.py for why, with the figures). The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--limit", type=int, default=10**9, help="questions from the start of the file")
    args = parser.parse_args()

    import torch

    from qa.evaluation.questions import evaluate_reader
    from qa.reading.reader import Reader

    variants = {"torch float32": ("torch", None), "onnx float32": ("onnx", "none"), "onnx int8": ("onnx", "int8")}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-reader-") as folder:
        subset, warmup = Path(folder) / "slice.json", Path(folder) / "warmup.json"
        count = squad_slice(Path(args.squad), args.limit, subset)
        squad_slice(Path(args.squad), 20, warmup)
        for variant, (backend, quantize) in variants.items():
            reader = Reader(args.reader, device="cpu", backend=backend, quantize=quantize)
            evaluate_reader(reader, warmup)
            metrics, _, _ = evaluate_reader(reader, subset)
            rows[variant] = {key: metrics[key] for key in ("exact", "f1", "questions_per_second", "threshold")}
            for key in ("HasAns_f1", "NoAns_f1"):
                if key in metrics:
                    rows[variant][key] = metrics[key]

    baseline = rows["torch float32"]
    print(f"{'reader':<15}{'EM':>8}{'F1':>8}{'HasAns F1':>11}{'NoAns F1':>10}{'q/s':>8}{'speed-up':>10}")
    for variant, row in rows.items():
        row["speedup"] = row["questions_per_second"] / baseline["questions_per_second"]
        row["f1_drop"] = baseline["f1"] - row["f1"]
        print(
            f"{variant:<15}{row['exact']:>8.2f}{row['f1']:>8.2f}{row.get('HasAns_f1', float('nan')):>11.2f}"
            f"{row.get('NoAns_f1', float('nan')):>10.2f}{row['questions_per_second']:>8.2f}{row['speedup']:>9.2f}x"
        )
    print(f"{count} questions of {args.squad}; baseline: torch float32")
    summary = {
        "benchmark": "reader",
        "reader": args.reader,
        "questions": count,
        "torch_threads": torch.get_num_threads(),
        **rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
