"""The product on a real Ray cluster: a head and a second node, each of one CPU, started on this machine with ``ray
start`` (as a user would on two machines) in a private temp dir on free ports, its own processes stopped when the module
ends (never ``ray stop``, which would end every Ray cluster of the host).

Needs the extra: ``pip install -e ".[ray]"``; without it the module is skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from qa import QA
from qa.search.index import load_index
from tests.conftest import SEED_DOC, SEEDS, free_port, needs_trained_reader

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')

from qa.pipeline import QuestionError, Unavailable  # noqa: E402
from qa.serving.cluster import RayEmbedder, ServedQA, deploy, undeploy  # noqa: E402 (after the skip)
from qa.serving.conversion import RayConverter  # noqa: E402
from tests.test_formats import make_pdf  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
MEETING = "Where did the meeting take place?"


def ray_cli(*args: str) -> None:
    done = subprocess.run([RAY, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"ray {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


RUNNING: dict[str, Path] = {}  # "temp_dir": the folder of the cluster the ``cluster`` fixture runs


def node_ports() -> list[str]:
    """Free ports for every server a node starts (Ray's fixed defaults, such as 10001 for the client server and
    52365 for the dashboard agent, would collide with another test session's cluster on this host)."""
    names = ["node-manager", "object-manager", "dashboard-agent-grpc", "dashboard-agent-listen", "runtime-env-agent"]
    return [f"--{name}-port={free_port()}" for name in [*names, "metrics-export"]]


def cluster_processes(temp_dir: Path) -> set[int]:
    """The processes of the cluster whose files are under ``temp_dir``: those naming it on their command line
    (GCS, raylets, agents, monitors), and everything they started (the workers)."""
    parents, named = {}, set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if str(temp_dir).encode() in (entry / "cmdline").read_bytes():
                named.add(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    found = set(named)
    while True:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        if not children:
            return found
        found |= children


def stop_cluster(temp_dir: Path) -> None:
    """Stop this cluster's processes only (``ray stop`` would stop every Ray process on the host)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in cluster_processes(temp_dir):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 15
        while cluster_processes(temp_dir) and time.time() < deadline:
            time.sleep(0.2)
        if not cluster_processes(temp_dir):
            return


@pytest.fixture(scope="module")
def cluster():
    """The address of a two-node cluster (1 CPU each): two 1-CPU actors need both nodes. Both nodes are told to use the
    loopback address (Ray still listens on all interfaces: docs/cluster.md), and token authentication is off (no
    ~/.ray/auth_token of an earlier cluster gets in the way; this process reads the mode once, when ray is imported).
    The cluster keeps its files in a private temp dir (short: Ray's socket paths must stay under 108 characters) and
    every port it opens is free when chosen, so two test sessions on one host run side by side; teardown stops its
    processes only."""
    temp_dir = RUNNING["temp_dir"] = Path(tempfile.mkdtemp(prefix="qa-ray-", dir="/tmp"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    settings = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # for the ray CLI and every process Ray starts
    local = ["--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}"]
    try:
        head = [f"--port={port}", f"--ray-client-server-port={free_port()}", "--include-dashboard=false"]
        ray_cli("start", "--head", *head, *local, *node_ports())
        ray_cli("start", f"--address={address}", *local, *node_ports())
        ray.init(address=address, logging_level="WARNING")
        deadline = time.time() + 60
        while len([node for node in ray.nodes() if node["Alive"]]) < 2:
            assert time.time() < deadline, "the second node did not join"
            time.sleep(0.5)
        assert ray.cluster_resources()["CPU"] == 2
        yield address
    finally:
        ray.shutdown()
        stop_cluster(temp_dir)
        for _ in range(10):  # a dying process may still write a file while the folder is removed
            shutil.rmtree(temp_dir, ignore_errors=True)
            if not temp_dir.exists():
                break
            time.sleep(0.5)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def serve_port(cluster) -> int:
    """The HTTP port of the cluster's Serve: it keeps the one it started with."""
    return free_port()


def corpus(folder: Path, paragraphs: int) -> Path:
    """The seed article plus a synthetic document of ``paragraphs`` distinct paragraphs."""
    folder.mkdir()
    shutil.copy(SEEDS / SEED_DOC, folder / SEED_DOC)
    rivers = ["Rhine", "Danube", "Euphrates", "Tigris", "Nile", "Amazon", "Volga"]
    lines = [
        f"Report {i}: the {rivers[i % 7]} rose {i % 41} centimetres near bridge {i * 7}, and {i % 13} ferries "
        f"stopped while the council of district {i % 29} met to discuss the levees and the harvest."
        for i in range(paragraphs)
    ]
    (folder / "synthetic.txt").write_text("\n\n".join(lines), encoding="utf-8")
    return folder


def assert_same_index(left: Path, right: Path) -> None:
    """Same paragraphs, same documents and embedder, vectors equal within float tolerance."""
    a, b = load_index(left), load_index(right)
    assert a.paragraphs() == b.paragraphs()
    assert (a.documents, a.embedder_identity) == (b.documents, b.embedder_identity)
    vectors_a, vectors_b = vectors_by_text(a), vectors_by_text(b)
    assert vectors_a.keys() == vectors_b.keys()
    for text, vector in vectors_a.items():
        np.testing.assert_allclose(vector, vectors_b[text], atol=1e-5)


def vectors_by_text(index) -> dict:
    """Paragraph text -> its stored vector."""
    rows, vectors = index.stored_vectors()
    paragraphs = index.paragraphs_at([int(row) for row in rows])
    return {paragraphs[int(row)].text: vector for row, vector in zip(rows, vectors)}


def named_processes(prefix: str) -> list[int]:
    """PIDs of this test cluster's processes whose name starts with ``prefix`` (Ray names a worker process after
    its actor); another session's cluster on the host is left out."""
    pids = []
    for pid in cluster_processes(RUNNING["temp_dir"]):
        try:
            if (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").startswith(prefix):
                pids.append(pid)
        except OSError:
            continue
    return pids


def embedding_workers() -> list[int]:
    """PIDs of the Ray Data actors embedding right now."""
    return named_processes("ray::MapWorker(MapBatches(EmbedBatches))")


def test_index_through_the_cluster_equals_the_single_process_index(cluster, tmp_path):
    documents = corpus(tmp_path / "docs", 300)
    QA(documents, tmp_path / "local").index()
    ray_embedder = RayEmbedder(workers=2)
    built = QA(documents, tmp_path / "cluster", bulk_encoder=ray_embedder).index()
    assert len(built) == 314  # the seed article's 14 and the 300 synthetic ones
    assert_same_index(tmp_path / "cluster", tmp_path / "local")
    # unchanged paragraphs keep their vectors: adding a document embeds only its paragraphs
    (documents / "more.txt").write_text("The ferry service resumed on Tuesday.\n\nThe levees held.", encoding="utf-8")
    QA(documents, tmp_path / "local").index()
    QA(documents, tmp_path / "cluster", bulk_encoder=ray_embedder).index()
    assert_same_index(tmp_path / "cluster", tmp_path / "local")


def test_documents_are_converted_in_ray_tasks_not_in_the_driver(cluster, tmp_path, monkeypatch, caplog):
    """With ``RayConverter`` the driver only reads bytes and assembles: conversion fails in the driver here, and
    the index still equals the one built in one process, PDF pages and an unreadable file's warning included."""
    documents = corpus(tmp_path / "docs", 20)
    (documents / "report.pdf").write_bytes(make_pdf([["Page one of the report."], ["The levees held on page two."]]))
    (documents / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    local = QA(documents, tmp_path / "local").index()

    def not_here(*args):
        raise AssertionError("a document was converted in the driver")

    monkeypatch.setattr("qa.documents.paragraphs.convert", not_here)
    with caplog.at_level(logging.WARNING):
        built = QA(documents, tmp_path / "cluster", bulk_converter=RayConverter()).index()
    assert built.paragraphs() == local.paragraphs() and len(built) == 14 + 20 + 2
    assert {info.name: info.pages for info in built.infos()}["report.pdf"] == 2
    assert "Skipping broken.pdf: " in caplog.text


def test_a_killed_worker_is_retried_and_the_index_ends_complete(cluster, tmp_path):
    documents = corpus(tmp_path / "docs", 2500)
    stale = set(embedding_workers())  # actors of the previous test's builds may still be shutting down
    killed, running = [], threading.Event()

    def kill_one_worker():
        first_seen: dict[int, float] = {}
        while running.is_set() and not killed:
            for pid in set(embedding_workers()) - stale:
                if time.time() - first_seen.setdefault(pid, time.time()) < 3:
                    continue  # give it time to load the model and take a batch
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
                except ProcessLookupError:  # it ended on its own meanwhile
                    stale.add(pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    running.set()
    killer.start()
    QA(documents, tmp_path / "cluster", bulk_encoder=RayEmbedder(workers=2)).index()
    running.clear()
    killer.join(timeout=5)
    assert killed, "no worker was killed while the index was being built"
    QA(documents, tmp_path / "local").index()
    assert_same_index(tmp_path / "cluster", tmp_path / "local")


def test_index_command_takes_the_cluster(cluster, tmp_path, capsys):
    from qa.cli import main

    documents = corpus(tmp_path / "docs", 20)
    assert main(["index", "--documents", str(documents), "--index", str(tmp_path / "index"), "--ray", cluster]) == 0
    assert "34 paragraphs from 2 documents indexed" in capsys.readouterr().out
    assert main(["index", "--documents", str(documents), "--index", str(tmp_path / "index"), "--ray", "--workers=0"])
    assert "workers must be at least 1" in capsys.readouterr().err


@needs_trained_reader
def test_serve_answers_over_http_and_through_the_chat_page(serve_port, seeds_copy, tmp_path):
    from gradio_client import Client

    from qa.conversation.chat import render_markdown
    from qa.serving.web import build_app, launch_options

    options = {"documents_dir": str(seeds_copy), "index_dir": str(tmp_path / "index")}
    QA(**options).index()
    port = serve_port
    handle = deploy(options, replicas=2, port=port)
    app = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            with ThreadPoolExecutor(6) as pool:  # more at once than replicas: Serve queues them
                replies = list(pool.map(lambda _: http.post("/answer", json={"question": MEETING}), range(6)))
            assert [reply.status_code for reply in replies] == [200] * 6
            record = replies[0].json()
            assert record["answer"] == "Ayn Issa" and record["found"]
            citation = record["citations"][0]
            assert citation["passage"][citation["start"] : citation["end"]] == "Ayn Issa"
            assert citation["source"] == SEED_DOC
            follow_up = http.post(
                "/answer", json={"question": "And when?", "history": [[MEETING, "Ayn Issa"]], "top_k": 3}
            )
            assert follow_up.status_code == 200 and follow_up.json()["question"] == "And when?"
            declined = http.post("/answer", json={"question": "Who won the football world cup in 1998?"}).json()
            assert declined["answer"] == "" and not declined["found"]
            assert http.post("/answer", json={"question": "   "}).json() == {"error": "Please type a question."}
            assert http.post("/answer", content=b"not json").status_code == 400
            assert http.post("/answer", json={"question": MEETING, "top_k": 0}).status_code == 400
            assert http.get("/answer").status_code == 405
            assert http.post("/elsewhere", json={"question": MEETING}).status_code == 404

        served = ServedQA(handle, **options)
        assert served.answer(MEETING).text == "Ayn Issa"
        with pytest.raises(QuestionError, match="Please type a question"):
            served.answer("   ")
        app = build_app(served)
        app.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", free_port()))
        chat = Client(app.local_url, verbose=False).predict(MEETING, api_name="/chat")
        assert chat == render_markdown(served.answer(MEETING)) and "<mark>Ayn Issa</mark>" in chat
    finally:
        if app is not None:
            app.close()
        undeploy()


@needs_trained_reader
def test_serve_refuses_beyond_its_queue(serve_port, seeds_copy, tmp_path):
    options = {"documents_dir": str(seeds_copy), "index_dir": str(tmp_path / "index")}
    QA(**options).index()
    port = serve_port
    served = ServedQA(deploy(options, replicas=1, port=port, max_queued=1), **options)
    with pytest.raises(RuntimeError, match=f"already runs on this cluster with its HTTP endpoint at 127.0.0.1:{port}"):
        deploy(options, replicas=1, port=free_port())
    try:
        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(lambda _: outcome(served), range(12)))
        assert "Ayn Issa" in outcomes and "busy" in outcomes, outcomes
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http, ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda _: http.post("/answer", json={"question": MEETING}).status_code, range(12)))
        assert 200 in codes and 503 in codes, codes
    finally:
        undeploy()


def outcome(served: ServedQA) -> str:
    try:
        return served.answer(MEETING).text
    except Unavailable:
        return "busy"


@needs_trained_reader
def test_serve_command_with_ray(cluster, serve_port, seeds_copy, tmp_path):
    """``qa serve --ray --auth``: the page and ``POST /answer`` answer behind the same login; Ctrl-C removes the
    deployment."""
    page_port = free_port()
    command = [sys.executable, "-m", "qa.cli", "serve", "--ray", cluster, "--replicas", "1", "--auth", "ann:s3cret"]
    command += ["--documents", str(seeds_copy), "--index", str(tmp_path / "index")]
    command += ["--port", str(page_port), "--api-port", str(serve_port)]
    log = tmp_path / "serve.log"
    with open(log, "w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{page_port}/config", timeout=5).status_code == 401:  # up, login
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        api = f"http://127.0.0.1:{serve_port}/answer"
        refused = httpx.post(api, json={"question": MEETING}, timeout=120)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        wrong = httpx.post(api, json={"question": MEETING}, auth=("ann", "guess"), timeout=120)
        assert wrong.status_code == 401 and "Ayn Issa" not in wrong.text
        reply = httpx.post(api, json={"question": MEETING}, auth=("ann", "s3cret"), timeout=120)
        assert reply.json()["answer"] == "Ayn Issa"
        page = httpx.post(f"http://127.0.0.1:{page_port}/gradio_api/call/chat", json={"data": [MEETING]}, timeout=30)
        assert page.status_code == 401  # the page asks the same login
        assert f"JSON answers at http://127.0.0.1:{serve_port}/answer" in log.read_text()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    from ray import serve

    assert "qa" not in serve.status().applications  # undeployed on the way out


@needs_trained_reader
def test_indexing_shares_the_cluster_with_serving_replicas(serve_port, seeds_copy, tmp_path):
    """Replicas hold CPUs: indexing takes the free ones, and gives up with a message instead of waiting forever."""
    options = {"documents_dir": str(seeds_copy), "index_dir": str(tmp_path / "index")}
    QA(**options).index()
    documents = corpus(tmp_path / "docs", 40)
    deploy(options, replicas=1, port=serve_port)  # one of the two CPUs
    try:
        shared = RayEmbedder()
        assert shared.workers == 1 and "1 of 2 CPUs free" in shared.plan
        QA(documents, tmp_path / "cluster", bulk_encoder=shared).index()
        QA(documents, tmp_path / "local").index()
        assert_same_index(tmp_path / "cluster", tmp_path / "local")
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="need 2 free CPUs; the Ray cluster had 1 free for 10 s"):
            RayEmbedder(workers=2, wait_s=10).encode(["The levees held."])
        assert time.monotonic() - started < 60
        deploy(options, replicas=2, port=serve_port)  # now every CPU
        with pytest.raises(RuntimeError, match="All 2 CPUs of the Ray cluster are in use"):
            RayEmbedder()
    finally:
        undeploy()


@needs_trained_reader
def test_replicas_answer_from_the_published_index_and_follow_a_document_added(serve_port, seeds_copy, tmp_path):
    """The replicas' folders do not exist (as on a node without the documents): they answer from the index the
    serving process published, never scan a folder per question, and pick up a document ``qa add`` adds."""
    from qa.cli import main
    from qa.serving.publish import follow

    source = QA(seeds_copy, tmp_path / "index")
    absent = {"documents_dir": str(tmp_path / "not-on-this-node"), "index_dir": str(tmp_path / "nor-this")}
    deploy(absent, replicas=2, port=serve_port, source=source)
    stop = threading.Event()
    follow(source, stop)
    question = "Where did the falcon project start?"

    def answers(asked: str) -> list[str]:
        with httpx.Client(timeout=120) as http, ThreadPoolExecutor(4) as pool:  # more at once than replicas
            url = f"http://127.0.0.1:{serve_port}/answer"
            return [r.json()["answer"] for r in pool.map(lambda _: http.post(url, json={"question": asked}), range(4))]

    try:
        assert answers(MEETING) == ["Ayn Issa"] * 4
        note = tmp_path / "falcon.md"
        note.write_text("# Falcon\n\nThe falcon project started in Lyon in 2019 with three engineers.\n")
        assert main(["add", str(note), "--documents", str(seeds_copy), "--index", str(tmp_path / "index")]) == 0
        added, rounds_right = time.monotonic(), 0
        while rounds_right < 3:  # every replica, several times over
            assert time.monotonic() - added < 30, answers(question)
            rounds_right = rounds_right + 1 if all("Lyon" in answer for answer in answers(question)) else 0
        print(f"a document added reached every replica within {time.monotonic() - added:.1f} s")
        assert not (tmp_path / "not-on-this-node").exists() and not (tmp_path / "nor-this").exists()
    finally:
        stop.set()
        undeploy()


def serve_replicas() -> list[int]:
    """PIDs of the answering replicas running now."""
    return named_processes("ray::ServeReplica:qa:AnswerService")


def replaced(killed: int) -> bool:
    """Two replicas run again, the killed one not among them, and the application is back to RUNNING."""
    from ray import serve

    running = serve_replicas()
    return len(running) == 2 and killed not in running and serve.status().applications["qa"].status == "RUNNING"


@needs_trained_reader
def test_a_replica_killed_under_load_fails_cleanly_and_comes_back(serve_port, seeds_copy, tmp_path):
    """Questions keep coming while one of two replicas is killed: each gets an answer or a clean HTTP error (never a
    hang), and Serve starts a replacement that answers from the published index."""
    options = {"documents_dir": str(seeds_copy), "index_dir": str(tmp_path / "index")}
    deploy(options, replicas=2, port=serve_port)
    codes: list[int] = []
    running = threading.Event()
    running.set()

    def ask_until_stopped() -> None:
        with httpx.Client(timeout=60) as http:
            while running.is_set():
                codes.append(http.post(f"http://127.0.0.1:{serve_port}/answer", json={"question": MEETING}).status_code)

    try:
        before = serve_replicas()
        assert len(before) == 2
        with ThreadPoolExecutor(3) as pool:
            askers = [pool.submit(ask_until_stopped) for _ in range(3)]
            time.sleep(3)
            os.kill(before[0], signal.SIGKILL)
            killed = time.time()
            deadline = killed + 90
            while not replaced(before[0]):
                assert time.time() < deadline, "no replacement replica within 90 s"
                time.sleep(1)
            back = time.time() - killed
            time.sleep(3)
            running.clear()
            for asker in askers:
                asker.result(timeout=120)  # no request hung
        print(f"replica killed: {len(codes) - codes.count(200)} of {len(codes)} questions failed, back in {back:.0f} s")
        assert set(codes) <= {200, 500, 502, 503}, codes
        assert codes.count(200) >= len(codes) - 3, codes  # at most the questions in flight on the killed replica
        with httpx.Client(timeout=60) as http:
            replies = [http.post(f"http://127.0.0.1:{serve_port}/answer", json={"question": MEETING}) for _ in range(4)]
        assert [reply.json()["answer"] for reply in replies] == ["Ayn Issa"] * 4
    finally:
        running.clear()
        undeploy()
