"""The ONNX Runtime backend: same answers as PyTorch, exported once, re-exported when the model changes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from qa.models import CACHE_ENV
from qa.models.runtime import choose_backend
from qa.reading.reader import Reader
from tests.conftest import needs_trained_reader

PASSAGE = (
    "The Harbour Library opened in 1921 in the town of Port Ellery. It was designed by the architect "
    "Margaret Vane and holds about 40,000 books. In 1987 a fire destroyed its east wing, which was "
    "rebuilt two years later."
)
QUESTIONS = ["Who designed the Harbour Library?", "When did the fire happen?", "What is the capital of Peru?"]


@needs_trained_reader
def test_onnx_reader_reads_the_same_spans_as_torch():
    onnx_reader, torch_reader = Reader(backend="onnx", quantize="none"), Reader(backend="torch")
    assert (onnx_reader.backend, torch_reader.backend) == ("onnx", "torch") and onnx_reader.model is None
    long_passage = " ".join([PASSAGE] * 12)  # several windows
    passages = [PASSAGE, long_passage, PASSAGE]
    for question in QUESTIONS:
        ours = onnx_reader.read_pairs([question] * 3, passages)
        theirs = torch_reader.read_pairs([question] * 3, passages)
        assert [(s.start, s.end, s.text) for s in ours] == [(s.start, s.end, s.text) for s in theirs]
        assert np.allclose([s.score for s in ours], [s.score for s in theirs], atol=1e-3)


def test_onnx_embedder_vectors_match_torch(embedder):
    from qa.search.embedder import Embedder

    assert embedder.backend == "onnx"
    texts = ["Where did the meeting take place?", PASSAGE, "x"]
    cosine = (embedder.encode(texts) * Embedder(backend="torch").encode(texts)).sum(axis=1)
    assert np.all(cosine > 0.9999)


def test_export_is_cached_and_redone_when_the_model_changes(tiny_reader_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    model = tmp_path / "reader"
    shutil.copytree(tiny_reader_dir, model)
    first = Reader(model)
    exported = first.encoder.path
    stamp = exported.stat().st_mtime_ns
    assert Reader(model).encoder.path == exported and exported.stat().st_mtime_ns == stamp  # reused, not redone

    config = model / "config.json"
    config.write_text(config.read_text())  # same bytes, new modification time: a changed model to the cache
    assert Reader(model).encoder.path != exported
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == sorted(
        [exported.name, Reader(model).encoder.path.name]
    )


def test_quantization_is_opt_in_and_checked(tiny_reader_dir, monkeypatch):
    assert Reader(tiny_reader_dir).quantize is None
    monkeypatch.setenv("QA_READER_QUANTIZE", "int8")
    assert Reader(tiny_reader_dir).quantize == "int8"
    monkeypatch.setenv("QA_READER_QUANTIZE", "int4")
    with pytest.raises(ValueError, match="Unknown quantisation 'int4'"):
        Reader(tiny_reader_dir)


def test_int8_reader_runs_and_needs_the_onnx_backend(tiny_reader_dir):
    reader = Reader(tiny_reader_dir, quantize="int8")
    assert reader.encoder.path.name != Reader(tiny_reader_dir).encoder.path.name
    spans = reader.read_pairs([QUESTIONS[0]], [PASSAGE])
    assert PASSAGE[spans[0].start : spans[0].end] == spans[0].text
    with pytest.raises(ValueError, match="ONNX backend"):
        Reader(tiny_reader_dir, quantize="int8", backend="torch")


def test_backend_choice(tiny_reader_dir, monkeypatch):
    cpu = torch.device("cpu")
    assert choose_backend(None, tiny_reader_dir, cpu) == "onnx"
    assert choose_backend("torch", tiny_reader_dir, cpu) == "torch"
    assert choose_backend(None, "some-org/some-hub-model", cpu) == "torch"  # not a local folder
    assert choose_backend(None, tiny_reader_dir, torch.device("cuda")) == "torch"
    monkeypatch.setenv("QA_BACKEND", "torch")
    assert choose_backend(None, tiny_reader_dir, cpu) == "torch"
    with pytest.raises(ValueError, match="Unknown backend 'tensorflow'"):
        choose_backend("tensorflow", tiny_reader_dir, cpu)


def test_bulk_encoding_runs_on_torch_and_gives_the_query_path_vectors():
    from qa.search.embedder import Embedder

    embedder = Embedder(batch_size=2)
    texts = ["Where did the meeting take place?", PASSAGE, "Raqqa", "Ayn Issa is a town."]
    one_by_one = np.vstack([embedder.encode([text]) for text in texts])
    assert embedder.model is None  # single texts: ONNX Runtime only
    bulk = embedder.encode(texts)
    assert embedder.model is not None
    assert np.allclose(bulk, one_by_one, atol=1e-5)
