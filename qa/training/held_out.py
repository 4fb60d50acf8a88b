"""Which training articles a reader, and every reader it was trained from, never trained on.

A stage holds out whole articles to choose its no-answer threshold on (``qa.training.examples.split_calibration``) and
records them in its card; a later stage from it holds the same ones out again, and an average of readers of one
lineage (``qa.training.average``) chooses its threshold on the articles all its parents held out. A threshold chosen on
articles a reader trained on is biased toward answering.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qa.evaluation.squad import SquadExample, load_squad
from qa.reading.reader import read_card

log = logging.getLogger(__name__)
CALIBRATION_NAME = "calibration.json"


def held_out_titles(reader: str | Path) -> set[str]:
    """The training articles ``reader`` was calibrated on and never trained on: its card's
    ``calibration.titles``, else the articles of its ``calibration.json``; empty where it records none (the
    plain encoder, a hub id)."""
    held = set((read_card(reader).get("calibration") or {}).get("titles") or ())
    calibration_file = Path(reader) / CALIBRATION_NAME
    if not held and calibration_file.is_file():
        held = {ex.title for ex in load_squad(calibration_file)}
    return held


def lineage_calibration_titles(base: str, titles: set[str]) -> set[str] | None:
    """The articles among ``titles`` that ``base`` was calibrated on (``held_out_titles``), or None where it
    has none.

    A stage holds them out again whatever its ``seed``: a new seed would draw other articles, some of which the
    base trained on, and the threshold chosen on them is biased (a stage from the shipped reader with another
    seed chose 5.27 on its own draw, 1.77 on its lineage's held-out articles)."""
    held = held_out_titles(base) & titles
    if held:
        log.info("holding out the %d training articles %s was calibrated on", len(held), base)
    return held or None


def never_trained_titles(base: str, trained: list[SquadExample], calibration: list[SquadExample]) -> set[str]:
    """The articles that neither a stage nor any reader before it trained on: the stage's held-out articles, and
    those its ``base`` held out that the stage did not train on either (from files it never read). A stage from
    the shipped reader on SQuAD 2.0 alone then still records the SQuAD 1.1 and SubjQA articles of its lineage's
    held-out slice, so an average of the two keeps them for its threshold (``qa.training.average.common_held_out``)."""
    return {ex.title for ex in calibration} | (held_out_titles(base) - {ex.title for ex in trained})
