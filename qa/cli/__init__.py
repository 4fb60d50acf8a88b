"""The ``qa`` command: everyday commands first, the reader lab under ``qa reader``; one parser per command."""

from __future__ import annotations

import argparse
import logging
import sys

from qa.cli import asking, library, reader, serving
from qa.pipeline import QuestionError


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
    parser = argparse.ArgumentParser(
        prog="qa",
        description="Extractive question answering over your documents.",
        epilog="Training and scoring readers: qa reader --help",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and warnings in detail")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for group in (asking, library, serving):  # the everyday commands, in the order --help lists them
        group.add_parsers(commands)
    reader.add_group(commands)
    return parser
