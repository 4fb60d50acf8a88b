"""Other ways to score "answer or decline" from the same logits, against the reader's own (the baseline: best
span score minus the null score, side by side on the same forward passes).

The reader answers when its best span beats "no answer" by more than a threshold; how well it trades answering
against declining is the curve of HasAns F1 against NoAns F1 as that threshold moves. This benchmark reads a
SQuAD 2.0 file's questions with their gold paragraphs once and, for each scoring, prints the span quality when
every question is answered, the best F1 over thresholds, and NoAns F1 where HasAns F1 first reaches 70, 72 and
75 (higher is a better curve):

    python benchmarks/bench_no_answer_score.py ../shared/data/squad/dev.json [--limit N] [--reader DIR [DIR ...]]

Several readers (of one tokenizer) are scored as a logit ensemble: their start and end logits averaged on each
window, at the cost of one forward pass each. That is what a single reader distilled from them is trained to
imitate, so it shows what distillation could give before hours of training are spent on it.

Scorings: ``span - null`` (the reader's), ``logsumexp(spans) - null`` (all the answer mass, not its best span),
``max start + max end - null`` (no length limit), and ``span - 0.1/token - null`` (shorter spans preferred when
choosing, the margin as before). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np
import torch

HAS_ANSWER_LEVELS = (70.0, 72.0, 75.0)
LENGTH_PENALTY = 0.1  # per token; the best of 0.05 / 0.1 / 0.2 / 0.3 / 0.5 for HasAns F1 on SQuAD dev


def choose_best(band: torch.Tensor) -> torch.Tensor:
    return band.reshape(len(band), -1).argmax(dim=1)


def choose_shorter(band: torch.Tensor) -> torch.Tensor:
    penalty = LENGTH_PENALTY * torch.arange(band.shape[-1], dtype=band.dtype)
    return (band - penalty).reshape(len(band), -1).argmax(dim=1)


def at(band: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    return band.reshape(len(band), -1).gather(1, choice[:, None])[:, 0]


# name -> (which span of a window is the answer, the window's answer-or-decline score given that span)
Scoring = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]]
SCORINGS: dict[str, Scoring] = {
    "span - null": (choose_best, lambda band, choice, logits: at(band, choice) - logits["null"]),
    "logsumexp(spans) - null": (
        choose_best,
        lambda band, choice, logits: torch.logsumexp(band.reshape(len(band), -1), dim=1) - logits["null"],
    ),
    "max start + max end - null": (
        choose_best,
        lambda band, choice, logits: (
            logits["start"].max(dim=1).values + logits["end"].max(dim=1).values - logits["null"]
        ),
    ),
    f"span - {LENGTH_PENALTY}/token - null": (
        choose_shorter,
        lambda band, choice, logits: at(band, choice) - logits["null"],
    ),
}


def ensemble_logits(readers) -> Callable:
    """A window batch -> (start, end) logits averaged over ``readers``, which must share one tokenizer."""
    vocabulary = readers[0].tokenizer.get_vocab()
    if any(reader.tokenizer.get_vocab() != vocabulary for reader in readers[1:]):
        raise SystemExit("An ensemble needs readers with one tokenizer: their windows must be the same tokens.")

    def logits(padded) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [reader._logits(padded) for reader in readers]
        return tuple(torch.stack(parts).mean(dim=0) for parts in zip(*outputs))

    return logits


def score_questions(readers, examples, chunk: int = 32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per scoring: (F1 of its span if answered, its answer-or-decline score), one entry per example; several
    readers are read as one ensemble (``ensemble_logits``), windowed as the first one windows."""
    from qa.evaluation.squad import score_answer
    from qa.reading.reader import encode_windows, span_band, whole_words

    reader, window_logits = readers[0], ensemble_logits(readers)
    results = {name: ([], []) for name in SCORINGS}
    for offset in range(0, len(examples), chunk):
        batch = examples[offset : offset + chunk]
        contexts = [e.context for e in batch]
        encoding = encode_windows(
            reader.tokenizer, [e.question for e in batch], contexts, reader.max_length, reader.stride
        )
        features = [
            {key: encoding[key][i] for key in reader.tokenizer.model_input_names}
            for i in range(len(encoding["input_ids"]))
        ]
        padded = reader.tokenizer.pad(features, return_tensors="np")
        width = padded["input_ids"].shape[1]
        mask = torch.tensor([row + [0] * (width - len(row)) for row in encoding["context_mask"]]).bool()
        with torch.inference_mode():
            start, end = window_logits(padded)
        band = span_band(start, end, mask, reader.max_answer_tokens)
        logits = {
            "start": start.masked_fill(~mask, float("-inf")),
            "end": end.masked_fill(~mask, float("-inf")),
            "null": start[:, 0] + end[:, 0],
        }
        window_of = np.asarray(encoding["overflow_to_sample_mapping"])
        windows_of = [np.flatnonzero(window_of == position) for position in range(len(batch))]
        choices = {choose: choose(band) for choose, _ in SCORINGS.values()}  # the span pickers, once each
        for name, (choose, score) in SCORINGS.items():
            choice = choices[choose]
            window_scores = score(band, choice, logits).numpy()
            for position, example in enumerate(batch):
                windows = windows_of[position]
                best = windows[np.argmax(window_scores[windows])]
                first = int(choice[best]) // band.shape[-1]
                last = first + int(choice[best]) % band.shape[-1]
                offsets = encoding["offset_mapping"][best]
                char_start, char_end = whole_words(contexts[position], offsets[first][0], offsets[last][1])
                results[name][0].append(score_answer(contexts[position][char_start:char_end], example.answers)[1])
                results[name][1].append(float(window_scores[best]))
    return {name: (np.array(f1), np.array(scores)) for name, (f1, scores) in results.items()}


