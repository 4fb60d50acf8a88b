"""FAISS search at scale: exact ``IndexFlatIP`` vs ``IndexHNSWFlat`` with the parameters qa/search/index.py uses.

Vectors are 384-d random-normal, L2-normalised (the embedder's dimension; random data is the hard case
for HNSW: real embeddings cluster, so their recall is higher at the same settings). Queries are drawn the
same way, independently. For each size: build time of each index, p50/p95 latency of single-query
searches (one query per call, as ``Retriever`` does) and recall@k of HNSW against the exact top-k, for
each efSearch in ``--ef-search`` (the graph is built once per size; efSearch only changes the search).

    python benchmarks/bench_search.py                                  # 100k and 1M (long: HNSW build at 1M)
    python benchmarks/bench_search.py --sizes 100000 --queries 200     # quick check
    python benchmarks/bench_search.py --sizes 1000000 --cache runs/bench-search   # keep built indexes

The figures chose qa.search.index.HNSW_THRESHOLD / HNSW_EF_SEARCH (see the comment there). The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from qa import index as qa_index


def random_unit_vectors(count: int, dimension: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = np.empty((count, dimension), dtype=np.float32)
    for start in range(0, count, chunk):
        block = rng.standard_normal((min(chunk, count - start), dimension), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[start : start + len(block)] = block
    return vectors


def clustered_unit_vectors(
    count: int, queries: int, dimension: int, seed: int, cluster_size: int, spread: float, chunk: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, queries) from one mixture of ``count / cluster_size`` clusters around random unit centres:
    point = centre + noise of norm ``spread``, normalised (cosine to its centre about
    ``1 / sqrt(1 + spread**2)``). Structure like real embeddings have (topics), unlike uniform vectors."""
    centres = random_unit_vectors(max(1, count // cluster_size), dimension, seed=seed)
    rng = np.random.default_rng(seed + 1)
    scale = np.float32(spread / np.sqrt(dimension))

    def draw(total: int) -> np.ndarray:
        points = np.empty((total, dimension), dtype=np.float32)
        for start in range(0, total, chunk):
            size = min(chunk, total - start)
            block = centres[rng.integers(0, len(centres), size)]
            block += rng.standard_normal((size, dimension), dtype=np.float32) * scale
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            points[start : start + size] = block
        return points

    return draw(count), draw(queries)


def single_query_latencies(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per one-query search call, and the ids found."""
    seconds, found = [], []
    for query in queries:
        started = time.perf_counter()
        _, ids = index.search(query[None, :], k)
        seconds.append(time.perf_counter() - started)
        found.append(ids[0])
    return np.array(seconds) * 1000, np.array(found)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def build_hnsw(vectors: np.ndarray, neighbours: int, ef_construction: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(vectors)
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated vector counts")
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500, help="single-query searches timed per setting")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--neighbours", type=int, default=qa_index.HNSW_NEIGHBOURS, help="HNSW M")
    parser.add_argument("--ef-construction", type=int, default=qa_index.HNSW_EF_CONSTRUCTION)
    parser.add_argument(
        "--ef-search", default=f"32,64,{qa_index.HNSW_EF_SEARCH},256", help="comma-separated efSearch values"
    )
    parser.add_argument("--threads", type=int, default=0, help="FAISS OpenMP threads for builds (0: FAISS default)")
    parser.add_argument("--cache", default=None, help="folder to keep built HNSW indexes in, and reuse them from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data", choices=("random", "clustered"), default="random", help="uniform random (default) or clustered"
    )
    parser.add_argument("--cluster-size", type=int, default=100, help="clustered: mean points per cluster")
    parser.add_argument("--spread", type=float, default=1.0, help="clustered: noise norm relative to the centre")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    ef_values = sorted({int(e) for e in args.ef_search.split(",")})
    rows = []
    for size in sizes:
        if args.data == "random":
            vectors = random_unit_vectors(size, args.dimension, seed=args.seed)
            queries = random_unit_vectors(args.queries, args.dimension, seed=args.seed + 1)
        else:
            vectors, queries = clustered_unit_vectors(
                size, args.queries, args.dimension, args.seed, args.cluster_size, args.spread
            )
        started = time.perf_counter()
        flat = faiss.IndexFlatIP(args.dimension)
        flat.add(vectors)
        flat_build = time.perf_counter() - started
        _, truth = flat.search(queries, args.k)  # batched: the ground truth
        flat_ms, flat_found = single_query_latencies(flat, queries, args.k)
        rows.append(
            {
                "vectors": size,
                "index": "IndexFlatIP",
                "ef_search": None,
                "build_s": flat_build,
                "p50_ms": float(np.percentile(flat_ms, 50)),
                "p95_ms": float(np.percentile(flat_ms, 95)),
                f"recall@{args.k}": recall_at(flat_found, truth),
            }
        )
        print_row(rows[-1], args.k)
        del flat

        cached = None
        if args.cache:
            data = "random" if args.data == "random" else f"clustered{args.cluster_size}x{args.spread}"
            name = (
                f"hnsw-{data}-{size}-d{args.dimension}-M{args.neighbours}-efc{args.ef_construction}-s{args.seed}.faiss"
            )
            cached = Path(args.cache) / name
        if cached and cached.is_file():
            hnsw = faiss.read_index(str(cached))
            hnsw_build = json.loads(cached.with_suffix(".json").read_text())["build_s"]
        else:
            started = time.perf_counter()
            hnsw = build_hnsw(vectors, args.neighbours, args.ef_construction)
            hnsw_build = time.perf_counter() - started
            if cached:
                cached.parent.mkdir(parents=True, exist_ok=True)
                faiss.write_index(hnsw, str(cached))
                cached.with_suffix(".json").write_text(json.dumps({"build_s": hnsw_build}))
        del vectors
        for ef in ef_values:
            hnsw.hnsw.efSearch = ef
            single_query_latencies(hnsw, queries[: min(50, len(queries))], args.k)  # warm the caches
            hnsw_ms, hnsw_found = single_query_latencies(hnsw, queries, args.k)
            rows.append(
                {
                    "vectors": size,
                    "index": f"IndexHNSWFlat M={args.neighbours} efC={args.ef_construction}",
                    "ef_search": ef,
                    "build_s": hnsw_build,
                    "p50_ms": float(np.percentile(hnsw_ms, 50)),
                    "p95_ms": float(np.percentile(hnsw_ms, 95)),
                    f"recall@{args.k}": recall_at(hnsw_found, truth),
                }
            )
            print_row(rows[-1], args.k)
        del hnsw
    print(
        f"qa.search.index: HNSW_THRESHOLD={qa_index.HNSW_THRESHOLD} HNSW_NEIGHBOURS={qa_index.HNSW_NEIGHBOURS} "
        f"HNSW_EF_CONSTRUCTION={qa_index.HNSW_EF_CONSTRUCTION} HNSW_EF_SEARCH={qa_index.HNSW_EF_SEARCH}; "
        f"FAISS threads {faiss.omp_get_max_threads()}"
    )
    print(
        json.dumps(
            {
                "benchmark": "search",
                "data": args.data,
                "cluster_size": args.cluster_size if args.data == "clustered" else None,
                "spread": args.spread if args.data == "clustered" else None,
                "dimension": args.dimension,
                "queries": args.queries,
                "k": args.k,
                "hnsw_threshold": qa_index.HNSW_THRESHOLD,
                "hnsw_ef_search": qa_index.HNSW_EF_SEARCH,
                "rows": rows,
            }
        )
    )


HEADER_PRINTED = False


def print_row(row: dict, k: int) -> None:
    global HEADER_PRINTED
    if not HEADER_PRINTED:
        recall = f"recall@{k}"
        print(f"{'vectors':>9}  {'index':<34}{'efSearch':>9}{'build s':>10}{'p50 ms':>9}{'p95 ms':>9}{recall:>11}")
        HEADER_PRINTED = True
    ef = "-" if row["ef_search"] is None else str(row["ef_search"])
    print(
        f"{row['vectors']:>9}  {row['index']:<34}{ef:>9}{row['build_s']:>10.1f}{row['p50_ms']:>9.3f}"
        f"{row['p95_ms']:>9.3f}{row[f'recall@{k}']:>11.3f}",
        flush=True,
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
