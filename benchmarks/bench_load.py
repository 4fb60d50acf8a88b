"""Load test of the chat server: many concurrent clients, every answer checked.

Starts the real server (``qa.serving.web.serve`` in a subprocess, on 127.0.0.1 and a free port), then drives it
with ``gradio_client`` from ``--clients`` threads that each ask ``--questions`` questions from
``seeds/questions.jsonl`` (each in a fresh session, so no question is taken as a follow-up). Every reply
must equal the reply for the same question computed here, single-threaded, with ``QA.answer``; any
exception or difference is counted. Prints latency percentiles and throughput as a table, then one JSON
object with the figures on the last line. Exits 1 when any request failed or differed.

    python benchmarks/bench_load.py                                   # 20 clients x 50 questions
    python benchmarks/bench_load.py --clients 4 --questions 5 --reader runs/reader-a
    python benchmarks/bench_load.py --concurrency 1                   # compare queue settings
    python benchmarks/bench_load.py --ray-replicas 2                  # qa serve --ray: 2 Serve replicas

Loopback only; every wait is bounded (``--timeout`` for start-up, ``--request-timeout`` per request).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SERVER = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
from qa.pipeline import QA
from qa.serving.web import serve
c = json.loads(sys.argv[1])
options = {"documents_dir": c["documents"], "index_dir": c["index"], "reader": c["reader"]}
qa = QA(**options)
if c["ray_replicas"]:  # as qa serve --ray: a private Ray on this machine, answers from Serve replicas
    from qa.serving.cluster import ServedQA, deploy
    qa.index()
    qa = ServedQA(deploy(options, replicas=c["ray_replicas"], port=c["api_port"]), **options)
serve(qa, host="127.0.0.1", port=c["port"], concurrency=c["concurrency"], max_queue=c["max_queue"])
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from qa.serving.web import CONCURRENCY, MAX_QUEUE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--questions", type=int, default=50, help="questions per client (default: %(default)s)")
    parser.add_argument("--reader", help="reader model folder or hub id (default: the shipped reader)")
    parser.add_argument("--documents", default=str(ROOT / "seeds"), help="documents folder (default: seeds/)")
    parser.add_argument("--questions-file", default=str(ROOT / "seeds" / "questions.jsonl"))
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="server concurrency (%(default)s)")
    parser.add_argument("--max-queue", type=int, default=MAX_QUEUE, help="server queue size (%(default)s)")
    parser.add_argument("--ray-replicas", type=int, default=0, help="answer with N Ray Serve replicas (qa serve --ray)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the server to start")
    parser.add_argument("--request-timeout", type=float, default=300, help="seconds to wait for one reply")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load_questions(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def start_server(args: argparse.Namespace, index_dir: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = {
        "documents": args.documents,
        "index": index_dir,
        "reader": args.reader,
        "port": port,
        "concurrency": args.concurrency,
        "max_queue": args.max_queue,
        "ray_replicas": args.ray_replicas,
        "api_port": free_port(),
    }
    log = open(log_path, "w")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, json.dumps(config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/config", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise RuntimeError(f"the server did not start within {args.timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def reference_replies(args: argparse.Namespace, index_dir: str, questions: list[str]) -> tuple[dict, list[float]]:
    """The reply for each question from ``QA.answer`` in this process, one question at a time."""
    from qa.conversation.chat import render_markdown
    from qa.pipeline import QA

    qa = QA(args.documents, index_dir, reader=args.reader)
    qa.index()
    replies, seconds = {}, []
    for question in dict.fromkeys(questions):
        started = time.perf_counter()
        replies[question] = render_markdown(qa.answer(question))
        seconds.append(time.perf_counter() - started)
    return replies, seconds


def drive(url: str, args: argparse.Namespace, questions: list[str], expected: dict) -> dict:
    """``args.clients`` threads, each with its own client, ask ``args.questions`` questions each."""
    from gradio_client import Client

    start = threading.Barrier(args.clients)
    results = []  # (latency seconds, error or None, matches)
    lock = threading.Lock()

    def client_run(number: int) -> None:
        client = Client(url + "/", verbose=False, download_files=False)
        start.wait(timeout=args.timeout)
        for i in range(args.questions):
            question = questions[(number * args.questions + i) % len(questions)]
            client.reset_session()  # a new conversation: the reply must not depend on earlier turns
            began = time.perf_counter()
            try:
                reply = client.submit(question, api_name="/chat").result(timeout=args.request_timeout)
                outcome = (time.perf_counter() - began, None, reply == expected[question])
            except Exception as error:  # counted and reported, never fatal to the run
                outcome = (time.perf_counter() - began, f"{type(error).__name__}: {error}", False)
            with lock:
                results.append(outcome)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        for future in [pool.submit(client_run, number) for number in range(args.clients)]:
            future.result()
    wall = time.perf_counter() - began
    latencies = np.array([latency for latency, error, _ in results if error is None])
    errors = [error for _, error, _ in results if error is not None]
    return {
        "requests": len(results),
        "errors": len(errors),
        "mismatches": sum(1 for _, error, same in results if error is None and not same),
        "first_error": errors[0] if errors else None,
        "p50_s": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "p95_s": float(np.percentile(latencies, 95)) if len(latencies) else None,
        "p99_s": float(np.percentile(latencies, 99)) if len(latencies) else None,
        "max_s": float(latencies.max()) if len(latencies) else None,
        "mean_s": float(latencies.mean()) if len(latencies) else None,
        "wall_s": wall,
        "throughput_rps": len(latencies) / wall if wall else None,
    }


def format_table(figures: dict) -> str:
    rows = [
        ("clients x questions", f"{figures['clients']} x {figures['questions_per_client']}"),
        ("server concurrency / queue", f"{figures['concurrency']} / {figures['max_queue']}"),
        ("Ray Serve replicas", figures["ray_replicas"] or "- (in process)"),
        ("requests", figures["requests"]),
        ("errors", figures["errors"]),
        ("answers differing", figures["mismatches"]),
        ("latency p50 (s)", figures["p50_s"]),
        ("latency p95 (s)", figures["p95_s"]),
        ("latency p99 (s)", figures["p99_s"]),
        ("latency max (s)", figures["max_s"]),
        ("throughput (req/s)", figures["throughput_rps"]),
        ("wall (s)", figures["wall_s"]),
        ("single-thread mean (s)", figures["single_thread_mean_s"]),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'figure':<{width}} | value", f"{'-' * width}-|-{'-' * 12}"]
    for name, value in rows:
        shown = f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"{name:<{width}} | {shown}")
    return "\n".join(lines)


def run_load(args: argparse.Namespace) -> dict:
    """Start the server, drive it, stop it: the figures (``server_log``: the end of its log on failure)."""
    if args.clients < 1 or args.questions < 1:
        raise SystemExit("--clients and --questions must be at least 1")
    questions = load_questions(args.questions_file)
    asked = [questions[n % len(questions)] for n in range(args.clients * args.questions)]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        index_dir = str(Path(scratch) / "index")
        process, url = start_server(args, index_dir, Path(scratch) / "server.log")
        try:
            expected, single = reference_replies(args, index_dir, asked)
            figures = drive(url, args, questions, expected)
        finally:
            stop_server(process)
        server_log = (Path(scratch) / "server.log").read_text(errors="replace")
    failed = figures["errors"] or figures["mismatches"]
    return {
        "clients": args.clients,
        "questions_per_client": args.questions,
        "concurrency": args.concurrency,
        "max_queue": args.max_queue,
        "ray_replicas": args.ray_replicas,
        "reader": args.reader or "shipped",
        "cpus": os.cpu_count(),
        **figures,
        "single_thread_mean_s": float(np.mean(single)),
        "server_log": server_log[-3000:] if failed else None,
    }


def main(argv: list[str] | None = None) -> int:
    figures = run_load(parse_args(argv))
    print(format_table(figures))
    if figures["first_error"]:
        print(f"first error: {figures['first_error']}")
    if figures["server_log"]:
        print("server log (end):\n" + figures["server_log"])
    print(json.dumps(figures))
    return 0 if figures["errors"] == 0 and figures["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
