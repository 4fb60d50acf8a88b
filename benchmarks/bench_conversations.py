"""Conversations end to end: the conversation sets played through ``QA.answer`` with the system's own answers
as history, for each way of reading a follow-up, side by side on the same models and index.

- ``seeds/conversations.jsonl`` (the set the first follow-up rules were written against) over the seed article;
- ``seeds/conversations_unseen.jsonl`` (written apart from every rule; report it, never tune on it) over a
  library of the seed article, the same article as a PDF, and the Word guide and web page the tests make
  (``tests/test_formats.py``), as a user's library would hold them.

Ways of reading: ``rules`` reads the one rewrite the rules give (``QA(readings=1)``); ``documents`` is the
default ``QA``, whose reader chooses among up to ``DEFAULT_READINGS`` readings (run ``--ways documents`` in a
checkout of an older version to get its figures side by side).

    python benchmarks/bench_conversations.py [--sets conversations conversations_unseen] [--reader FOLDER]

Prints per set and way: first-turn F1, follow-up F1, the same follow-ups asked standalone, the share of
follow-ups whose understood form equals the written standalone one and the two forms' token F1, and seconds
per first turn / follow-up (latency is noisy on a shared 2-core machine: compare the ratio within one run).
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_DOC = "000_ba938e0baee4174c.txt"
SETS = ("conversations", "conversations_unseen")


def sample_library(folder: Path) -> Path:
    """The seed article plus the PDF, Word file and web page the format tests make, in ``folder``."""
    sys.path.insert(0, str(ROOT))
    from tests.test_formats import HTML_PAGE, PAGE_TWO_FROM, make_docx, make_pdf, seed_blocks

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "seeds" / SEED_DOC, folder / SEED_DOC)
    blocks = seed_blocks()
    pdf = make_pdf([blocks[:PAGE_TWO_FROM], blocks[PAGE_TWO_FROM:]], title="Coalition confirms meeting on Raqqa")
    (folder / "seed.pdf").write_bytes(pdf)
    (folder / "guide.docx").write_bytes(make_docx())
    (folder / "notes.html").write_text(HTML_PAGE, encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    parser.add_argument("--reader", help="reader folder or hub id (default: the shipped reader)")
    parser.add_argument("--ways", nargs="+", default=["rules", "documents"], choices=["rules", "documents"])
    args = parser.parse_args()

    from qa.evaluation.conversations import evaluate_conversations, load_conversations
    from qa.pipeline import QA

    figures: dict = {}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        seeds = work / "seeds"
        seeds.mkdir()
        shutil.copy(ROOT / "seeds" / SEED_DOC, seeds / SEED_DOC)
        folders = {"conversations": seeds, "conversations_unseen": sample_library(work / "library")}
        for name in args.sets:
            conversations = load_conversations(ROOT / "seeds" / f"{name}.jsonl")
            for way in args.ways:
                options = {"readings": 1} if way == "rules" else {}  # "documents": the defaults
                qa = QA(folders[name], work / f"index-{name}", reader=args.reader, **options)
                metrics, _ = evaluate_conversations(qa, conversations, progress=False)
                figures[f"{name}/{way}"] = metrics
                print(
                    f"{name:22s} {way:9s} first {metrics['first_turn_f1']:5.1f}  follow-up "
                    f"{metrics['follow_up_f1']:5.1f}  standalone {metrics['follow_up_standalone_f1']:5.1f}  "
                    f"rewrite exact {metrics['follow_up_rewrite_exact']:5.1f} "
                    f"F1 {metrics['follow_up_rewrite_f1']:5.1f}  seconds "
                    f"{metrics['first_turn_seconds']:.3f} / {metrics['follow_up_seconds']:.3f} "
                    f"({metrics['follow_up_seconds'] / metrics['first_turn_seconds']:.2f}x)",
                    flush=True,
                )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
