"""Average the weights of readers of one lineage (a "model soup").

Readers fine-tuned one from another lie in one basin of the loss, so the average of their weights is a reader
too, and often between them or better than both (Wortsman et al., 2022, "Model soups"). Here it keeps what an
earlier stage does well on the seed article while taking most of what a later stage gained on unseen
questions (README, the reader section). The average gets a threshold of its own: the parents' weighted mean
until ``qa reader eval-corpus OUTPUT/calibration.json --reader OUTPUT --choose --store`` picks one, on the held-out
training articles that no parent trained on.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from qa.evaluation.squad import load_squad, write_squad
from qa.reading.reader import read_card, write_card
from qa.training.checkpoints import save_reader
from qa.training.held_out import CALIBRATION_NAME, held_out_titles

log = logging.getLogger(__name__)


def check_weights(weights: list[float], count: int) -> None:
    """``weights`` must be ``count`` positive numbers that sum to 1."""
    if len(weights) != count or any(w <= 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise ValueError(f"weights must be {count} positive numbers that sum to 1 (one a reader), got {weights}")


def average_readers(
    readers: list[str | Path], weights: list[float], output: str | Path, calibration: str | Path | None = None
) -> dict:
    """Write the weighted average of ``readers`` (folders or hub ids of one architecture) to ``output`` as a
    float16 reader with the first reader's tokenizer, a card that names the parents (their cards nested) and
    a ``calibration.json``: the questions of ``calibration`` (default: the first parent's calibration.json)
    kept to ``common_held_out``; returns the card."""
    if len(readers) < 2:
        raise ValueError("averaging needs at least two readers")
    check_weights(weights, len(readers))
    if calibration is None:
        files = (Path(r) / CALIBRATION_NAME for r in readers)
        calibration = next((file for file in files if file.is_file()), None)
    elif not Path(calibration).is_file():
        raise ValueError(f"no calibration file at {calibration}")
    models = [AutoModelForQuestionAnswering.from_pretrained(str(r), dtype=torch.float32) for r in readers]
    states = [model.state_dict() for model in models]
    shapes = {name: tensor.shape for name, tensor in states[0].items()}
    for reader, state in zip(readers[1:], states[1:]):
        if {name: tensor.shape for name, tensor in state.items()} != shapes:
            raise ValueError(f"{reader} has other weights than {readers[0]}: only one architecture can be averaged")
    averaged = {
        name: sum(w * state[name] for w, state in zip(weights, states)) if tensor.is_floating_point() else tensor
        for name, tensor in states[0].items()
    }
    models[0].load_state_dict(averaged)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_reader(output, models[0], AutoTokenizer.from_pretrained(str(readers[0])))

    cards = [read_card(r) for r in readers]
    card = {
        "base_model": "weighted average of " + ", ".join(str(r) for r in readers),
        "averaged_from": [{"reader": str(r), "weight": w, "card": c} for r, w, c in zip(readers, weights, cards)],
        "threshold": sum(w * float(c.get("threshold", 0.0)) for w, c in zip(weights, cards)),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if calibration:
        common = common_held_out(readers)
        kept = [ex for ex in load_squad(calibration) if ex.title in common]
        if kept:
            write_squad(output / CALIBRATION_NAME, kept)
            card["calibration_file"] = str(calibration)
            card["calibration"] = {"questions": len(kept), "titles": sorted(common)}
        else:
            log.warning(
                "%s holds no article that every parent held out: choose the average's threshold on other held-out data",
                calibration,
            )
    write_card(output, card)
    return card


def common_held_out(readers: list[str | Path]) -> set[str]:
    """The articles that every parent held out (``held_out_titles``): the average trained on none of them, so a
    threshold chosen on them is not biased by what a parent learnt, and a stage trained from the average holds
    them out again. A parent that records no held-out articles (a hub id) cannot be checked, and says so."""
    held = [held_out_titles(reader) for reader in readers]
    unknown = [str(reader) for reader, titles in zip(readers, held) if not titles]
    if unknown:
        log.warning(
            "no held-out articles on record for %s: the average may have trained on its calibration file",
            ", ".join(unknown),
        )
    known = [titles for titles in held if titles]
    return set.intersection(*known) if known else set()
