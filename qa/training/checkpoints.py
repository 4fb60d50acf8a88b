"""Saving and restoring a reader's training: checkpoints that a stopped run resumes from, and the shippable
reader (float16 weights in size-limited files). Every write goes to a temp folder that is then renamed."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

STATE_NAME = "training_state.pt"
CHECKPOINTS_KEPT = 2
# Weights are written in files of at most this size, so that they travel through size-limited channels
# (the GPU machine returns files of at most 16 MiB). A single tensor is never split: MiniLM's word
# embeddings (30,522 x 384 in float16) make one file of 23 MB; cut that with `split -b 15M` to move it.
MAX_WEIGHT_FILE = "15MB"


@dataclass
class Progress:
    """Where a run stands; saved with every checkpoint."""

    epoch: int = 0  # the epoch under way (0-based)
    batches_done: int = 0  # batches of that epoch already trained
    step: int = 0
    train_seconds: float = 0.0
    epoch_losses: list = field(default_factory=list)
    epoch_rng: list | None = None  # the batch-order RNG's state at the start of the epoch under way


def checkpoints(output: Path) -> list[Path]:
    """``output``'s checkpoint folders, oldest first."""
    return sorted((output / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output: Path) -> Path | None:
    found = checkpoints(output)
    return found[-1] if found else None


def save_checkpoint(output: Path, model, tokenizer, optimizer, scheduler, progress: Progress) -> Path:
    """Full-precision weights plus optimizer/scheduler state and ``progress``; only the newest
    ``CHECKPOINTS_KEPT`` are kept."""
    target = output / "checkpoints" / f"step-{progress.step}"
    temp = target.with_name(target.name + ".tmp")
    shutil.rmtree(temp, ignore_errors=True)
    model.save_pretrained(temp)
    tokenizer.save_pretrained(temp)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **asdict(progress)},
        temp / STATE_NAME,
    )
    shutil.rmtree(target, ignore_errors=True)
    temp.rename(target)
    for old in checkpoints(output)[:-CHECKPOINTS_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(checkpoint: Path, optimizer, scheduler) -> Progress:
    """Restore the optimizer and scheduler saved in ``checkpoint`` (tensors and plain data only, no pickled
    objects) and return the run's ``Progress``; the weights load with the model from the same folder."""
    state = torch.load(checkpoint / STATE_NAME, weights_only=True)
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    return Progress(**state)


def rng_state_to_json(state) -> list:
    """A ``random.Random`` state as JSON-friendly lists (it is saved in ``Progress``)."""
    return [list(part) if isinstance(part, tuple) else part for part in state]


def rng_state_from_json(state):
    """A saved ``random.Random`` state back to the tuple shape ``setstate`` wants."""
    return tuple(tuple(part) if isinstance(part, list) else part for part in state)


def save_reader(output: Path, model, tokenizer) -> Path:
    """The shippable reader: float16 safetensors (files of at most ``MAX_WEIGHT_FILE``, or one tensor) +
    tokenizer in ``output``."""
    temp = output.with_name(output.name + ".saving")
    shutil.rmtree(temp, ignore_errors=True)
    model.to(torch.float16).save_pretrained(temp, max_shard_size=MAX_WEIGHT_FILE)
    model.to(torch.float32)
    tokenizer.save_pretrained(temp)
    for stale in output.glob("model*.safetensors*"):
        stale.unlink()
    for item in temp.iterdir():
        item.replace(output / item.name)
    temp.rmdir()
    return output
