"""Training data for the reader: which examples, which windows, which labels, in which batches.

Examples come from SQuAD-format files. Whole articles are held out for calibration, the rest may be cut
into shards (one shard a training stage), and answerable questions may get a *retrieval negative*: another
paragraph of the same article that BM25 ranks high for the question but that does not contain the answer,
labelled "no answer". That is what the product's reader sees for most passages it reads: the retriever
returns ``top_k`` paragraphs of which usually one answers. They may also get unanswerable twins: the right
paragraph with an edited question it does not answer (``qa/training/twins.py``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

import bm25s
import torch
from tqdm.auto import tqdm

from qa.evaluation.squad import SquadExample, lacks_answer
from qa.reading.reader import encode_windows
from qa.training.twins import unanswerable_twin

NEGATIVE_ID_SUFFIX = "#negative"


@dataclass
class Feature:
    """One training window with its label positions (0 = CLS = no answer in this window)."""

    input_ids: list[int]
    token_type_ids: list[int]
    start_position: int
    end_position: int


def split_calibration(examples: list[SquadExample], fraction: float, seed: int, held_titles: set[str] | None = None):
    """Hold out whole articles (by title) for threshold calibration: (train, calibration).

    The held-out articles are a seeded draw of ``fraction`` of them, or ``held_titles`` where given: the
    articles a base reader was calibrated on, so that no stage of a lineage trains on them."""
    if fraction <= 0:
        held = set()
    elif held_titles is not None:
        held = held_titles
    else:
        titles = sorted({ex.title for ex in examples})
        held_count = round(len(titles) * fraction)
        held = set(random.Random(seed).sample(titles, held_count)) if held_count < len(titles) else set()
    return [ex for ex in examples if ex.title not in held], [ex for ex in examples if ex.title in held]


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N."""
    try:
        number, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like K/N (e.g. 2/4), got {text!r}") from None
    if not 1 <= number <= count:
        raise ValueError(f"shard {text!r}: K must be between 1 and N")
    return number, count


def take_shard(
    examples: list[SquadExample], shard: str, seed: int, all_unanswerable: bool = False
) -> list[SquadExample]:
    """The examples of the K-th of N article shards (articles dealt out in a seeded random order).

    Training in stages, one shard each, starting every stage from the previous stage's reader, covers all
    articles once with a full learning-rate schedule per stage: each stage ends with a usable reader.
    With ``all_unanswerable`` every stage also keeps the unanswerable questions of the other shards: they are
    few (5.7k against 88k answerable) and the only ones written to look answerable."""
    number, count = parse_shard(shard)
    titles = sorted({ex.title for ex in examples})
    random.Random(seed).shuffle(titles)
    chosen = set(titles[number - 1 :: count])
    return [ex for ex in examples if ex.title in chosen or (all_unanswerable and ex.is_impossible)]


def retrieval_negatives(examples: list[SquadExample], share: float, seed: int) -> list[SquadExample]:
    """For ``share`` of the answerable examples, the same question over the paragraph of its article that BM25
    ranks highest among those not containing any reference answer, labelled unanswerable."""
    if share <= 0:
        return []
    rng = random.Random(seed)
    by_title: dict[str, list[SquadExample]] = defaultdict(list)
    for example in examples:
        by_title[example.title].append(example)
    negatives = []
    for article in tqdm(by_title.values(), desc="retrieval negatives", unit="article", leave=False):
        paragraphs = sorted({ex.context for ex in article})
        chosen = [ex for ex in article if not ex.is_impossible and rng.random() < share]
        if len(paragraphs) < 2 or not chosen:
            continue
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenize(paragraphs, stopwords="en", show_progress=False), show_progress=False)
        queries = bm25s.tokenize([ex.question for ex in chosen], stopwords="en", return_ids=False, show_progress=False)
        depth = min(10, len(paragraphs))
        for example, tokens in zip(chosen, queries):
            if not tokens:
                continue
            ranked, _ = bm25.retrieve([tokens], k=depth, show_progress=False)
            negative = next((paragraphs[i] for i in ranked[0] if lacks_answer(paragraphs[i], example)), None)
            if negative is not None:
                negatives.append(unanswerable_twin(example, NEGATIVE_ID_SUFFIX, context=negative))
    return negatives


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
    """Pad a batch of windows to its longest one."""
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
