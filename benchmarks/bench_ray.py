"""Ray on this machine: indexing throughput with 1 and 2 Ray workers against the single-process path, and
answers/s of the chat with 1 and 2 Ray Serve replicas against the in-process server (bench_load.py).

Indexing: the same ``--paragraphs`` SQuAD paragraphs (repeated with " (copy N)" past the distinct ones, as in
bench_index.py) go through ``qa.search.sync.open_index`` into a fresh index folder, embedded by ``Embedder``
(baseline, one process using every core) or by ``qa.serving.cluster.RayEmbedder`` with 1 and 2 actors (one CPU each)
on a private Ray started here with one CPU per core (or ``--address``). Times include the actors' start and
model loads: what ``qa index --ray`` costs. Every Ray index is checked against the baseline's vectors.
Serving: ``bench_load.py`` with ``--ray-replicas 0`` (the in-process server), 1 and 2.

    python benchmarks/bench_ray.py                          # 20k paragraphs, then the load runs
    python benchmarks/bench_ray.py --paragraphs 2000 --clients 4 --questions 10   # quick

Prints one table per part with ratios to the baseline, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import SQUAD, corpus, squad_contexts  # noqa: E402
from bench_load import format_table, parse_args, run_load  # noqa: E402


def index_run(texts: list[str], encoder) -> tuple[float, np.ndarray]:
    """Seconds to index ``texts`` (one document, a paragraph each) afresh with ``encoder``, and the vectors."""
    from qa.search.sync import open_index

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as folder:
        (Path(folder) / "documents").mkdir()
        (Path(folder) / "documents" / "bench.txt").write_text("\n\n".join(texts), encoding="utf-8")
        began = time.perf_counter()
        index = open_index(Path(folder) / "documents", Path(folder) / "index", encoder)
        seconds = time.perf_counter() - began
        return seconds, index.stored_vectors()[1]


def indexing(args) -> list[dict]:
    from qa.search.embedder import Embedder
    from qa.serving.cluster import RayEmbedder, connect

    texts = corpus(squad_contexts([Path(f) for f in args.squad]), args.paragraphs)
    rows = []
    seconds, baseline = index_run(texts, Embedder(backend="torch"))
    rows.append({"run": f"single process ({os.cpu_count()} threads)", "seconds": seconds, "max_diff": 0.0})
    if args.address:
        connect(args.address)
    else:
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
    for workers in (1, 2):
        seconds, vectors = index_run(texts, RayEmbedder(workers=workers))
        diff = float(np.abs(vectors - baseline).max())
        rows.append({"run": f"Ray, {workers} worker{'s' * (workers > 1)}", "seconds": seconds, "max_diff": diff})
    for row in rows:
        row["paragraphs_per_s"] = args.paragraphs / row["seconds"]
        row["ratio"] = row["paragraphs_per_s"] / rows[0]["paragraphs_per_s"]
    return rows


def serving(args) -> list[dict]:
    """bench_load.py's figures for the in-process server and 1 and 2 Serve replicas."""
    rows = []
    for replicas in (0, 1, 2):
        argv = ["--clients", str(args.clients), "--questions", str(args.questions), "--ray-replicas", str(replicas)]
        if replicas:
            argv += ["--concurrency", str(2 * replicas)]  # enough page workers to keep every replica busy
        figures = run_load(parse_args(argv))
        print(format_table(figures))
        rows.append(figures)
    for row in rows:
        row["ratio"] = row["throughput_rps"] / rows[0]["throughput_rps"] if rows[0]["throughput_rps"] else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=20_000)
    parser.add_argument("--squad", nargs="+", default=[str(SQUAD / "train.json"), str(SQUAD / "dev.json")])
    parser.add_argument("--address", help="an existing Ray cluster (default: a private one on this machine)")
    parser.add_argument("--clients", type=int, default=8, help="bench_load.py clients (default: %(default)s)")
    parser.add_argument("--questions", type=int, default=20, help="questions per client (default: %(default)s)")
    parser.add_argument("--skip-serving", action="store_true")
    args = parser.parse_args()

    rows = indexing(args)
    print(f"\nindexing {args.paragraphs} paragraphs ({os.cpu_count()} cores)")
    print(f"{'run':<28}{'seconds':>10}{'paragraphs/s':>14}{'ratio':>8}{'max |diff|':>12}")
    for row in rows:
        print(
            f"{row['run']:<28}{row['seconds']:>10.1f}{row['paragraphs_per_s']:>14.1f}{row['ratio']:>8.2f}"
            f"{row['max_diff']:>12.1e}"
        )
    figures = {"cores": os.cpu_count(), "paragraphs": args.paragraphs, "indexing": rows}
    if not args.skip_serving:
        import ray

        ray.shutdown()  # each load run starts its own server (and, with replicas, its own Ray)
        figures["serving"] = serving(args)
        print(f"\nanswers/s, bench_load.py {args.clients} clients x {args.questions} questions")
        print(f"{'server':<24}{'answers/s':>10}{'p50 s':>8}{'p95 s':>8}{'errors':>8}{'ratio':>8}")
        for row in figures["serving"]:
            name = f"Ray Serve, {row['ray_replicas']} replica{'s' * (row['ray_replicas'] > 1)}"
            print(
                f"{name if row['ray_replicas'] else 'in process (baseline)':<24}{row['throughput_rps']:>10.2f}"
                f"{row['p50_s']:>8.2f}{row['p95_s']:>8.2f}{row['errors'] + row['mismatches']:>8}{row['ratio']:>8.2f}"
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
