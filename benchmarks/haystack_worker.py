"""The peer side of benchmarks/bench_answer.py: a Haystack 2 extractive pipeline, run in its own venv.

This script imports only Haystack (never ``qa``), so it runs under ``.venv-haystack/bin/python``
(see bench_answer.py for the install command). Two commands:

``build``: embed paragraphs into an ``InMemoryDocumentStore`` and save it to a JSON file::

    python benchmarks/haystack_worker.py build --embedder DIR --paragraphs paragraphs.json --store store.json

``paragraphs.json`` is a list of ``{"id": ..., "text": ...}``. Prints one JSON line.

``serve``: load the store, build SentenceTransformersTextEmbedder -> InMemoryEmbeddingRetriever ->
ExtractiveReader, warm it up, print ``{"ready": ...}``, then answer one JSON question per stdin line
(``{"question": ...}``) with one JSON line ``{"answer", "score", "seconds"}``, until end of input::

    python benchmarks/haystack_worker.py serve --embedder DIR --reader DIR --store store.json --top-k 3

The reader is loaded in float32 (``model_kwargs={"dtype": torch.float32}``) unless ``--reader-dtype auto``:
the trained reader's folder stores float16 weights, and Haystack's default (``dtype="auto"``) would then
run it in float16, which is several times slower on CPU: not a fair peer.

``answer`` is the text of the reader's top answer, "" when that is Haystack's no-answer (its default
``no_answer=True``); ``seconds`` is the time of ``pipeline.run`` alone (no pipe I/O).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def build(args: argparse.Namespace) -> None:
    from haystack import Document
    from haystack.components.embedders import SentenceTransformersDocumentEmbedder
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    with open(args.paragraphs, encoding="utf-8") as handle:
        paragraphs = json.load(handle)
    started = time.perf_counter()
    embedder = SentenceTransformersDocumentEmbedder(model=args.embedder, progress_bar=False)
    embedder.warm_up()
    documents = embedder.run([Document(id=p["id"], content=p["text"]) for p in paragraphs])["documents"]
    store = InMemoryDocumentStore()
    store.write_documents(documents)
    store.save_to_disk(args.store)
    emit({"documents": len(documents), "seconds": time.perf_counter() - started})


def serve(args: argparse.Namespace) -> None:
    from haystack import Pipeline
    from haystack.components.embedders import SentenceTransformersTextEmbedder
    from haystack.components.readers import ExtractiveReader
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore.load_from_disk(args.store)
    pipeline = Pipeline()
    pipeline.add_component("embedder", SentenceTransformersTextEmbedder(model=args.embedder, progress_bar=False))
    pipeline.add_component("retriever", InMemoryEmbeddingRetriever(document_store=store, top_k=args.top_k))
    import torch

    # The reader folder stores float16 weights (config "dtype": "float16"); Haystack's default dtype "auto"
    # would run them in float16, which is very slow on CPU. float32 is what ours runs, so the default here.
    model_kwargs = {} if args.reader_dtype == "auto" else {"dtype": getattr(torch, args.reader_dtype)}
    pipeline.add_component("reader", ExtractiveReader(model=args.reader, model_kwargs=model_kwargs))
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.documents", "reader.documents")
    pipeline.warm_up()
    reader = pipeline.get_component("reader")
    emit(
        {
            "ready": True,
            "documents": store.count_documents(),
            "torch_threads": torch.get_num_threads(),
            "reader_dtype": str(reader.model.dtype),
        }
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        question = json.loads(line)["question"]
        started = time.perf_counter()
        result = pipeline.run({"embedder": {"text": question}, "reader": {"query": question}})
        seconds = time.perf_counter() - started
        answers = result["reader"]["answers"]
        top = answers[0] if answers else None
        emit(
            {
                "answer": (top.data or "") if top else "",
                "score": float(top.score) if top else 0.0,
                "seconds": seconds,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build")
    build_parser.add_argument("--embedder", required=True)
    build_parser.add_argument("--paragraphs", required=True)
    build_parser.add_argument("--store", required=True)
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("--embedder", required=True)
    serve_parser.add_argument("--reader", required=True)
    serve_parser.add_argument("--store", required=True)
    serve_parser.add_argument("--top-k", type=int, default=3)
    serve_parser.add_argument(
        "--reader-dtype", default="float32", help="float32 (default), or auto: Haystack's own default"
    )
    args = parser.parse_args()
    build(args) if args.command == "build" else serve(args)


if __name__ == "__main__":
    main()
