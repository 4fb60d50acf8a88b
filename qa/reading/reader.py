"""Extractive reader: windows over passages, one batched forward pass, vectorised span decoding.

transformers 5 ships no question-answering pipeline, so this module owns the whole path from
(question, passage) pairs to character spans:

1. ``encode_windows`` tokenises every pair into windows of at most ``max_length`` tokens that overlap
   by ``stride`` tokens, keeping char offsets and a mask of the passage tokens.
2. The model runs once over all windows (sorted by length, padded per batch).
3. ``best_spans`` finds, per window, the best (start, end) with ``end - start < max_answer_tokens``
   using a W x T x M band instead of the full T x T matrix, plus the window's null (CLS) score.
4. A span's score is ``span logit - null logit`` of its window: positive means the model prefers the
   span to "no answer". The reader answers only when that margin clears its stored threshold.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BatchEncoding

from qa.models import resolve_reader
from qa.models.runtime import choose_backend, load_encoder
from qa.reading.confidence import ConfidenceModel

CARD_NAME = "reader_card.json"
QUANTIZE_ENV = "QA_READER_QUANTIZE"


@dataclass(frozen=True)
class Span:
    """The best answer span the reader found in one passage."""

    passage_index: int  # position of the passage in the list given to ``Reader.read``
    start: int  # char offset of the answer in the passage (inclusive)
    end: int  # char offset of the answer in the passage (exclusive)
    text: str
    score: float  # span logit minus the window's null logit; higher is more confident

    def is_answer(self, threshold: float) -> bool:
        """True when the span beats "no answer" by more than ``threshold``."""
        return bool(self.text) and self.score > threshold


def encode_windows(
    tokenizer,
    questions: list[str],
    passages: list[str],
    max_length: int = 384,
    stride: int = 128,
    max_question_tokens: int = 64,
) -> BatchEncoding:
    """Tokenise (question, passage) pairs into overlapping windows.

    The result keeps ``offset_mapping`` (char offsets into the passage), ``overflow_to_sample_mapping``
    (window -> pair) and adds ``context_mask`` (1 where a token belongs to the passage). Questions are
    cut to ``max_question_tokens`` first so that a long question cannot squeeze the passage out.
    """
    questions = [truncate_question(tokenizer, q, max_question_tokens) for q in questions]
    encoding = tokenizer(
        questions,
        passages,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    encoding["context_mask"] = [
        [1 if sequence_id == 1 else 0 for sequence_id in encoding.sequence_ids(i)]
        for i in range(len(encoding["input_ids"]))
    ]
    return encoding


def truncate_question(tokenizer, question: str, max_tokens: int) -> str:
    """Cut a question to its first ``max_tokens`` tokens, on a token boundary."""
    offsets = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= max_tokens:
        return question
    return question[: offsets[max_tokens - 1][1]]


def span_band(
    start_logits: torch.Tensor, end_logits: torch.Tensor, context_mask: torch.Tensor, max_answer_tokens: int = 30
) -> torch.Tensor:
    """Scores of every span up to ``max_answer_tokens`` long, ``[W, T, width]``.

    ``band[w, i, k] = start[w, i] + end[w, i + k]`` over passage tokens (``context_mask``), ``-inf`` elsewhere:
    a band of the T x T span matrix, so that no span is longer than ``width = min(max_answer_tokens, T)``.
    """
    windows, tokens = start_logits.shape
    width = min(max_answer_tokens, tokens)
    valid = context_mask.bool()
    neg_inf = torch.tensor(float("-inf"), dtype=start_logits.dtype, device=start_logits.device)
    starts = torch.where(valid, start_logits, neg_inf)
    ends = torch.where(valid, end_logits, neg_inf)
    padded_ends = torch.cat([ends, neg_inf.expand(windows, width - 1)], dim=1)
    return starts.unsqueeze(-1) + padded_ends.unfold(dimension=1, size=width, step=1)


def best_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context_mask: torch.Tensor,
    max_answer_tokens: int = 30,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best span per window, vectorised.

    Args are ``[W, T]`` tensors. Returns ``(span_score, start, end, null_score)``, each ``[W]``:
    the best ``start_logit + end_logit`` over spans inside the passage with
    ``0 <= end - start < max_answer_tokens``, its token positions, and the window's CLS score.
    A window with no passage token gets ``-inf``.
    """
    band = span_band(start_logits, end_logits, context_mask, max_answer_tokens)
    windows, _, width = band.shape
    flat_best = band.reshape(windows, -1).max(dim=1)
    start = flat_best.indices // width
    end = start + flat_best.indices % width
    null_score = start_logits[:, 0] + end_logits[:, 0]
    return flat_best.values, start, end, null_score


