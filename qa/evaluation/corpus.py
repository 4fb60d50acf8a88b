"""Score the whole system on a SQuAD-format file (``qa reader eval-corpus``): retrieval, reading and the no-answer
decision together, as a user meets them.

Each article of the file becomes one document (its paragraphs separated by blank lines) in a temporary
folder, which the product indexes with its own path; every question then goes through ``QA.answer()``. A
question's gold paragraphs are the product paragraphs that hold its answer, so recall@k says whether the
retriever handed the reader the right text. ``choose_settings`` picks the no-answer threshold and the
early-stop margin that maximise end-to-end F1 (run it on held-out training articles, never on dev).
"""

from __future__ import annotations

import math
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qa.documents.paragraphs import Paragraph
from qa.evaluation.squad import SquadExample, load_squad, score_answer, squad_v2_metrics, threshold_curve
from qa.models import resolve_reader
from qa.pipeline import QA
from qa.reading.confidence import RIGHT_F1, calibration_report
from qa.reading.reader import read_card, write_card

STOP_MARGINS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, math.inf)  # searched by choose_settings (inf: read every passage)
# choose_settings treats F1 gaps below this many points as noise (on 1,500 questions one question is 0.07 points
# and the F1's standard error about 1 point). Within it, it takes the stop margin that reads least (reading one
# passage instead of three saves about a third of the answer time) and, for that stop margin, the highest
# threshold: a declined answer near the threshold is still shown, as "Not sure" evidence, while a wrong answer
# above it is highlighted as if right. On held-out articles the F1 curve is flat around its peak (the shipped
# reader: 73.3 at 0.96, 72.8 at 2.05), and the caution pays on questions that look answerable but are not: on
# SQuAD dev, NoAns F1 43.0 at 2.05 against 36.4 at 1 (HasAns 68.1 against 70.6).
F1_TOLERANCE = 0.5


@dataclass
class CorpusRun:
    """One question through the system: its prediction, what was retrieved and every span the reader read."""

    example: SquadExample
    gold: set[str]  # ids ("doc#n") of the product paragraphs holding the answer; empty when unanswerable
    prediction: str
    retrieved: list[str]
    seconds: float
    spans: list[tuple[int, float, str]] = field(default_factory=list)  # (retrieval rank, margin, text)
    confidence: float = 0.0  # how likely the shown answer (or, declined, the best candidate) is right

    @property
    def right(self) -> bool:
        """The prediction is an answer with token F1 >= 0.5 against a gold answer (never for unanswerables)."""
        return (
            bool(self.prediction and self.example.answers)
            and score_answer(self.prediction, self.example.answers)[1] >= RIGHT_F1
        )


def sample_examples(examples: list[SquadExample], limit: int | None, seed: int = 0) -> list[SquadExample]:
    """A fixed random sample of ``limit`` examples (all when ``limit`` is None), in file order."""
    if not limit or limit >= len(examples):
        return examples
    chosen = set(random.Random(seed).sample(range(len(examples)), limit))
    return [example for position, example in enumerate(examples) if position in chosen]


def write_corpus(examples: list[SquadExample], folder: Path) -> dict[str, tuple[str, int]]:
    """One ``.txt`` document per article in ``folder``; returns context -> (doc_id, char offset in the document)."""
    folder.mkdir(parents=True, exist_ok=True)
    articles: dict[str, dict[str, None]] = {}
    for example in examples:
        articles.setdefault(example.title, {})[example.context] = None
    where = {}
    for number, (title, contexts) in enumerate(articles.items()):
        doc_id = f"{number:04d}_{re.sub(r'[^A-Za-z0-9]+', '_', title)[:60].strip('_') or 'article'}.txt"
        offset, parts = 0, []
        for context in contexts:
            where.setdefault(context, (doc_id, offset))
            parts.append(context)
            offset += len(context) + 2
        (folder / doc_id).write_text("\n\n".join(parts), encoding="utf-8")
    return where


def gold_paragraphs(example: SquadExample, where: dict[str, tuple[str, int]], spans_by_doc: dict) -> set[str]:
    """Ids of the product paragraphs overlapping the example's first answer (none when unanswerable)."""
    if example.is_impossible:
        return set()
    doc_id, offset = where[example.context]
    start = offset + example.answer_start
    end = start + len(example.answers[0])
    return {pid for pid, p_start, p_end in spans_by_doc.get(doc_id, []) if p_start < end and start < p_end}


def gold_finder(where: dict[str, tuple[str, int]], paragraphs: list[Paragraph]) -> Callable[[SquadExample], set[str]]:
    """A function giving each example the ids of its gold paragraphs among ``paragraphs`` (the product's split
    of the documents ``write_corpus`` wrote, as the index holds them; ``gold_paragraphs``)."""
    spans_by_doc: dict[str, list] = {}
    for paragraph in paragraphs:
        spans_by_doc.setdefault(paragraph.doc_id, []).append((paragraph.id, paragraph.start, paragraph.end))
    return lambda example: gold_paragraphs(example, where, spans_by_doc)


