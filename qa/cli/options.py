"""Options shared by the ``qa`` commands, and the ``QA`` they describe."""

from __future__ import annotations

import argparse

from qa.models.runtime import BACKENDS
from qa.pipeline import DEFAULT_STOP_MARGIN, DEFAULT_TOP_K, QA


def new_command(commands, name: str, run, help: str, pipeline: bool = True, documents: bool = True):
    """A subcommand ``name`` that runs ``run(args)``, with the pipeline's options unless told otherwise."""
    sub = commands.add_parser(name, help=help, description=help)
    sub.set_defaults(run=run)
    if pipeline:
        add_pipeline_options(sub, documents)
    return sub


def add_pipeline_options(sub: argparse.ArgumentParser, documents: bool = True) -> None:
    """The options of every command that answers: where the documents and index are, which models, the policy."""
    if documents:
        sub.add_argument(
            "--documents",
            help="the library: a folder of documents (default: library/, started with the sample article)",
        )
        sub.add_argument("--index", default="index", help="index folder (default: index)")
    sub.add_argument("--embedder", help="sentence-transformers model name or folder (default: all-MiniLM-L6-v2)")
    sub.add_argument("--reader", help="extractive QA model name or folder (default: the shipped reader)")
    sub.add_argument("--threshold", type=float, help="no-answer threshold (default: the reader card's)")
    sub.add_argument(
        "--stop-margin",
        type=float,
        help="skip lower-ranked paragraphs when the top one's answer margin reaches this "
        f"(default: the reader card's, else {DEFAULT_STOP_MARGIN}; inf: always read all)",
    )
    sub.add_argument("--backend", choices=BACKENDS, help="model runtime (default: onnx on CPU)")
    sub.add_argument(
        "--min-confidence",
        type=float,
        metavar="P",
        help="answer only when the answer is at least this likely right, 0 to 1 (default: the reader card's)",
    )


def make_qa(args, documents=None, index=None, **overrides) -> QA:
    return QA(**qa_options(args, documents, index, **overrides))


def qa_options(args, documents=None, index=None, **overrides) -> dict:
    """``QA``'s keyword arguments from the command line."""
    options = {
        "documents_dir": documents or args.documents,
        "index_dir": index or args.index,
        "embedder": args.embedder,
        "reader": args.reader,
        "threshold": args.threshold,
        "stop_margin": args.stop_margin,
        "backend": args.backend,
        "top_k": getattr(args, "top_k", DEFAULT_TOP_K),
        "min_confidence": args.min_confidence,
    }
    return {**options, **overrides}


def add_top_k(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--top-k", type=positive_int, default=DEFAULT_TOP_K, help="paragraphs to read (default: %(default)s)"
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_calibration_plot(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--calibration-plot",
        metavar="PNG",
        help="write the reliability diagram and the precision-coverage curve of the answers' confidences to this PNG",
    )


def add_ray(sub: argparse.ArgumentParser, help: str) -> None:
    sub.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help=f"{help} (needs pip install -e '.[ray]'; without ADDRESS: the cluster started on this machine with "
        "`ray start`, else a private one)",
    )


def write_calibration_plot(path: str, runs) -> None:
    """The reliability diagram of scored answers (anything with ``confidence``, ``right`` and ``prediction``)."""
    from qa.evaluation.plots import plot_calibration

    runs = list(runs)
    plot_calibration(path, [r.confidence for r in runs], [r.right for r in runs], [bool(r.prediction) for r in runs])
    print(f"calibration plot: {path}")
