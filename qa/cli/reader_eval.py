"""``qa reader eval`` (the reader alone on gold paragraphs) and ``qa reader eval-corpus`` (the whole system on a
SQuAD file's articles, and the threshold and stop margin chosen on them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qa.cli.options import (
    add_calibration_plot,
    add_top_k,
    make_qa,
    new_command,
    write_calibration_plot,
)


def add_parsers(lab) -> None:
    add_eval(lab)
    add_eval_corpus(lab)


def add_eval(lab) -> None:
    sub = new_command(
        lab, "eval", run_eval_reader, "SQuAD 2.0 metrics of the reader on gold paragraphs", pipeline=False
    )
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


def add_eval_corpus(lab) -> None:
    sub = new_command(
        lab,
        "eval-corpus",
        run_eval_corpus,
        "score the whole system on a SQuAD-format file: its articles become the documents",
        documents=False,
    )
    sub.add_argument("squad_file")
    sub.add_argument("--limit", type=int, metavar="N", help="answer a fixed random sample of N questions")
    add_top_k(sub)
    sub.add_argument(
        "--choose",
        action="store_true",
        help="also read every retrieved paragraph and report the threshold and stop margin that maximise F1 "
        "(use held-out training articles, e.g. the calibration.json that qa reader train writes, never dev)",
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
    add_calibration_plot(sub)


def thresholds(text: str) -> tuple[float, ...]:
    """Parse ``--sweep``: comma-separated numbers."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def run_eval_reader(args: argparse.Namespace) -> None:
    from qa.evaluation.reader import evaluate_reader, format_sweep
    from qa.reading.reader import Reader

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


def run_eval_corpus(args: argparse.Namespace) -> None:
    from qa.evaluation.corpus import evaluate_corpus, store_settings
    from qa.evaluation.questions import format_table

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
        write_calibration_plot(args.calibration_plot, runs)
    if args.json:
        print(json.dumps({**metrics, "choices": choices} if choices else metrics))
