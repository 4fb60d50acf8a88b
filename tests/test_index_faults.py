"""Index faults done for real: damaged files on disk, a build killed with SIGKILL, two builders at once.

The index folder holds ``store.sqlite`` (the commit point) and the segments it names; every fault here must end
with a loadable, checksum-verified index (rebuilt with a warning when it was damaged).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.search.files import LOCK_NAME
from qa.search.index import SEGMENTS_DIR, IndexDamaged, load_index
from qa.search.segments import SEGMENT_FILES
from qa.search.store import STORE_NAME
from qa.search.sync import open_index

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_DOC = "000_ba938e0baee4174c.txt"


QUESTION = "Where did the meeting take place?"
ANSWER_PARAGRAPH = "The meeting reportedly occurred in Ayn Issa"


def synthetic_document(name: str, paragraphs: int) -> str:
    """A document of distinct, sentence-like paragraphs (kept by the boilerplate filter)."""
    words = "river station harvest council bridge market winter engine harbour garden".split()
    blocks = []
    for i in range(paragraphs):
        picked = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12))
        blocks.append(f"Report {name} {i}: the {picked} was discussed at length by the committee on day {i}.")
    return "\n\n".join(blocks) + "\n"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, embedder) -> tuple[Path, Path]:
    """(documents folder, index folder) with a sound index over the seed document, built once."""
    base = tmp_path_factory.mktemp("pristine")
    documents = base / "docs"
    documents.mkdir()
    shutil.copy(SEEDS / SEED_DOC, documents / SEED_DOC)
    open_index(documents, base / "index", embedder)
    return documents, base / "index"


@pytest.fixture()
def index_copy(pristine, tmp_path) -> Path:
    """A private copy of the pristine index that a test may damage."""
    target = tmp_path / "index"
    shutil.copytree(pristine[1], target)
    return target


def index_files(index_dir: Path) -> list[str]:
    """Every file of the index folder but the lock, relative to it."""
    return sorted(
        path.relative_to(index_dir).as_posix()
        for path in index_dir.rglob("*")
        if path.is_file() and path.name != LOCK_NAME
    )


def assert_sound(index_dir: Path, expected_paragraphs: list) -> None:
    """The index loads, verifies, holds the expected paragraphs and nothing unreferenced is left in the folder."""
    index = load_index(index_dir)
    assert [p.text for p in index.paragraphs()] == [p.text for p in expected_paragraphs]
    referenced = [f"{SEGMENTS_DIR}/{segment.name}/{file}" for segment in index.segments for file in SEGMENT_FILES]
    assert index_files(index_dir) == sorted([STORE_NAME, *referenced])


def assert_search_works(index, embedder) -> None:
    scores, rows = index.search(embedder.encode([QUESTION]), 3)
    found = index.paragraphs_at([int(row) for row in rows[0]])
    assert any(ANSWER_PARAGRAPH in paragraph.text for paragraph in found.values())


def test_sound_index_is_loaded_not_rebuilt(pristine, index_copy, embedder, caplog):
    documents, _ = pristine
    before = {name: (index_copy / name).stat().st_mtime_ns for name in index_files(index_copy)}
    with caplog.at_level(logging.WARNING):
        index = open_index(documents, index_copy, embedder)
    assert not [r for r in caplog.records if r.name.startswith("qa")]
    assert {name: (index_copy / name).stat().st_mtime_ns for name in index_files(index_copy)} == before
    assert_search_works(index, embedder)


def _truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


FILE_FAULTS = {
    "truncated": _truncate_half,
    "emptied": lambda path: path.write_bytes(b""),
    "byte flipped": _flip_middle_byte,
    "garbage": lambda path: path.write_bytes(os.urandom(path.stat().st_size)),
    "deleted": lambda path: path.unlink(),
}


@pytest.mark.parametrize("file", ["vectors.faiss", "rows.npy", "hashes.npy", "docs.npy", "lengths.npy"])
@pytest.mark.parametrize("fault", FILE_FAULTS, ids=list(FILE_FAULTS))
def test_damaged_segment_file_is_detected_and_rebuilt(fault, file, pristine, index_copy, embedder, caplog):
    documents, _ = pristine
    good = load_index(index_copy)
    FILE_FAULTS[fault](index_copy / SEGMENTS_DIR / good.segments[0].name / file)
    with pytest.raises(IndexDamaged):
        load_index(index_copy)
    with caplog.at_level(logging.WARNING):
        index = open_index(documents, index_copy, embedder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("qa")]
    assert len(warnings) == 1 and warnings[0].startswith("Rebuilding the index:")
    assert good.segments[0].name in warnings[0]
    assert_sound(index_copy, good.paragraphs())
    assert_search_works(index, embedder)


def _sql(statement: str):
    def fault(path: Path) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute(statement)

    return fault


STORE_FAULTS = {
    "truncated": _truncate_half,
    "emptied": lambda path: path.write_bytes(b""),
    "garbage": lambda path: path.write_bytes(os.urandom(path.stat().st_size)),
    "deleted": lambda path: path.unlink(),
    "old format": _sql("UPDATE settings SET value = '1' WHERE key = 'format'"),
    "paragraph dropped": _sql("DELETE FROM paragraphs WHERE row = (SELECT max(row) FROM paragraphs)"),
    "segment renamed": _sql("UPDATE segments SET name = 'feedfacefeedface'"),
    "segment checksum wrong": _sql("""UPDATE segments SET files = json_set(files, '$."rows.npy"[1]', '0')"""),
    "segment files forgotten": _sql("UPDATE segments SET files = '{}'"),
}


@pytest.mark.parametrize("fault", STORE_FAULTS, ids=list(STORE_FAULTS))
def test_damaged_store_is_detected_and_rebuilt(fault, pristine, index_copy, embedder, caplog):
    documents, _ = pristine
    expected = load_index(index_copy).paragraphs()
    STORE_FAULTS[fault](index_copy / STORE_NAME)
    if fault != "deleted":
        with pytest.raises(IndexDamaged):
            load_index(index_copy)
    with caplog.at_level(logging.WARNING):
        index = open_index(documents, index_copy, embedder)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("qa")]
    assert len(warnings) == (fault != "deleted") and all(w.startswith("Rebuilding the index:") for w in warnings)
    assert_sound(index_copy, expected)
    assert any("Ayn Issa" in p.text for p in index.paragraphs())
    assert_search_works(index, embedder)


def test_leftovers_of_an_interrupted_build_are_ignored_then_removed(pristine, index_copy, embedder, caplog):
    """What a build killed while writing leaves (a temp store, a half segment, a whole segment the store never
    committed) does not disturb loading, and the next build clears it."""
    documents, _ = pristine
    good = load_index(index_copy)
    segment = index_copy / SEGMENTS_DIR / good.segments[0].name
    (index_copy / ".store-1a2b3c4d.tmp").write_bytes((index_copy / STORE_NAME).read_bytes()[:100])
    shutil.copytree(segment, index_copy / SEGMENTS_DIR / ".0123456789abcdef.tmp")
    shutil.copytree(segment, index_copy / SEGMENTS_DIR / "deadbeefdeadbeef")
    with caplog.at_level(logging.WARNING):
        assert [p.text for p in open_index(documents, index_copy, embedder).paragraphs()] == [
            p.text for p in good.paragraphs()
        ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("qa")]
    assert_sound(index_copy, good.paragraphs())
    documents_changed = index_copy.parent / "docs"
    documents_changed.mkdir()
    shutil.copy(documents / SEED_DOC, documents_changed / SEED_DOC)
    (documents_changed / "extra.txt").write_text(synthetic_document("extra", 3), encoding="utf-8")
    index = open_index(documents_changed, index_copy, embedder)
    assert len(index) == len(good) + 3
    assert_sound(index_copy, index.paragraphs())


def _read_available(stream) -> bytes:
    """Whatever the pipe holds now, without waiting."""
    os.set_blocking(stream.fileno(), False)
    try:
        return stream.read() or b""
    except BlockingIOError:
        return b""


def lock_is_free(index_dir: Path) -> bool:
    with open(index_dir / LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_build_killed_mid_embedding_leaves_previous_index(pristine, index_copy, embedder, tmp_path):
    """``qa index`` over a corpus that takes seconds to embed, SIGKILLed once embedding has started:
    the previous index is still there, verified and loadable, and the lock is free again."""
    documents = tmp_path / "docs"
    shutil.copytree(pristine[0], documents)
    (documents / "big.txt").write_text(synthetic_document("big", 3000), encoding="utf-8")
    before = {name: (index_copy / name).read_bytes() for name in index_files(index_copy)}
    good = load_index(index_copy)

    command = [sys.executable, "-m", "qa.cli", "index", "--documents", str(documents), "--index", str(index_copy)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = b""
        deadline = time.monotonic() + 180
        while b"Batches" not in seen and process.poll() is None and time.monotonic() < deadline:
            seen += _read_available(process.stderr)
            time.sleep(0.05)
        assert b"Batches" in seen, f"embedding never started: {seen.decode(errors='replace')[-2000:]}"
        time.sleep(0.5)  # well inside the embedding of 3000 paragraphs
        assert process.poll() is None, "the build finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()

    assert lock_is_free(index_copy)
    after = {name: (index_copy / name).read_bytes() for name in index_files(index_copy)}
    assert after == before  # killed before writing anything: every byte of the previous index is intact
    assert_sound(index_copy, good.paragraphs())
    assert_search_works(open_index(pristine[0], index_copy, embedder), embedder)


BUILDER = """
import sys
from qa.search.embedder import Embedder
from qa.search.index import load_index
from qa.search.sync import open_index
index_dir, rounds, folders = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
embedder = Embedder()
for round_number in range(rounds):
    folder = folders[round_number % len(folders)]
    built = open_index(folder, index_dir, embedder, force=True)
    assert sorted(built.documents) == sorted(p.name for p in __import__("pathlib").Path(folder).iterdir())
    load_index(index_dir)
print("ok")
"""


def test_two_processes_building_at_once_do_not_corrupt_the_index(tmp_path, embedder):
    """Two processes rebuild the same index folder from different document sets, eight times each, at
    the same time (small sets, so that many writes and commits overlap). The lock serialises them: every
    build in each succeeds and the final index is one of the two, whole and verified, with no stray files."""
    folders = []
    for name in ("alpha", "beta"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.txt").write_text(synthetic_document(name, 12), encoding="utf-8")
        folders.append(folder)
    index_dir = tmp_path / "index"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(index_dir), "8", *map(str, order)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for order in (folders, folders[::-1])
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
        assert out.strip() == "ok"
    index = load_index(index_dir)
    assert list(index.documents) in (["alpha.txt"], ["beta.txt"])
    assert len(index) == 12
    assert_sound(index_dir, index.paragraphs())
