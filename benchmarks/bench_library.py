"""A library at scale: 10k, 100k and 1M paragraphs through the real store, next to the JSON index before it.

Per size, a library is generated: ``.txt`` documents of 100 paragraphs, each paragraph ~60 words drawn (Zipf) from
20,000 made-up words. It is indexed by the real code (``open_index``: conversion, store, segments, BM25 postings,
FAISS), except that the vectors are clustered random unit vectors (1,000 topics) standing in for MiniLM's: embedding
a million paragraphs would take about 11 hours on this machine. The stand-in claims the real model's identity, so
the real ``QA`` (real embedder for the questions, real reader) then opens the index as its own. The answers mean
nothing; the timings and the memory do. Then, each in a new process:

- cold start: from the process's start to the first answer (models already exported, files in the page cache),
  with its parts: importing ``qa`` (torch, transformers, ONNX Runtime) and opening the index (``QA.index()``:
  the folder checked against the store, segments opened and verified); the models load on the first answer;
- resident memory after it, less that of the same process over a one-document library (the models);
- answer p50 over 30 questions of library words (``QA.answer``: folder check, retrieval, reading; the reader reads
  all 5 passages, as no answer is sure in made-up text), the p50 of retrieval alone (``QA.retrieve``: the part
  that grows with the library) and of the folder check in it (``QA.index()`` with nothing changed);
- adding one 10-page PDF (``add_document`` then ``QA.index()``: conversion, real embedding, segment, commit);
- removing one document (``remove_document`` then ``QA.index()``);
- opening the same library and index from a second checkout (both folders copied elsewhere, new mtimes): cold
  start there, with the number of paragraphs embedded again (0 expected).

``--baseline DIR`` runs the same steps with the code of the checkout DIR (e.g. ``git worktree add DIR <commit>``
of the release before the store: one meta.json, BM25 rebuilt at every start) on the sizes it can hold.

    python benchmarks/bench_library.py --sizes 10000 100000 1000000 --baseline DIR

One JSON line per (code, size) and a table at the end. Run-to-run noise: see ``--repeat`` (cold start and p50
are measured that many times; the spread is printed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PER_DOCUMENT = 100
WORDS_PER_PARAGRAPH = 60
VOCABULARY = 20_000
TOPICS = 1_000
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "vo", "de", "pa", "gri", "sel", "mon", "tir", "bla", "quo"]

WORKER = r"""
import json, sys, time
started = time.time()
checkout, step, documents, index = sys.argv[1:5]
sys.path.insert(0, checkout)
import numpy as np

def rss_mb():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1024

def say(**figures):
    print(json.dumps(figures), flush=True)

if step == "build":
    from qa.search.embedder import Embedder
    try:
        from qa.search.sync import open_index
    except ImportError:  # the release before the store
        from qa.search.index import open_index
    real = Embedder()

    class Stand_in:
        name, identity, dimension = real.name, real.identity, real.dimension
        def __init__(self):
            rng = np.random.default_rng(7)
            centres = rng.normal(size=(TOPICS, real.dimension)).astype(np.float32)
            self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
            self.rng = rng
        def encode(self, texts, progress=False):
            topics = self.rng.integers(0, TOPICS, len(texts))
            noise = self.rng.normal(size=(len(texts), real.dimension)).astype(np.float32)
            vectors = self.centres[topics] + 0.6 * noise / np.sqrt(real.dimension)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    begun = time.time()
    open_index(documents, index, Stand_in())
    say(build_s=time.time() - begun)
else:
    from qa.search import embedder as embedder_module
    embedded = [0]
    encode = embedder_module.Embedder.encode
    def counting(self, texts, *args, **kwargs):
        embedded[0] += len(texts)
        return encode(self, texts, *args, **kwargs)
    embedder_module.Embedder.encode = counting
    from qa import QA
    questions = json.loads(sys.argv[5])
    qa = QA(documents_dir=documents, index_dir=index)
    imported = time.time()
    qa.index()
    opened = time.time()
    qa.answer(questions[0])
    say(first_answer_s=time.time() - started, import_s=imported - started, index_open_s=opened - imported,
        rss_mb=rss_mb(), embedded=embedded[0] - 1)
    if step == "serve":
        seconds, retrieval, check = [], [], []
        for question in questions[1:]:
            begun = time.perf_counter()
            qa.answer(question)
            seconds.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            qa.retrieve(question)
            retrieval.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            qa.index()
            check.append(time.perf_counter() - begun)
        say(p50_ms=1000 * float(np.median(seconds)), retrieve_p50_ms=1000 * float(np.median(retrieval)),
            check_p50_ms=1000 * float(np.median(check)))
        from qa.documents.library import add_document, remove_document
        from pathlib import Path
        begun = time.time()
        add_document(documents, "added-report.pdf", Path(sys.argv[6]).read_bytes())
        qa.index()
        added_s = time.time() - begun
        begun = time.time()
        remove_document(documents, "doc-00000.txt")
        qa.index()
        say(add_pdf_s=added_s, remove_s=time.time() - begun, embedded_after=embedded[0])
