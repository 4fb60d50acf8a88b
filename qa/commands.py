"""What each ``qa`` command does, given its parsed arguments (the parser is ``qa.cli``)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from qa.pipeline import DEFAULT_TOP_K, QA


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


def run_index(args, force: bool | None = None) -> None:
    qa = make_qa(args)
    if getattr(args, "ray", None) is not None:
        from qa.cluster import RayEmbedder

        qa.bulk_encoder = RayEmbedder(qa.embedder, workers=args.workers, address=args.ray or None)
    index = qa.index(force=args.force if force is None else force, progress=True)
    documents = len(index.meta["documents"])
    kind = index.meta["kind"]
    noun = "document" if documents == 1 else "documents"
    print(f"{len(index.paragraphs)} paragraphs from {documents} {noun} indexed in {args.index}/ ({kind}).")


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
    qa = make_qa(args)
    history: list[tuple[str, str]] = []
    for earlier in args.after:  # the conversation so far, with the answers the system gives
        history.append((earlier, qa.answer(earlier, history=history, top_k=args.top_k).message))
    answer = qa.answer(args.question, history=history, top_k=args.top_k)
    if args.json:
        from qa.answers import answer_record

        print(json.dumps(answer_record(answer), ensure_ascii=False, indent=2))
        return
    from qa.answers import CLARIFY, NOT_SURE, OTHER_ANSWERS, likelihood

    shown = answer.supporting + answer.alternatives if answer.found else answer.evidence
    print(answer.text or (f"{NOT_SURE} Closest candidate:" if answer.evidence else answer.message))
    if answer.rewritten:
        print(f"  (understood as: {answer.question})")
    if answer.clarify:
        print(f"  {CLARIFY} {' or '.join(repr(reading) for reading in answer.clarify)}")
    for number, citation in enumerate(shown, start=1):
        if answer.found and number == len(answer.supporting) + 1:
            print(f"  {OTHER_ANSWERS}")
        passage, start, end = citation.passage, citation.start, citation.end
        print(
            f"  [{number}] {citation.source}, paragraph {citation.paragraph}, characters {start}-{end}, "
            f"{likelihood(citation.confidence, answer.calibrated)}:"
        )
        print(f"      ...{passage[max(0, start - 80) : start]}[{passage[start:end]}]{passage[end : end + 80]}...")


def run_eval(args) -> None:
    from qa.evaluate import evaluate_questions, format_table, load_questions, plot, plot_calibration, write_report
    from qa.evaluate_conversations import evaluate_conversations, load_conversations

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
    if args.calibration_plot:
        right = [bool(r.prediction and r.answers) and r.f1 >= 0.5 for r in results]
        plot_calibration(
            args.calibration_plot, [r.confidence for r in results], right, [bool(r.prediction) for r in results]
        )
        print(f"calibration plot: {args.calibration_plot}")


def run_eval_corpus(args) -> None:
    from qa.evaluate import format_table
    from qa.evaluate_corpus import evaluate_corpus, store_settings

    if args.store and not args.choose:
        raise ValueError("--store needs --choose")

    metrics, runs, choices = evaluate_corpus(
        args.squad_file,
        lambda documents, index: make_qa(args, documents, index),
        args.limit,
        choose=args.choose,
        foreign_share=args.foreign_share,
        keep_unanswerable=args.keep_unanswerable,
    )

    print(format_table(metrics))
    if choices:
        header = [("stop margin", 12), ("threshold", 11), ("f1", 8), ("HasAns f1", 11), ("NoAns f1", 10)]
        header += [("best f1", 9), ("read one", 10)]
        print("".join(f"{name:>{width}}" for name, width in header))
        for row in choices:
            print(
                f"{row['stop_margin']:>12.1f}{row['threshold']:>11.3f}{row['f1']:>8.2f}"
                f"{row.get('HasAns_f1', 0):>11.2f}{row.get('NoAns_f1', 0):>10.2f}{row['best_f1']:>9.2f}"
                f"{row['read_one_share']:>10.2f}"
            )
    if args.store:
        card = store_settings(args.reader, choices[0], args.squad_file)
        print(f"stored threshold {choices[0]['threshold']:.3f} and stop margin {choices[0]['stop_margin']} in {card}")
    if args.calibration_plot:
        from qa.evaluate import plot_calibration

        plot_calibration(
            args.calibration_plot,
            [r.confidence for r in runs],
            [r.right for r in runs],
            [bool(r.prediction) for r in runs],
        )
        print(f"calibration plot: {args.calibration_plot}")
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
    from qa.train import TrainConfig, train, write_examples

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
        "swapped": args.swapped,
        "antonyms": args.antonyms,
        "cut_answer": args.cut_answer,
        "paragraph_swapped": args.paragraph_swapped,
        "precision": args.precision,
        "checkpoint_minutes": args.checkpoint_minutes,
        "seed": args.seed,
        "threads": args.threads,
        "max_steps": args.max_steps,
        "dev_file": args.dev,
    }
    if args.base:
        options["base"] = args.base
    if args.examples_only:
        print(f"training examples written to {write_examples(TrainConfig(**options))}")
        return
    card = train(TrainConfig(**options), resume=args.resume)
    print(json.dumps({key: card[key] for key in ("threshold", "steps", "train_seconds", "final_loss")}))
    if "dev" in card:
        print(json.dumps(card["dev"]))
    print(f"reader written to {Path(args.output)}")


def run_average(args) -> None:
    from qa.average import average_readers
    from qa.held_out import CALIBRATION_NAME

    weights = args.weights or [1 / len(args.readers)] * len(args.readers)
    card = average_readers(args.readers, weights, args.output, args.calibration)
    print(f"averaged reader written to {Path(args.output)} (threshold {card['threshold']:.3f}, the parents' mean)")
    if "calibration_file" in card:
        calibration = Path(args.output) / CALIBRATION_NAME
        print(
            f"{calibration} keeps the {card['calibration']['questions']} questions of {card['calibration_file']} "
            "on articles no parent trained on; choose the average's own threshold on them: "
            f"qa eval-corpus {calibration} --reader {args.output} --choose --store"
        )


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


def run_calibrate(args) -> None:
    from qa.calibrate import calibrate, store_calibration

    result = calibrate(lambda documents, index: make_qa(args, documents, index), args.squad_file, args.limit)
    figures = result["confidence_fit"]
    print(f"{figures['questions']} questions: fitted on {figures['fitted_on']}, checked on {figures['checked_on']}")
    print(f"checked half: ECE {figures['check_ece']:.3f} (margin softmax {figures['check_ece_softmax']:.3f}), "
          f"Brier {figures['check_brier']:.3f} ({figures['check_brier_softmax']:.3f})")  # fmt: skip
    print(f"{'min confidence':>15}{'f1':>8}{'answered':>10}")
    for row in figures["policies"]:
        print(f"{row['min_confidence']:>15.2f}{row['f1']:>8.2f}{row['coverage']:>9.1f}%")
    print(f"best policy: answer at confidence >= {result['min_confidence']:.2f}")
    if args.store:
        print(f"stored the confidence model and policy in {store_calibration(args.reader, result)}")