def curve_figures(f1_if_answered: np.ndarray, scores: np.ndarray, impossible: np.ndarray) -> dict:
    """Span quality, best F1 and NoAns F1 at fixed HasAns F1 levels, answering questions best score first."""
    answerable, unanswerable = int((~impossible).sum()), int(impossible.sum())
    order = np.argsort(-scores, kind="stable")
    has_answer = (
        100 * np.concatenate([[0.0], np.cumsum(np.where(impossible[order], 0.0, f1_if_answered[order]))]) / answerable
    )
    no_answer = 100 * (unanswerable - np.concatenate([[0], np.cumsum(impossible[order])])) / unanswerable
    overall = (has_answer * answerable + no_answer * unanswerable) / len(scores)
    figures = {"HasAns_f1_answering_all": float(has_answer[-1]), "best_f1": float(overall.max())}
    for level in HAS_ANSWER_LEVELS:
        reached = np.flatnonzero(has_answer >= level)
        figures[f"NoAns_f1_at_HasAns_{level:g}"] = float(no_answer[reached[0]]) if len(reached) else None
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad_file", help="a SQuAD 2.0 file with answerable and unanswerable questions")
    parser.add_argument("--limit", type=int, help="a fixed random sample of N questions")
    parser.add_argument(
        "--reader", nargs="+", default=[None], help="reader folder(s) or hub id(s); several: their logits averaged"
    )
    args = parser.parse_args()

    from qa.evaluation.corpus import sample_examples
    from qa.evaluation.squad import load_squad
    from qa.reading.reader import Reader

    examples = sample_examples(load_squad(args.squad_file), args.limit)
    impossible = np.array([e.is_impossible for e in examples])
    if impossible.all() or not impossible.any():
        raise SystemExit("The file needs both answerable and unanswerable questions.")
    scored = score_questions([Reader(folder) for folder in args.reader], examples)
    figures = {name: curve_figures(f1, scores, impossible) for name, (f1, scores) in scored.items()}
    baseline = figures["span - null"]
    print(f"{len(examples)} questions ({int(impossible.sum())} unanswerable), gold paragraphs; baseline: span - null")
    for name, row in figures.items():
        cells = "  ".join(
            f"{key.replace('_f1', '').replace('_', ' ')} {value:6.2f} ({value - baseline[key]:+.2f})"
            for key, value in row.items()
            if value is not None
        )
        print(f"{name:28s} {cells}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