"""


def vocabulary(rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(SYLLABLES, size=rng.integers(2, 5))))
    return sorted(words)


def generate(folder: Path, paragraphs: int, words: list[str]) -> None:
    """``paragraphs`` paragraphs in documents of ``PER_DOCUMENT``: sentences of Zipf-drawn words."""
    rng = np.random.default_rng(paragraphs)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    folder.mkdir(parents=True)
    vocabulary_array = np.array(words)
    for document in range(paragraphs // PER_DOCUMENT):
        drawn = vocabulary_array[rng.choice(len(words), size=(PER_DOCUMENT, WORDS_PER_PARAGRAPH), p=weights)]
        blocks = [" ".join(row[:30]).capitalize() + ". " + " ".join(row[30:]).capitalize() + "." for row in drawn]
        (folder / f"doc-{document:05d}.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def run_worker(checkout: Path, step: str, documents: Path, index: Path, *extra: str) -> dict:
    code = WORKER.replace("TOPICS", str(TOPICS))
    result = subprocess.run(
        [sys.executable, "-c", code, str(checkout), step, str(documents), str(index), *extra],
        capture_output=True,
        text=True,
        cwd=documents.parent,
    )
    if result.returncode:
        raise RuntimeError(f"{step} failed:\n{result.stderr[-3000:]}")
    figures: dict = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            figures.update(json.loads(line))
    return figures


def measure(checkout: Path, size: int, base: Path, words: list[str], pdf: Path, repeat: int) -> dict:
    rng = np.random.default_rng(size + 1)
    questions = [f"What does {' '.join(rng.choice(words[:3000], 3))} mean?" for _ in range(31)]
    documents, index = base / "library", base / "index"
    shutil.rmtree(base, ignore_errors=True)
    generate(documents, size, words)
    figures: dict = {"paragraphs": size, **run_worker(checkout, "build", documents, index)}
    figures["index_mb"] = sum(p.stat().st_size for p in index.rglob("*") if p.is_file()) / 1e6
    second = base / "second"
    shutil.copytree(documents, second / "library", copy_function=shutil.copy)  # a clone: new mtimes
    shutil.copytree(index, second / "index", copy_function=shutil.copy)
    runs = [run_worker(checkout, "first", documents, index, json.dumps(questions)) for _ in range(repeat)]
    figures["cold_start_s"] = [round(run["first_answer_s"], 2) for run in runs]
    figures["import_s"] = [round(run["import_s"], 2) for run in runs]
    figures["index_open_s"] = [round(run["index_open_s"], 2) for run in runs]
    figures["rss_mb"] = round(statistics.median(run["rss_mb"] for run in runs))
    served = run_worker(checkout, "serve", documents, index, json.dumps(questions), str(pdf))
    figures.update(
        {key: served.get(key) for key in ("p50_ms", "retrieve_p50_ms", "check_p50_ms", "add_pdf_s", "remove_s")}
    )
    other = run_worker(checkout, "first", second / "library", second / "index", json.dumps(questions))
    figures["second_checkout_s"], figures["second_checkout_embedded"] = other["first_answer_s"], other["embedded"]
    shutil.rmtree(base, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--baseline-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=2, help="cold starts per size (their spread is the noise)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-library")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_pdf import make_pdf

    words = vocabulary(np.random.default_rng(0))
    args.work.mkdir(parents=True, exist_ok=True)
    pdf = args.work / "report.pdf"
    make_pdf(pdf, 10)
    models = {}
    rows = []
    for name, checkout, sizes in [("store", ROOT, args.sizes), ("json", args.baseline, args.baseline_sizes)]:
        if checkout is None:
            continue
        measure(checkout, PER_DOCUMENT, args.work / f"{name}-warm-up", words, pdf, 1)  # models exported, cached
        tiny = measure(checkout, PER_DOCUMENT, args.work / f"{name}-tiny", words, pdf, 1)
        models[name] = tiny["rss_mb"]
        for size in sizes:
            begun = time.time()
            figures = measure(checkout, size, args.work / f"{name}-{size}", words, pdf, args.repeat)
            figures.update(
                code=name, rss_besides_models_mb=figures["rss_mb"] - models[name], bench_s=time.time() - begun
            )
            print(json.dumps(figures), flush=True)
            rows.append(figures)
    columns = [  # (title, width, how a row shows it)
        ("code", 6, lambda row: row["code"]),
        ("paragraphs", 11, lambda row: f"{row['paragraphs']:,}"),
        ("build s", 9, lambda row: f"{row['build_s']:.0f}"),
        ("cold start s", 14, lambda row: "/".join(f"{s:.1f}" for s in row["cold_start_s"])),
        ("index open s", 14, lambda row: "/".join(f"{s:.2f}" for s in row.get("index_open_s", []))),
        ("RSS-models MB", 15, lambda row: f"{row['rss_besides_models_mb']:,}"),
        ("p50 ms", 8, lambda row: f"{row['p50_ms']:.0f}"),
        ("retrieve ms", 12, lambda row: f"{row['retrieve_p50_ms']:.1f}"),
        ("of it check ms", 15, lambda row: f"{row.get('check_p50_ms') or 0:.1f}"),
        ("add PDF s", 10, lambda row: f"{row['add_pdf_s']:.1f}"),
        ("remove s", 9, lambda row: f"{row['remove_s']:.2f}"),
        ("2nd checkout s", 16, lambda row: f"{row['second_checkout_s']:.1f}"),
        ("re-embedded", 12, lambda row: str(row["second_checkout_embedded"])),
    ]
    print("\n" + "".join(f"{title:>{width}}" for title, width, _ in columns))
    for row in rows:
        print("".join(f"{show(row):>{width}}" for _, width, show in columns))
    print(f"models' resident memory (one-document library): {models}")


if __name__ == "__main__":
    main()
