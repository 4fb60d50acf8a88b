"""Fine-tune an extractive reader on SQuAD-format data (v1.1 or v2.0).

The standard SQuAD 2.0 recipe: windows with stride, the answer's char span mapped to token start/end,
unanswerable questions (or answers outside the window) pointed at the CLS token; AdamW with linear
warm-up and decay; length-bucketed batches with per-batch padding; bf16 autocast on a GPU. A slice of
the training articles is held out to choose the no-answer threshold, which is stored in the card.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

from qa.models import default_base_encoder
from qa.read import CARD_NAME, Reader, encode_windows
from qa.squad import SquadExample, best_threshold, load_squad, squad_v2_metrics

log = logging.getLogger(__name__)
STATE_NAME = "training_state.pt"


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in the reader card."""

    train_files: list[str]
    output: str
    base: str = field(default_factory=default_base_encoder)
    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 384
    stride: int = 128
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    calibration_fraction: float = 0.08  # share of training articles held out for the threshold
    seed: int = 13
    threads: int | None = None  # CPU threads (default: all cores)
    max_steps: int | None = None  # stop early (tests, smoke runs)
    limit_examples: int | None = None  # use only the first N examples (tests, smoke runs)
    dev_file: str | None = None  # scored after training; never used for any choice


@dataclass
class Feature:
    """One training window with its label positions (0 = CLS = no answer in this window)."""

    input_ids: list[int]
    token_type_ids: list[int]
    start_position: int
    end_position: int


def split_calibration(examples: list[SquadExample], fraction: float, seed: int):
    """Hold out whole articles (by title) for threshold calibration: (train, calibration)."""
    titles = sorted({ex.title for ex in examples})
    held_count = round(len(titles) * fraction) if fraction > 0 else 0
    held = set(random.Random(seed).sample(titles, held_count)) if held_count < len(titles) else set()
    return [ex for ex in examples if ex.title not in held], [ex for ex in examples if ex.title in held]


def build_features(tokenizer, examples: list[SquadExample], max_length: int, stride: int) -> list[Feature]:
    """Tokenise examples into labelled windows."""
    features = []
    chunk = 256
    for offset in tqdm(range(0, len(examples), chunk), desc="tokenising", unit="chunk", leave=False):
        batch = examples[offset : offset + chunk]
        encoding = encode_windows(
            tokenizer, [ex.question for ex in batch], [ex.context for ex in batch], max_length, stride
        )
        for window, example_index in enumerate(encoding["overflow_to_sample_mapping"]):
            example = batch[example_index]
            start, end = label_positions(example, encoding["offset_mapping"][window], encoding["context_mask"][window])
            features.append(
                Feature(
                    input_ids=encoding["input_ids"][window],
                    token_type_ids=encoding["token_type_ids"][window],
                    start_position=start,
                    end_position=end,
                )
            )
    return features


def label_positions(example: SquadExample, offsets, context_mask) -> tuple[int, int]:
    """Token (start, end) of the first reference answer in this window, or (0, 0) when it is not inside."""
    if example.is_impossible:
        return 0, 0
    answer_start = example.answer_start
    answer_end = answer_start + len(example.answers[0])
    context_tokens = [i for i, inside in enumerate(context_mask) if inside]
    if offsets[context_tokens[0]][0] > answer_start or offsets[context_tokens[-1]][1] < answer_end:
        return 0, 0
    start = next(i for i in context_tokens if offsets[i][1] > answer_start)
    end = next(i for i in reversed(context_tokens) if offsets[i][0] < answer_end)
    return start, end


