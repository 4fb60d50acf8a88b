"""The library commands: ``qa index``, ``qa add``, ``qa remove``, ``qa docs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.cli.options import add_ray, make_qa, new_command


def add_parsers(commands) -> None:
    add_index(commands)
    add_add(commands)
    add_remove(commands)
    add_docs(commands)


def add_index(commands) -> None:
    sub = new_command(commands, "index", run_index, "build or update the index of the documents")
    sub.add_argument("--force", action="store_true", help="rebuild from scratch")
    add_ray(sub, "embed the paragraphs on the Ray cluster at ADDRESS")
    sub.add_argument(
        "--workers", type=int, help="with --ray: embedding actors (default: one per free CPU of the cluster)"
    )


def add_add(commands) -> None:
    sub = new_command(
        commands, "add", run_add, "add documents (.txt .md .pdf .docx .html) to the library and index them"
    )
    sub.add_argument("files", nargs="+", metavar="FILE")
    sub.add_argument("--replace", action="store_true", help="replace a document of the same name")


def add_remove(commands) -> None:
    sub = new_command(commands, "remove", run_remove, "remove a document from the library and the index")
    sub.add_argument("name", help="the document's name as 'qa docs' lists it")


def add_docs(commands) -> None:
    new_command(commands, "docs", run_docs, "list the documents of the library")


def run_index(args: argparse.Namespace, force: bool | None = None) -> None:
    qa = make_qa(args)
    if getattr(args, "ray", None) is not None:
        from qa.serving.cluster import RayEmbedder
        from qa.serving.conversion import RayConverter

        qa.bulk_encoder = RayEmbedder(qa.embedder, workers=args.workers, address=args.ray or None)
        qa.bulk_converter = RayConverter(address=args.ray or None)
        print(f"Indexing on the Ray cluster: documents converted in Ray tasks, {qa.bulk_encoder.plan}.")
    index = qa.index(force=args.force if force is None else force, progress=True)
    documents = len(index.documents)
    noun = "document" if documents == 1 else "documents"
    print(f"{len(index)} paragraphs from {documents} {noun} indexed in {args.index}/ ({index.kind}).")


def run_add(args: argparse.Namespace) -> int:
    from qa.documents.converters import DocumentError
    from qa.documents.library import add_document, library_folder

    failed = 0
    for file in args.files:
        path = Path(file)
        try:
            info = add_document(library_folder(args.documents), path.name, path.read_bytes(), replace=args.replace)
        except (OSError, DocumentError) as error:  # FileExistsError is an OSError
            hint = " (--replace)" if isinstance(error, FileExistsError) else ""
            print(f"cannot add {file}: {error}{hint}", file=sys.stderr)
            failed += 1
            continue
        print(f"added {info.name}: {info.title!r} ({info.summary})")
    if failed < len(args.files):
        run_index(args, force=False)
    return 1 if failed else 0


def run_remove(args: argparse.Namespace) -> None:
    from qa.documents.library import library_folder, remove_document

    remove_document(library_folder(args.documents), args.name)
    print(f"removed {args.name}")
    run_index(args, force=False)


def run_docs(args: argparse.Namespace) -> None:
    qa = make_qa(args)
    folder = qa.documents_dir
    documents = qa.index(progress=True).infos()  # listed from the store, once it follows the folder
    if not documents:
        print(f"no documents in {folder}/")
        return
    width = max(len(d.name) for d in documents)
    print(f"{'name':<{width}}  {'type':<8}{'pages':>6}{'paragraphs':>12}  title")
    for d in documents:
        print(f"{d.name:<{width}}  {d.kind:<8}{d.pages or '-':>6}{d.paragraphs:>12}  {d.title}")