class Reader:
    """An extractive QA model with its tokenizer, decoding settings and no-answer threshold. ``threads``: the ONNX
    Runtime intra-op threads (default: torch's thread count)."""

    def __init__(
        self,
        model_name_or_path: str | Path | None = None,
        *,
        threshold: float | None = None,
        max_length: int = 384,
        stride: int = 128,
        max_answer_tokens: int = 30,
        batch_size: int = 32,
        device: str | None = None,
        backend: str | None = None,
        quantize: str | None = None,
        threads: int | None = None,
    ):
        path = resolve_reader(model_name_or_path)
        self.name = str(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.is_fast:
            raise ValueError(f"Reader {self.name!r} has no fast tokenizer; char offsets need one.")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.backend = choose_backend(backend, path, self.device)
        self.quantize = self._quantization(quantize)
        self.model = self.encoder = None
        if self.backend == "onnx":
            self.encoder = load_encoder(
                path,
                "reader",
                lambda: AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32),
                self.tokenizer.model_input_names,
                ["start_logits", "end_logits"],
                self.quantize,
                threads,
            )
        else:
            self.model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
            self.model.to(self.device).eval()
        self.card = read_card(path)
        self.confidence_model = ConfidenceModel.from_card(self.card)  # None: confidences are margin softmaxes
        self.threshold = threshold if threshold is not None else float(self.card.get("threshold", 0.0))
        self.max_length = max_length
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.batch_size = batch_size

    def _quantization(self, asked: str | None) -> str | None:
        """ "int8" or None, from the argument, else ``$QA_READER_QUANTIZE`` ("int8" or "none"; default none).

        Opt-in: per-channel dynamic int8 weights on the ONNX backend cost the shipped reader 0.8 dev F1
        (62.2 -> 61.4), its scores then depend on what else is in the batch (activations are scaled per
        batch), and fresh seed questions lose F1 (88.0 -> 84.0) (benchmarks/bench_reader.py)."""
        asked = (asked or os.environ.get(QUANTIZE_ENV, "")).strip().lower() or "none"
        if asked not in ("none", "int8"):
            raise ValueError(f"Unknown quantisation {asked!r}; choose int8 or none.")
        if asked == "int8" and self.backend != "onnx":
            raise ValueError("quantize='int8' needs the ONNX backend (local folder, CPU, QA_BACKEND=onnx).")
        return "int8" if asked == "int8" else None

    def read(
        self, question: str, passages: list[str], stop_margin: float | None = None, first: Span | None = None
    ) -> list[Span]:
        """Best span in each passage for one question, best first.

        Without ``stop_margin`` all passages go through one batched forward pass. With it, ``passages`` are
        taken as ranked best first: the top passage is read alone, and when its span's score reaches
        ``stop_margin`` the others are not read (only the top passage's span is returned); otherwise the
        rest are read in one batch. ``first``: the top passage's span for this question, already read (a
        follow-up's chosen reading): it is not read again.
        """
        if first is None and (stop_margin is None or len(passages) < 2):
            spans = self.read_pairs([question] * len(passages), passages)
        else:
            spans = [replace(first, passage_index=0)] if first else self.read_pairs([question], passages[:1])
            if len(passages) > 1 and (stop_margin is None or spans[0].score < stop_margin):
                rest = self.read_pairs([question] * (len(passages) - 1), passages[1:])
                spans += [replace(span, passage_index=span.passage_index + 1) for span in rest]
        return sorted(spans, key=lambda span: span.score, reverse=True)

    def read_pairs(self, questions: list[str], passages: list[str]) -> list[Span]:
        """Best span for each (question, passage) pair, in input order."""
        if len(questions) != len(passages):
            raise ValueError("read_pairs needs as many questions as passages")
        if not passages:
            return []
        encoding = encode_windows(self.tokenizer, questions, passages, self.max_length, self.stride)
        span_score, start, end, null_score = self._score_windows(encoding)
        margin = (span_score - null_score).numpy()
        pair_of_window = np.asarray(encoding["overflow_to_sample_mapping"])
        spans = []
        for pair, passage in enumerate(passages):
            window_ids = np.flatnonzero(pair_of_window == pair)
            best = window_ids[np.argmax(margin[window_ids])]
            offsets = encoding["offset_mapping"][best]
            if not np.isfinite(margin[best]):
                spans.append(Span(pair, 0, 0, "", float("-inf")))
                continue
            char_start, char_end = whole_words(passage, offsets[int(start[best])][0], offsets[int(end[best])][1])
            spans.append(Span(pair, char_start, char_end, passage[char_start:char_end], float(margin[best])))
        return spans

    @torch.inference_mode()
    def _score_windows(self, encoding: BatchEncoding):
        """Run the model over all windows in length-sorted batches; decode each window's best span."""
        lengths = [len(ids) for ids in encoding["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        results = [None] * len(lengths)
        for batch_start in range(0, len(order), self.batch_size):
            batch_ids = order[batch_start : batch_start + self.batch_size]
            features = [
                {key: encoding[key][i] for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoding}
                for i in batch_ids
            ]
            batch = self.tokenizer.pad(features, return_tensors="np")
            width = batch["input_ids"].shape[1]
            context_mask = torch.tensor(
                [encoding["context_mask"][i] + [0] * (width - lengths[i]) for i in batch_ids],
                device=self.device,
            )
            start_logits, end_logits = self._logits(batch)
            decoded = best_spans(start_logits, end_logits, context_mask, self.max_answer_tokens)
            for row, window in enumerate(batch_ids):
                results[window] = tuple(value[row].item() for value in decoded)
        span_score, start, end, null_score = (torch.tensor(column) for column in zip(*results))
        return span_score, start, end, null_score

    def _logits(self, batch: BatchEncoding) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits ``[W, T]`` (float32) of a padded numpy batch."""
        if self.encoder is not None:
            start_logits, end_logits = self.encoder(batch)
            return torch.from_numpy(start_logits), torch.from_numpy(end_logits)
        output = self.model(**{key: torch.from_numpy(value).to(self.device) for key, value in batch.items()})
        return output.start_logits.float(), output.end_logits.float()


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen ``text[start:end]`` so that it neither starts nor ends inside a word."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return start, end


def read_card(path: str | Path) -> dict:
    """The reader card (training facts, threshold) stored beside a model folder, or {}."""
    card = Path(path) / CARD_NAME
    if not card.is_file():
        return {}
    return json.loads(card.read_text(encoding="utf-8"))


def write_card(folder: str | Path, card: dict) -> Path:
    """Write ``card`` as the reader card of ``folder`` through a temp file, so a crash leaves the old one."""
    path = Path(folder) / CARD_NAME
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(card, indent=2), encoding="utf-8")
    os.replace(temp, path)
    return path