def bucketed_batches(features: list[Feature], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort by length inside large pools, cut into batches, shuffle the batches."""
    order = list(range(len(features)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for offset in range(0, len(order), pool):
        chunk = sorted(order[offset : offset + pool], key=lambda i: len(features[i].input_ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(features: list[Feature], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f.input_ids) for f in features)
    input_ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(features), width), dtype=torch.long)
    attention_mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, feature in enumerate(features):
        length = len(feature.input_ids)
        input_ids[row, :length] = torch.tensor(feature.input_ids)
        token_type_ids[row, :length] = torch.tensor(feature.token_type_ids)
        attention_mask[row, :length] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "start_positions": torch.tensor([f.start_position for f in features]),
        "end_positions": torch.tensor([f.end_position for f in features]),
    }


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def latest_checkpoint(output: Path) -> Path | None:
    checkpoints = sorted((output / "checkpoints").glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))
    return checkpoints[-1] if checkpoints else None


def predict(reader: Reader, examples: list[SquadExample]) -> tuple[dict[str, str], dict[str, float]]:
    """The reader's best span text and margin for each example (no threshold applied)."""
    texts, margins = {}, {}
    chunk = 64
    for offset in tqdm(range(0, len(examples), chunk), desc="reading", unit="chunk", leave=False):
        batch = examples[offset : offset + chunk]
        for example, span in zip(batch, reader.read_pairs([e.question for e in batch], [e.context for e in batch])):
            texts[example.id], margins[example.id] = span.text, span.score
    return texts, margins


def apply_threshold(texts: dict[str, str], margins: dict[str, float], threshold: float) -> dict[str, str]:
    return {i: (texts[i] if margins[i] > threshold else "") for i in texts}


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Train a reader as ``config`` says; returns the reader card written beside the model."""
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(config.threads or os.cpu_count() or 1)

    examples = [ex for path in config.train_files for ex in load_squad(path)]
    if config.limit_examples:
        examples = examples[: config.limit_examples]
    train_examples, calibration = split_calibration(examples, config.calibration_fraction, config.seed)
    log.info("%d training and %d calibration examples", len(train_examples), len(calibration))

    checkpoint = latest_checkpoint(output) if resume else None
    source = checkpoint or config.base
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForQuestionAnswering.from_pretrained(source, dtype=torch.float32).to(device)
    features = build_features(tokenizer, train_examples, config.max_length, config.stride)

    rng = random.Random(config.seed)
    steps_per_epoch = math.ceil(len(features) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_fraction * total_steps), total_steps)
    first_epoch, step, earlier_seconds, epoch_losses = 0, 0, 0.0, []
    if checkpoint:
        state = torch.load(checkpoint / STATE_NAME, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        first_epoch, step = state["epoch"], state["step"]
        earlier_seconds, epoch_losses = state.get("train_seconds", 0.0), list(state.get("epoch_losses", []))
        rng.setstate(tuple(_as_rng_state(state["rng"])))
        log.info("resumed from %s (epoch %d, step %d)", checkpoint, first_epoch, step)

    started = time.time()
    losses = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for epoch in range(first_epoch, config.epochs):
        model.train()
        batches = bucketed_batches(features, config.batch_size, rng)
        first_step_of_epoch = len(losses)
        progress = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch")
        for batch_ids in progress:
            if config.max_steps and step >= config.max_steps:
                break
            batch = {
                k: v.to(device) for k, v in collate([features[i] for i in batch_ids], tokenizer.pad_token_id).items()
            }
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            progress.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
        epoch_losses.append(float(np.mean(losses[first_step_of_epoch:])) if len(losses) > first_step_of_epoch else None)
        progress_state = {
            "epoch": epoch + 1,
            "step": step,
            "train_seconds": earlier_seconds + time.time() - started,
            "epoch_losses": epoch_losses,
        }
        save_checkpoint(output, model, tokenizer, optimizer, scheduler, rng, progress_state)
        if config.max_steps and step >= config.max_steps:
            break
    train_seconds = earlier_seconds + time.time() - started

    final = save_reader(output, model, tokenizer)
    reader = Reader(final, threshold=0.0)
    card = {
        "base_model": config.base,
        "data": [{"file": str(p), "sha256": sha256_of(p)} for p in config.train_files],
        "hyper_parameters": asdict(config),
        "train_examples": len(train_examples),
        "train_features": len(features),
        "steps": step,
        "train_seconds": round(train_seconds, 1),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "epoch_losses": epoch_losses,
        "threshold": 0.0,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if calibration:
        texts, margins = predict(reader, calibration)
        card["threshold"] = best_threshold(calibration, margins, texts)
        card["calibration"] = {
            "examples": len(calibration),
            "titles": sorted({ex.title for ex in calibration}),
            "metrics_at_threshold": squad_v2_metrics(calibration, apply_threshold(texts, margins, card["threshold"])),
        }
    if config.dev_file:
        dev = load_squad(config.dev_file)
        texts, margins = predict(reader, dev)
        card["dev"] = {
            "file": config.dev_file,
            **squad_v2_metrics(dev, apply_threshold(texts, margins, card["threshold"])),
        }
    (final / CARD_NAME).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return card


def _as_rng_state(state):
    """JSON-safe random.Random state back to the tuple shape ``setstate`` wants."""
    return [tuple(part) if isinstance(part, list) else part for part in state]


def save_checkpoint(output: Path, model, tokenizer, optimizer, scheduler, rng, progress_state: dict) -> Path:
    """Full-precision weights plus optimizer/scheduler state and ``progress_state`` (epoch, step, seconds,
    losses), written to a temp folder then renamed."""
    target = output / "checkpoints" / f"epoch-{progress_state['epoch']}"
    temp = target.with_name(target.name + ".tmp")
    shutil.rmtree(temp, ignore_errors=True)
    model.save_pretrained(temp)
    tokenizer.save_pretrained(temp)
    rng_state = [list(part) if isinstance(part, tuple) else part for part in rng.getstate()]
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state, **progress_state},
        temp / STATE_NAME,
    )
    shutil.rmtree(target, ignore_errors=True)
    temp.rename(target)
    return target


def save_reader(output: Path, model, tokenizer) -> Path:
    """The shippable reader: float16 safetensors + tokenizer in ``output`` (written via a temp folder)."""
    temp = output.with_name(output.name + ".saving")
    shutil.rmtree(temp, ignore_errors=True)
    model.to(torch.float16).save_pretrained(temp)
    model.to(torch.float32)
    tokenizer.save_pretrained(temp)
    for item in temp.iterdir():
        item.replace(output / item.name)
    temp.rmdir()
    return output
