import json
import shutil

import numpy as np
import pytest

from qa.search.embedder import Embedder
from qa.search.index import META_NAME, IndexDamaged, load_index, open_index
from tests.conftest import SEED_DOC


def test_build_then_load_uses_the_same_index(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    built = open_index(seeds_copy, index_dir, embedder)
    meta = json.loads((index_dir / META_NAME).read_text())
    assert meta["embedder"] == embedder.name
    assert list(meta["documents"]) == [SEED_DOC]
    assert built.vectors.ntotal == len(built.paragraphs) == 14
    vectors_files = list(index_dir.glob("vectors-*.faiss"))
    assert [f.name for f in vectors_files] == [meta["vectors_file"]]
    mtime = vectors_files[0].stat().st_mtime_ns
    loaded = open_index(seeds_copy, index_dir, embedder)
    assert vectors_files[0].stat().st_mtime_ns == mtime  # not rebuilt
    assert loaded.paragraphs == built.paragraphs
    # vectors are normalised: inner product of a paragraph with itself is 1
    own = embedder.encode([built.paragraphs[2].text])
    scores, positions = loaded.search(own, 1)
    assert positions[0][0] == 2 and scores[0][0] == pytest.approx(1.0, abs=1e-4)


def test_changed_or_added_document_triggers_rebuild(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    open_index(seeds_copy, index_dir, embedder)
    (seeds_copy / "extra.md").write_text("The blue whale is the largest animal ever known to have lived.\n")
    index = open_index(seeds_copy, index_dir, embedder)
    assert len(index.paragraphs) == 15
    assert "extra.md" in index.meta["documents"]
    assert len(list(index_dir.glob("vectors-*.faiss"))) == 1  # the old vectors file is gone
    (seeds_copy / "extra.md").unlink()
    assert len(open_index(seeds_copy, index_dir, embedder).paragraphs) == 14


def test_rebuild_reuses_vectors_of_unchanged_paragraphs(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    first = open_index(seeds_copy, index_dir, embedder)
    before = first.vectors.reconstruct_n(0, first.vectors.ntotal)
    (seeds_copy / "extra.txt").write_text("A new paragraph about something else entirely, for the index.\n")
    second = open_index(seeds_copy, index_dir, embedder)
    after = second.vectors.reconstruct_n(0, second.vectors.ntotal)
    positions = {p.id: i for i, p in enumerate(second.paragraphs)}
    for i, paragraph in enumerate(first.paragraphs):
        np.testing.assert_array_equal(before[i], after[positions[paragraph.id]])


def test_embedder_change_is_detected(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    open_index(seeds_copy, index_dir, embedder)
    meta_path = index_dir / META_NAME
    meta = json.loads(meta_path.read_text())
    meta["embedder_identity"] = "sha256:" + "0" * 64  # vectors from another model
    meta_path.write_text(json.dumps(meta))
    index = open_index(seeds_copy, index_dir, embedder)
    assert index.meta["embedder_identity"] == embedder.identity


class CountingEncoder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder):
        self.embedder, self.embedded = embedder, 0
        self.name, self.identity, self.dimension = embedder.name, embedder.identity, embedder.dimension

    def encode(self, texts, progress=False):
        self.embedded += len(texts)
        return self.embedder.encode(texts, progress=progress)


def test_an_index_travels_to_another_checkout_and_environment_without_embedding_again(seeds_copy, tmp_path, embedder):
    built = open_index(seeds_copy, tmp_path / "index", embedder)
    assert built.meta["embedder_identity"].startswith("sha256:") and "site-packages" not in json.dumps(
        {key: value for key, value in built.meta.items() if key != "embedder"}
    )
    # another checkout (documents and index copied elsewhere) in another virtual environment (the same model's
    # files at another path, as another venv's site-packages holds them)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(seeds_copy, elsewhere / "library")
    shutil.copytree(tmp_path / "index", elsewhere / "index")
    shutil.copytree(embedder.name, elsewhere / "venv" / "model")
    moved = CountingEncoder(Embedder(str(elsewhere / "venv" / "model")))
    assert moved.name != embedder.name and moved.identity == embedder.identity
    opened = open_index(elsewhere / "library", elsewhere / "index", moved)
    assert moved.embedded == 0
    assert opened.meta["vectors_file"] == built.meta["vectors_file"]
    assert opened.paragraphs == built.paragraphs


def test_an_index_from_before_identities_opens_as_it_is_and_records_its_embedder(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    built = open_index(seeds_copy, index_dir, embedder)
    meta = json.loads((index_dir / META_NAME).read_text())
    del meta["embedder_identity"]  # the format before: the embedder by its path only
    (index_dir / META_NAME).write_text(json.dumps(meta))
    counting = CountingEncoder(embedder)
    opened = open_index(seeds_copy, index_dir, counting)
    assert counting.embedded == 0 and opened.meta["vectors_file"] == built.meta["vectors_file"]
    assert json.loads((index_dir / META_NAME).read_text())["embedder_identity"] == embedder.identity


def test_damaged_vectors_file_is_detected(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    index = open_index(seeds_copy, index_dir, embedder)
    vectors_path = index_dir / index.meta["vectors_file"]
    vectors_path.write_bytes(vectors_path.read_bytes()[:100])
    with pytest.raises(IndexDamaged, match="checksum"):
        load_index(index_dir)
    assert open_index(seeds_copy, index_dir, embedder).vectors.ntotal == 14


def test_missing_documents_folder_is_a_clear_error(tmp_path, embedder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_index(tmp_path / "nowhere", tmp_path / "index", embedder)
