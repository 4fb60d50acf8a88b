from dataclasses import replace

import pytest
import torch

from qa.reading.reader import Reader, best_spans, encode_windows, truncate_question, whole_words
from tests.conftest import needs_trained_reader

NEG = -100.0


def logits(values: dict[int, float], length: int = 10) -> torch.Tensor:
    row = torch.full((length,), NEG)
    for position, value in values.items():
        row[position] = value
    return row


def test_best_span_respects_max_answer_length():
    start = logits({0: 0.0, 2: 5.0, 3: 1.0}).unsqueeze(0)
    end = logits({0: 0.0, 3: 1.0, 8: 9.0}).unsqueeze(0)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1, 0]])
    score, s, e, null = best_spans(start, end, mask, max_answer_tokens=30)
    assert (s.item(), e.item(), score.item()) == (2, 8, 14.0)
    score, s, e, _ = best_spans(start, end, mask, max_answer_tokens=3)  # 2..8 is 7 tokens long: too long
    assert (s.item(), e.item(), score.item()) == (2, 3, 6.0)
    assert null.item() == 0.0


def test_best_span_never_ends_before_it_starts_or_leaves_the_passage():
    start = logits({1: 50.0, 6: 3.0}).unsqueeze(0)  # position 1 is in the question
    end = logits({4: 50.0, 7: 2.0}).unsqueeze(0)  # end 4 lies before start 6
    mask = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 1, 0]])
    _, s, e, _ = best_spans(start, end, mask, max_answer_tokens=30)
    assert (s.item(), e.item()) == (6, 7)


def test_best_span_is_per_window_and_matches_brute_force():
    torch.manual_seed(0)
    start, end = torch.randn(5, 40), torch.randn(5, 40)
    mask = torch.zeros(5, 40, dtype=torch.long)
    mask[:, 8:37] = 1
    score, s, e, _ = best_spans(start, end, mask, max_answer_tokens=6)
    for w in range(5):
        best = max((start[w, i] + end[w, j], i, j) for i in range(8, 37) for j in range(i, min(i + 6, 37)))
        assert score[w].item() == pytest.approx(best[0].item())
        assert (s[w].item(), e[w].item()) == (best[1], best[2])


def test_window_without_passage_tokens_scores_minus_infinity():
    score, *_ = best_spans(torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.long))
    assert score.item() == float("-inf")


def test_whole_words():
    text = "The Tabqa dam in May."
    assert whole_words(text, 5, 7) == (4, 9)  # "ab" inside "Tabqa"
    assert whole_words(text, 4, 9) == (4, 9)
    assert whole_words(text, 17, 20) == (17, 20)  # punctuation after "May" is a boundary
    assert whole_words(text, 18, 21) == (17, 21)  # widened left only


def test_windows_cover_a_long_passage_with_overlap(tiny_reader_dir):
    reader = Reader(tiny_reader_dir)
    passage = " ".join(f"word{i}" for i in range(600))
    encoding = encode_windows(reader.tokenizer, ["Which word?"], [passage], max_length=128, stride=32)
    windows = encoding["overflow_to_sample_mapping"]
    assert len(windows) > 5 and set(windows) == {0}
    covered = set()
    for w in range(len(windows)):
        ids = encoding["input_ids"][w]
        assert len(ids) <= 128
        for token, inside in enumerate(encoding["context_mask"][w]):
            if inside:
                covered.add(tuple(encoding["offset_mapping"][w][token]))
    assert max(end for _, end in covered) == len(passage)


def test_long_question_is_cut_to_token_limit(tiny_reader_dir):
    reader = Reader(tiny_reader_dir)
    question = "why " * 500
    cut = truncate_question(reader.tokenizer, question, 64)
    assert len(reader.tokenizer(cut, add_special_tokens=False)["input_ids"]) == 64


def test_reader_spans_are_exact_slices_of_their_passages(tiny_reader_dir):
    reader = Reader(tiny_reader_dir, max_length=64, stride=16)
    passages = ["Short passage about cats.", " ".join(["long"] * 300) + " end.", "Third one here, with a comma."]
    spans = reader.read("What is it?", passages)
    assert sorted(s.passage_index for s in spans) == [0, 1, 2]
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)
    for span in spans:
        assert passages[span.passage_index][span.start : span.end] == span.text
        assert span.end - span.start > 0
    assert reader.read("Anything?", []) == []


UNSEEN_PARAGRAPH = (
    "The Harbour Library opened in 1921 in the town of Port Ellery. It was designed by the architect "
    "Margaret Vane and holds about 40,000 books. In 1987 a fire destroyed its east wing, which was "
    "rebuilt two years later."
)


@needs_trained_reader
def test_trained_reader_answers_an_unseen_paragraph_and_declines_what_it_cannot_answer():
    reader = Reader()
    paragraph = UNSEEN_PARAGRAPH
    questions = {
        "Who designed the Harbour Library?": "Margaret Vane",
        "When did the Harbour Library open?": "1921",
        "How many books does the library hold?": "about 40,000",
        "In which town is the Harbour Library?": "Port Ellery",
    }
    for question, expected in questions.items():
        span = reader.read(question, [paragraph])[0]
        assert span.is_answer(reader.threshold), question
        assert expected in span.text or span.text in expected, (question, span.text)
    unanswerable = reader.read("What is the boiling point of mercury?", [paragraph])[0]
    assert not unanswerable.is_answer(reader.threshold)


OTHER_PARAGRAPH = "The committee meets every spring to review the budget of the regional museum and its archive."
HARBOUR_QUESTION = "Who designed the Harbour Library?"


@needs_trained_reader
def test_early_stop_skips_lower_passages_only_when_the_top_one_is_confident():
    reader = Reader()
    other, question = OTHER_PARAGRAPH, HARBOUR_QUESTION
    everything = reader.read(question, [UNSEEN_PARAGRAPH, other, other])
    assert len(everything) == 3 and everything[0].passage_index == 0
    confident = reader.read(question, [UNSEEN_PARAGRAPH, other, other], stop_margin=everything[0].score - 0.01)
    assert confident == everything[:1]  # the top passage alone, same span
    unsure = reader.read(question, [UNSEEN_PARAGRAPH, other, other], stop_margin=everything[0].score + 0.01)
    assert unsure == everything
    buried = reader.read(question, [other, UNSEEN_PARAGRAPH, other], stop_margin=everything[0].score + 0.01)
    assert buried[0].passage_index == 1 and buried[0].text == everything[0].text  # indices stay in input order


@needs_trained_reader
def test_a_top_span_already_read_is_reused_not_read_again():
    reader = Reader()
    other, question = OTHER_PARAGRAPH, HARBOUR_QUESTION
    everything = reader.read(question, [UNSEEN_PARAGRAPH, other, other])
    first = reader.read_pairs([question], [UNSEEN_PARAGRAPH])[0]
    assert reader.read(question, [UNSEEN_PARAGRAPH, other, other], first=first) == everything
    # confident enough to stop: nothing else is read, and the given span comes back as the top passage's
    planted = replace(first, score=first.score + 100.0, passage_index=5)
    stopped = reader.read(question, [UNSEEN_PARAGRAPH, other, other], stop_margin=first.score, first=planted)
    assert stopped == [replace(planted, passage_index=0)]