def answer_all(qa: QA, questions: list[SquadExample], gold_of, progress: bool = True) -> list[CorpusRun]:
    """Put each question through ``qa.answer()`` (after one warm-up answer) and keep what happened."""
    qa.index(progress=progress)
    qa.answer(questions[0].question)  # load the models outside the timed loop
    runs = []
    for example in tqdm(questions, desc="questions", unit="q", disable=not progress):
        started = time.perf_counter()
        answer = qa.answer(example.question)
        seconds = time.perf_counter() - started
        rank_of = {(hit.paragraph.doc_id, hit.paragraph.paragraph): rank for rank, hit in enumerate(answer.hits)}
        runs.append(
            CorpusRun(
                example=example,
                gold=gold_of(example),
                prediction=answer.text,
                retrieved=[hit.paragraph.id for hit in answer.hits],
                seconds=seconds,
                spans=[(rank_of[(c.doc_id, c.paragraph)], c.score, c.text) for c in answer.candidates],
                confidence=answer.confidence,
            )
        )
    return runs


def corpus_metrics(runs: list[CorpusRun]) -> dict:
    """SQuAD 2.0 figures of the predictions, retrieval recall@1/@3 of the gold paragraph, latency, and how well
    the answers' confidences are calibrated (``qa.reading.confidence.calibration_report``)."""
    examples = [run.example for run in runs]
    metrics = squad_v2_metrics(examples, {run.example.id: run.prediction for run in runs})
    answerable = [run for run in runs if run.gold]
    for k in (1, 3):
        hit = [bool(run.gold & set(run.retrieved[:k])) for run in answerable]
        metrics[f"recall@{k}"] = 100 * float(np.mean(hit)) if hit else None
    metrics["lost_to_other_paragraph"] = 100 * lost_to_other_paragraph(answerable) if answerable else None
    latencies = 1000 * np.array([run.seconds for run in runs])
    metrics["latency_ms_p50"] = float(np.percentile(latencies, 50))
    metrics["latency_ms_p95"] = float(np.percentile(latencies, 95))
    metrics.update(
        calibration_report(
            [run.confidence for run in runs], [run.right for run in runs], [bool(run.prediction) for run in runs]
        )
    )
    return metrics


def lost_to_other_paragraph(answerable: list[CorpusRun]) -> float:
    """Share of answerable questions whose gold paragraph was read and gave a right span (F1 >= 0.5) whose
    margin lost to a wrong span from another paragraph: what making span scores comparable across paragraphs
    (e.g. shared normalisation in training) could win back at most."""
    lost = 0
    for run in answerable:
        gold_ranks = {rank for rank, paragraph_id in enumerate(run.retrieved) if paragraph_id in run.gold}
        gold_spans = [span for span in run.spans if span[0] in gold_ranks]
        if not gold_spans:
            continue
        best_gold = max(gold_spans, key=lambda span: span[1])
        best = max(run.spans, key=lambda span: span[1])
        right = score_answer(best_gold[2], run.example.answers)[1] >= RIGHT_F1
        lost += right and best[0] not in gold_ranks and score_answer(best[2], run.example.answers)[1] < RIGHT_F1
    return lost / len(answerable)


def sample_keeping(questions: list[SquadExample], kept: list[SquadExample], limit: int | None) -> list[SquadExample]:
    """A fixed random sample of ``limit`` of ``questions`` that holds all of ``kept`` (some of ``questions``),
    ``kept`` first; all questions when ``limit`` is None.

    Used to keep a file's own unanswerable questions: SQuAD 2.0 wrote them to look answerable from their
    paragraph, and a plain 1,500-question sample of the held-out training articles held only 22 of them (against
    485 out-of-corpus ones, which are easy to decline), too few to weigh in choosing the threshold."""
    if not limit or limit >= len(questions):
        return questions
    if len(kept) >= limit:
        return sample_examples(kept, limit)
    kept_ids = {example.id for example in kept}
    rest = [example for example in questions if example.id not in kept_ids]
    return kept + sample_examples(rest, limit - len(kept))


