"""Shared fixtures: the real embedder, the real shipped reader, a QA over a private copy of the seeds."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from qa.models import CACHE_ENV, PACKAGED_READER

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data" / "squad"
SEED_DOC = "000_ba938e0baee4174c.txt"


def only_highlight_tags(markdown: str) -> bool:
    """True when the only HTML tags in a rendered answer are the project's own highlights (<mark>, <u>)."""
    return set(re.findall(r"<[^>]*>", markdown)) <= {"<mark>", "</mark>", "<u>", "</u>"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], cwd: Path, port: int) -> subprocess.Popen:
    """Start the chat server ``command`` and wait (up to 180 s) until its page answers on 127.0.0.1:``port``."""
    import httpx

    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    assert process.poll() is None, process.communicate()[1][-3000:]
    return process


def stop_server(process: subprocess.Popen) -> str:
    """Stop a server ``start_server`` started; its standard error."""
    process.terminate()
    try:
        return process.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


def tree_state(folder: Path) -> dict[str, tuple[int, int]] | None:
    """Every file under ``folder`` with its size and modification time (None: no such folder)."""
    if not folder.exists():
        return None
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def checkout_untouched():
    """No test writes the checkout's sample, index or library: each works on its own temporary copy."""
    folders = {name: ROOT / name for name in ("seeds", "index", "library")}
    before = {name: tree_state(folder) for name, folder in folders.items()}
    yield
    changed = [name for name, folder in folders.items() if tree_state(folder) != before[name]]
    assert not changed, f"the test session wrote the checkout's {', '.join(changed)}/"


def has_trained_reader() -> bool:
    return (PACKAGED_READER / "config.json").is_file()


needs_trained_reader = pytest.mark.skipif(not has_trained_reader(), reason="no trained reader shipped yet")
needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data/squad is absent")


@pytest.fixture(scope="session", autouse=True)
def private_model_cache(tmp_path_factory):
    """Exported ONNX graphs go to a cache of the test session (subprocesses inherit it), not ~/.cache."""
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("model-cache"))
    yield Path(os.environ[CACHE_ENV])
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture(scope="session")
def tiny_reader_dir(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT QA model with the real MiniLM tokenizer (exercises code paths only)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from qa.models import default_embedder

    folder = tmp_path_factory.mktemp("tiny-reader")
    tokenizer = AutoTokenizer.from_pretrained(default_embedder())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    with torch.random.fork_rng():  # the same tiny reader every run, the session's random state untouched
        torch.manual_seed(0)
        BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def embedder():
    from qa.search.embedder import Embedder

    return Embedder()


@pytest.fixture()
def seeds_copy(tmp_path) -> Path:
    """A private copy of the seed documents that a test may change."""
    folder = tmp_path / "seeds"
    folder.mkdir()
    shutil.copy(SEEDS / SEED_DOC, folder / SEED_DOC)
    return folder


@pytest.fixture(scope="session")
def seed_qa(tmp_path_factory):
    """The real pipeline (default embedder, shipped reader) over a copy of the seeds, built once."""
    if not has_trained_reader():
        pytest.skip("no trained reader shipped yet")
    from qa import QA

    base = tmp_path_factory.mktemp("seed-qa")
    shutil.copytree(SEEDS, base / "seeds", ignore=shutil.ignore_patterns("*.jsonl"))
    qa = QA(base / "seeds", base / "index")
    qa.index()
    return qa
