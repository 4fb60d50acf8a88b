import logging
import os
import shutil
import sqlite3

import numpy as np
import pytest

from qa.search.embedder import Embedder
from qa.search.index import SEGMENTS_DIR, IndexDamaged, load_index
from qa.search.store import STORE_NAME
from qa.search.sync import MAX_SEGMENTS, open_index
from tests.conftest import ROOT, SEED_DOC

LEGACY = ROOT / "tests" / "data" / "legacy-index"  # written by the format-2 release (one meta.json, one vectors file)


class CountingEncoder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder):
        self.embedder, self.embedded = embedder, 0
        self.name, self.identity, self.dimension = embedder.name, embedder.identity, embedder.dimension

    def encode(self, texts, progress=False):
        self.embedded += len(texts)
        return self.embedder.encode(texts, progress=progress)


def segment_files(index_dir):
    return {
        path.relative_to(index_dir).as_posix(): path.stat().st_mtime_ns
        for path in (index_dir / SEGMENTS_DIR).rglob("*")
    }


def test_build_then_open_uses_the_same_index(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    built = open_index(seeds_copy, index_dir, embedder)
    assert sorted(path.name for path in index_dir.iterdir()) == [".lock", SEGMENTS_DIR, STORE_NAME]
    assert list(built.documents) == [SEED_DOC] and len(built) == 14 and built.kind == "1 segment (exact)"
    files = segment_files(index_dir)
    loaded = open_index(seeds_copy, index_dir, embedder)
    assert segment_files(index_dir) == files and loaded.version == built.version  # nothing written again
    assert loaded.paragraphs() == built.paragraphs()
    # vectors are normalised: the inner product of a paragraph with itself is 1
    third = built.paragraphs()[2]
    scores, rows = loaded.search(embedder.encode([third.text]), 1)
    assert loaded.paragraphs_at([int(rows[0][0])])[int(rows[0][0])] == third
    assert scores[0][0] == pytest.approx(1.0, abs=1e-4)


def test_adding_a_document_costs_that_document(seeds_copy, tmp_path, embedder):
    """A new document is embedded and written alone, in a segment of its own; the other documents' files are
    neither rewritten nor read again (a file whose size and mtime are unchanged is not converted)."""
    index_dir = tmp_path / "index"
    open_index(seeds_copy, index_dir, embedder)
    files = segment_files(index_dir)
    seed = seeds_copy / SEED_DOC
    stat = seed.stat()
    seed.write_bytes(b"X" * stat.st_size)  # same size and mtime: taken as unchanged, never read
    os.utime(seed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (seeds_copy / "extra.md").write_text("The blue whale is the largest animal ever known to have lived.\n")
    counting = CountingEncoder(embedder)
    index = open_index(seeds_copy, index_dir, counting)
    assert counting.embedded == 1 and len(index) == 15 and set(index.documents) == {SEED_DOC, "extra.md"}
    assert files.items() <= segment_files(index_dir).items() and len(index.segments) == 2
    (seeds_copy / "extra.md").unlink()
    index = open_index(seeds_copy, index_dir, counting)
    assert len(index) == 14 and list(index.documents) == [SEED_DOC] and counting.embedded == 1
    assert segment_files(index_dir) == files  # the removed document's segment is gone, the other untouched


def test_a_replaced_document_embeds_only_its_changed_paragraphs(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    first = open_index(seeds_copy, index_dir, embedder)
    seed = seeds_copy / SEED_DOC
    seed.write_text(seed.read_text() + "\n\nA new closing paragraph about the meeting, added later.\n")
    counting = CountingEncoder(embedder)
    second = open_index(seeds_copy, index_dir, counting)
    assert counting.embedded == 1 and len(second) == 15
    for paragraph in first.paragraphs():
        _, rows = second.search(embedder.encode([paragraph.text]), 1)
        assert second.paragraphs_at([int(rows[0][0])])[int(rows[0][0])].text == paragraph.text


def test_a_touched_but_unchanged_file_is_not_converted_again(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    built = open_index(seeds_copy, index_dir, embedder)
    os.utime(seeds_copy / SEED_DOC)  # a new mtime, the same bytes
    counting = CountingEncoder(embedder)
    index = open_index(seeds_copy, index_dir, counting)
    assert counting.embedded == 0 and len(index.segments) == 1 and index.paragraphs() == built.paragraphs()


def test_embedder_change_is_detected(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    open_index(seeds_copy, index_dir, embedder)
    with sqlite3.connect(index_dir / STORE_NAME) as connection:  # as if another model had embedded it
        connection.execute("UPDATE settings SET value = ? WHERE key = 'embedder_identity'", ("sha256:" + "0" * 64,))
    counting = CountingEncoder(embedder)
    index = open_index(seeds_copy, index_dir, counting)
    assert index.embedder_identity == embedder.identity and counting.embedded == 14


def test_an_index_travels_to_another_checkout_and_environment_without_embedding_again(seeds_copy, tmp_path, embedder):
    built = open_index(seeds_copy, tmp_path / "index", embedder)
    assert built.embedder_identity.startswith("sha256:")
    assert "site-packages" not in str(built.settings) and str(tmp_path) not in str(built.settings)  # no path
    # another checkout (documents and index copied elsewhere) in another virtual environment (the same model's
    # files at another path, as another venv's site-packages holds them)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(seeds_copy, elsewhere / "library")  # new mtimes: each file is hashed, none converted again
    shutil.copytree(tmp_path / "index", elsewhere / "index")
    shutil.copytree(embedder.name, elsewhere / "venv" / "model")
    moved = CountingEncoder(Embedder(str(elsewhere / "venv" / "model")))
    assert moved.name != embedder.name and moved.identity == embedder.identity
    opened = open_index(elsewhere / "library", elsewhere / "index", moved)
    assert moved.embedded == 0
    assert [segment.name for segment in opened.segments] == [segment.name for segment in built.segments]
    assert opened.paragraphs() == built.paragraphs()


def test_an_index_of_the_previous_format_is_converted_without_embedding_again(seeds_copy, tmp_path, embedder, caplog):
    index_dir = tmp_path / "index"
    shutil.copytree(LEGACY, index_dir)
    counting = CountingEncoder(embedder)
    with caplog.at_level(logging.WARNING):
        index = open_index(seeds_copy, index_dir, counting)
    assert "Converting the index" in caplog.text and "14 stored vectors kept" in caplog.text
    assert counting.embedded == 0 and len(index) == 14
    assert sorted(path.name for path in index_dir.iterdir()) == [".lock", SEGMENTS_DIR, STORE_NAME]
    meeting = next(p for p in index.paragraphs() if "Ayn Issa" in p.text)
    _, rows = index.search(embedder.encode(["Where did the meeting take place?"]), 1)
    assert index.paragraphs_at([int(rows[0][0])])[int(rows[0][0])] == meeting


def test_damaged_segment_is_detected_and_rebuilt(seeds_copy, tmp_path, embedder, caplog):
    index_dir = tmp_path / "index"
    index = open_index(seeds_copy, index_dir, embedder)
    vectors = index_dir / SEGMENTS_DIR / index.segments[0].name / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:100])
    with pytest.raises(IndexDamaged, match="checksum"):
        load_index(index_dir)
    with caplog.at_level(logging.WARNING):
        assert len(open_index(seeds_copy, index_dir, embedder)) == 14
    assert "Rebuilding the index" in caplog.text and "vectors.faiss" in caplog.text


def test_many_small_additions_are_merged_and_stay_searchable(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    index = open_index(seeds_copy, index_dir, embedder)
    for number in range(MAX_SEGMENTS + 2):
        (seeds_copy / f"note{number}.txt").write_text(
            f"Note {number}: the quarterly harvest count was {number}00 tonnes."
        )
        index = open_index(seeds_copy, index_dir, embedder, previous=index)
        assert len(index.segments) <= MAX_SEGMENTS
    (seeds_copy / "note3.txt").unlink()
    index = open_index(seeds_copy, index_dir, embedder, previous=index)
    assert len(index) == 14 + MAX_SEGMENTS + 1 and len(list((index_dir / SEGMENTS_DIR).iterdir())) == len(
        index.segments
    )
    for number in (0, 5, MAX_SEGMENTS + 1):
        text = f"Note {number}: the quarterly harvest count was {number}00 tonnes."
        _, rows = index.search(embedder.encode([text]), 1)
        assert index.paragraphs_at([int(rows[0][0])])[int(rows[0][0])].text == text
        assert next(iter(index.lexical(f"{number}00 tonnes", 3))) == int(rows[0][0])
    assert not any("Note 3:" in p.text for p in index.paragraphs())
    assert np.isin(index.rows(), [row for segment in index.segments for row in segment.rows]).all()


def test_documents_are_listed_from_the_store(seeds_copy, tmp_path, embedder):
    index = open_index(seeds_copy, tmp_path / "index", embedder)
    [info] = index.infos()
    assert (info.name, info.kind, info.paragraphs, info.bytes) == (
        SEED_DOC,
        "text",
        14,
        (seeds_copy / SEED_DOC).stat().st_size,
    )


def test_missing_documents_folder_is_a_clear_error(tmp_path, embedder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_index(tmp_path / "nowhere", tmp_path / "index", embedder)


def test_an_index_opens_read_only_from_shared_storage(seeds_copy, tmp_path, embedder):
    """``load_index`` (what a replica or worker on another machine uses on a shared mount) writes nothing, not even
    a lock or a journal, and answers searches."""
    shared = tmp_path / "shared-index"
    open_index(seeds_copy, shared, embedder)
    (shared / ".lock").unlink()
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in shared.rglob("*") if path.is_file()}
    index = load_index(shared)
    scores, rows = index.search(embedder.encode(["Where did the meeting take place?"]), 3)
    assert "Ayn Issa" in index.paragraphs_at([int(rows[0][0])])[int(rows[0][0])].text
    assert next(iter(index.lexical("Ayn Issa", 3))) == int(rows[0][0])
    assert {
        path: (path.stat().st_mtime_ns, path.read_bytes()) for path in shared.rglob("*") if path.is_file()
    } == before
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        index.store.query("DELETE FROM paragraphs")


def test_a_lone_surrogate_from_a_converter_does_not_stop_indexing(seeds_copy, tmp_path, embedder, monkeypatch):
    """A broken PDF string can decode to a lone surrogate, which UTF-8 (and so the store) cannot hold: it becomes
    U+FFFD, one character for one, and the document is indexed with its offsets exact."""
    from qa.documents import converters

    def broken_text(raw):
        return converters.Extracted("Broken glyph \ud800 here, in a sentence long enough to keep.", "text", "T\udfff")

    monkeypatch.setitem(converters.CONVERTERS, ".txt", broken_text)
    (seeds_copy / SEED_DOC).unlink()
    (seeds_copy / "broken.txt").write_text("placeholder bytes", encoding="utf-8")
    index = open_index(seeds_copy, tmp_path / "index", embedder)
    [paragraph] = index.paragraphs()
    assert paragraph.text == "Broken glyph \ufffd here, in a sentence long enough to keep."
    assert paragraph.title == "T\ufffd"
    assert paragraph.end - paragraph.start == len(paragraph.text)