def split_foreign(examples: list[SquadExample], share: float, seed: int = 0):
    """(corpus examples, questions) where a seeded half of the articles stays out of the corpus and its
    questions, relabelled unanswerable, make up ``share`` of the questions: questions about things the
    documents never mention, as users ask them."""
    titles = sorted({ex.title for ex in examples})
    random.Random(seed).shuffle(titles)
    outside = set(titles[: len(titles) // 2])
    corpus = [ex for ex in examples if ex.title not in outside]
    foreign = [replace(ex, answers=(), answer_start=-1) for ex in examples if ex.title in outside]
    wanted = min(len(foreign), round(len(corpus) * share / (1 - share)))
    return corpus, corpus + sample_examples(foreign, wanted, seed)


def evaluate_corpus(
    squad_file: str | Path,
    make_qa,
    limit: int | None = None,
    choose: bool = False,
    progress: bool = True,
    foreign_share: float = 0.0,
    keep_unanswerable: bool = False,
) -> tuple[dict, list[CorpusRun], list[dict]]:
    """Index ``squad_file``'s articles and answer (a fixed sample of ``limit`` of) its questions through
    ``make_qa(documents_dir, index_dir)``. Returns the metrics, the runs and, with ``choose``, the
    ``choose_settings`` table from a second pass that reads every retrieved passage. With ``foreign_share``,
    half of the articles are left out of the corpus and their questions asked as unanswerable
    (``split_foreign``). With ``keep_unanswerable`` the sample holds every question that the file itself marks
    unanswerable (``sample_keeping``)."""
    examples = load_squad(squad_file)
    if not examples:
        raise ValueError(f"{squad_file} holds no questions.")
    questions = examples
    if foreign_share > 0:
        examples, questions = split_foreign(examples, foreign_share)
    kept = [example for example in examples if example.is_impossible] if keep_unanswerable else []
    questions = sample_keeping(questions, kept, limit)
    with tempfile.TemporaryDirectory(prefix="qa-eval-corpus-") as temp:
        documents, index = Path(temp) / "documents", Path(temp) / "index"
        where = write_corpus(examples, documents)
        qa = make_qa(documents, index)
        gold_of = gold_finder(where, qa.index(progress=progress).paragraphs())
        runs = answer_all(qa, questions, gold_of, progress)
        choices = []
        if choose:  # the same models and index, now reading every retrieved passage
            qa.stop_margin_override = math.inf
            choices = choose_settings(answer_all(qa, questions, gold_of, progress))
    return corpus_metrics(runs), runs, choices


def store_settings(reader_name: str | Path | None, choice: dict, source: str | Path) -> Path:
    """Write a ``choose_settings`` row's threshold and stop margin into the reader's card (atomically). The
    training's gold-paragraph threshold moves into ``calibration``, beside the metrics measured at it."""
    folder = Path(resolve_reader(reader_name))
    if not folder.is_dir():
        raise ValueError(f"--store needs a reader folder; {folder} is not one.")
    card = read_card(folder)
    if "calibration" in card and "threshold" in card:
        card["calibration"].setdefault("threshold", card["threshold"])
    card["threshold"] = choice["threshold"]
    card["stop_margin"] = choice["stop_margin"] if math.isfinite(choice["stop_margin"]) else None
    card["end_to_end_choice"] = {"file": str(source), **{k: v for k, v in choice.items() if k != "threshold"}}
    return write_card(folder, card)


def choose_settings(runs: list[CorpusRun], stop_margins=STOP_MARGINS) -> list[dict]:
    """End-to-end F1 for each stop margin at its most cautious good threshold (the highest whose F1 is within
    ``F1_TOLERANCE`` of that stop margin's best); the row to store first (of the stop margins whose best F1 is
    within ``F1_TOLERANCE`` of the best of all, the one that most often reads one passage only), then the rest
    by best F1.

    ``runs`` must come from a system that read every retrieved passage (stop margin inf): each stop margin is
    then replayed exactly: the top-ranked passage's span alone when its margin reaches the stop margin, else
    the best span of all."""
    examples = [run.example for run in runs]
    rows = []
    for stop_margin in stop_margins:
        texts, margins = {}, {}
        for run in runs:
            best = _replayed_best(run.spans, stop_margin)
            texts[run.example.id], margins[run.example.id] = (best[2], best[1]) if best else ("", -math.inf)
        curve = threshold_curve(examples, margins, texts)
        best_f1 = max(f1 for _, f1 in curve)
        threshold = max(threshold for threshold, f1 in curve if f1 >= best_f1 - F1_TOLERANCE)
        predictions = {i: (texts[i] if margins[i] > threshold else "") for i in texts}
        metrics = squad_v2_metrics(examples, predictions)
        read_one = sum(1 for run in runs if run.spans and _first_passage_stops(run.spans, stop_margin))
        rows.append(
            {
                "stop_margin": stop_margin,
                "threshold": threshold,
                **metrics,
                "best_f1": best_f1,
                "read_one_share": read_one / len(runs),
            }
        )
    top_f1 = max(row["best_f1"] for row in rows)
    close = [row for row in rows if row["best_f1"] >= top_f1 - F1_TOLERANCE]
    chosen = max(close, key=lambda row: (row["read_one_share"], row["best_f1"], row["stop_margin"]))
    return [chosen] + sorted((row for row in rows if row is not chosen), key=lambda row: -row["best_f1"])


def _first_passage_stops(spans: list[tuple[int, float, str]], stop_margin: float) -> bool:
    top = [span for span in spans if span[0] == 0]
    return bool(top) and top[0][1] >= stop_margin


def _replayed_best(spans: list[tuple[int, float, str]], stop_margin: float) -> tuple[int, float, str] | None:
    if not spans:
        return None
    if _first_passage_stops(spans, stop_margin):
        return next(span for span in spans if span[0] == 0)
    return max(spans, key=lambda span: span[1])
