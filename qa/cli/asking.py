"""``qa ask`` (one question, or a follow-up with ``--after``) and ``qa eval`` (a question or conversation set)."""

from __future__ import annotations

import argparse
import json

from qa.cli.options import (
    add_calibration_plot,
    add_top_k,
    make_qa,
    new_command,
    write_calibration_plot,
)


def add_parsers(commands) -> None:
    add_ask(commands)
    add_eval(commands)


def add_ask(commands) -> None:
    sub = new_command(commands, "ask", run_ask, "answer one question with citations")
    sub.add_argument("question")
    add_top_k(sub)
    sub.add_argument("--json", action="store_true", help="print the answer as JSON")
    sub.add_argument(
        "--after",
        action="append",
        default=[],
        metavar="EARLIER",
        help="an earlier question of the conversation, answered first (repeat, in order): QUESTION is a follow-up",
    )


def add_eval(commands) -> None:
    sub = new_command(commands, "eval", run_eval, "score the system on a JSON-lines question set or conversation set")
    sub.add_argument("questions", nargs="?", help="e.g. seeds/questions.jsonl")
    sub.add_argument(
        "--conversations",
        metavar="JSONL",
        help="play multi-turn conversations (e.g. seeds/conversations.jsonl): F1 on first turns, on follow-ups "
        "and on the same follow-ups asked standalone",
    )
    add_top_k(sub)
    sub.add_argument("--report", default="eval_report.json", help="JSON report path (default: %(default)s)")
    sub.add_argument("--plot", metavar="PNG", help="write score and latency distributions to this PNG")
    add_calibration_plot(sub)


def run_ask(args: argparse.Namespace) -> None:
    from qa.reading.answers import CLARIFY, NOT_SURE, OTHER_ANSWERS, answer_record, likelihood

    qa = make_qa(args)
    history: list[tuple[str, str]] = []
    for earlier in args.after:  # the conversation so far, with the answers the system gives
        history.append((earlier, qa.answer(earlier, history=history, top_k=args.top_k).message))
    answer = qa.answer(args.question, history=history, top_k=args.top_k)
    if args.json:
        print(json.dumps(answer_record(answer), ensure_ascii=False, indent=2))
        return
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


def run_eval(args: argparse.Namespace) -> None:
    from qa.evaluation.conversations import evaluate_conversations, load_conversations
    from qa.evaluation.plots import plot
    from qa.evaluation.questions import evaluate_questions, format_table, load_questions, write_report

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
        write_calibration_plot(args.calibration_plot, results)
