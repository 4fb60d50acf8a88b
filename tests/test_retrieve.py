import json

import pytest

from qa.search.retriever import RRF_K, Retriever, fuse
from qa.search.sync import open_index
from tests.conftest import SEEDS


@pytest.fixture(scope="module")
def retriever(tmp_path_factory, embedder):
    index = open_index(SEEDS, tmp_path_factory.mktemp("index"), embedder)
    return Retriever(index, embedder)


def seed_questions():
    records = [json.loads(line) for line in (SEEDS / "questions.jsonl").read_text().splitlines()]
    return [r for r in records if r["paragraph"]]


def test_meeting_question_finds_ayn_issa_paragraph_first(retriever):
    hits = retriever.retrieve("Where did the meeting take place?", top_k=3)
    assert hits[0].paragraph.text.startswith("The meeting reportedly occurred in Ayn Issa")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("query, expected", [("Tabqa", 7), ("700 civilians", 11), ("400 militants", 12)])
def test_names_and_numbers_are_found_by_bm25(retriever, query, expected):
    hits = retriever.retrieve(query, top_k=3)
    hit = next(h for h in hits if h.paragraph.paragraph == expected)
    assert hit.bm25_rank == 1 and hit.bm25_score > 0


def test_hits_carry_both_scores(retriever):
    hits = retriever.retrieve("How many militants remain in the city?", top_k=5)
    assert len(hits) == 5
    assert all(h.dense_score is not None and h.dense_rank is not None for h in hits)
    assert any(h.bm25_score is not None for h in hits)


def test_fused_score_is_the_reciprocal_rank_sum_of_both_lists(retriever):
    hits = retriever.retrieve("How many militants remain in the city?", top_k=5)
    for hit in hits:
        ranks = [rank for rank in (hit.dense_rank, hit.bm25_rank) if rank is not None]
        assert hit.score == pytest.approx(sum(1 / (RRF_K + rank) for rank in ranks))


def test_a_paragraph_both_lists_rank_high_beats_one_a_single_list_ranks_first():
    fused = fuse(({1: 0.9, 2: 0.8}, {3: 5.0, 2: 4.0}))
    assert max(fused, key=fused.get) == 2 and fused[1] == fused[3] == 1 / (RRF_K + 1)


def test_recall_at_3_on_the_seed_question_set(retriever):
    questions = seed_questions()
    found = sum(q["paragraph"] in [h.paragraph.id for h in retriever.retrieve(q["question"], 3)] for q in questions)
    assert found / len(questions) >= 0.95


def test_stopword_only_query_still_returns_dense_hits(retriever):
    hits = retriever.retrieve("the of and", top_k=2)
    assert len(hits) == 2 and all(h.bm25_score is None for h in hits)


def test_bm25_over_segments_scores_as_bm25s_over_the_whole_library(seeds_copy, tmp_path, embedder):
    """Documents added one at a time (a segment each) and one removed: BM25 computed over the segments at question
    time gives the scores bm25s gives when it indexes the library as it now is, from scratch."""
    import bm25s

    index_dir = tmp_path / "index"
    index = open_index(seeds_copy, index_dir, embedder)
    for name, text in [
        ("whales.md", "The blue whale is the largest animal known.\n\nWhales migrate to feed in cold water."),
        ("raqqa.txt", "Raqqa militants left the city.\n\nCivilians stayed in Raqqa after the militants left."),
        ("gone.txt", "A paragraph about militants and the meeting, soon removed from the library."),
    ]:
        (seeds_copy / name).write_text(text, encoding="utf-8")
        index = open_index(seeds_copy, index_dir, embedder, previous=index)
    (seeds_copy / "gone.txt").unlink()
    index = open_index(seeds_copy, index_dir, embedder, previous=index)
    assert len(index.segments) == 3 and len(index) == len(index.paragraphs())

    rows, paragraphs = index.rows(), index.paragraphs()
    reference = bm25s.BM25()
    reference.index(
        bm25s.tokenize([p.text for p in paragraphs], stopwords="en", show_progress=False), show_progress=False
    )
    for query in ["Where did the meeting take place?", "militants Raqqa", "largest whale whale", "the of and", "zzz"]:
        ours = index.lexical(query, len(paragraphs))
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        expected = {}
        if tokens[0]:
            positions, scores = reference.retrieve(tokens, k=len(paragraphs), show_progress=False)
            expected = {rows[int(p)]: float(s) for p, s in zip(positions[0], scores[0]) if s > 0}
        assert ours.keys() == expected.keys(), query
        for row, score in expected.items():
            assert ours[row] == pytest.approx(score, rel=1e-5), query
        assert list(ours.values()) == sorted(ours.values(), reverse=True)


def test_the_stop_words_are_those_of_bm25s():
    from bm25s.stopwords import STOPWORDS_EN

    from qa.search.lexical import STOPWORDS

    assert STOPWORDS == frozenset(STOPWORDS_EN)
