import json

import pytest
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from qa.cli import main
from qa.evaluation.squad import SquadExample, load_squad, write_squad
from qa.reading.reader import Reader, encode_windows
from qa.training.checkpoints import latest_checkpoint
from qa.training.examples import (
    label_positions,
    retrieval_negatives,
    split_calibration,
    take_shard,
)
from qa.training.held_out import never_trained_titles
from qa.training.train import EXAMPLES_NAME, TrainConfig, train, training_examples
from qa.training.twins import (
    answer_cut_twins,
    antonym_questions,
    paragraph_swapped_questions,
    sentence_spans,
    swapped_questions,
)

PARAGRAPHS = [
    (
        "Ayn Issa",
        "The meeting reportedly occurred in Ayn Issa, the interim base for Raqqa Civil Council.",
        [
            ("Where did the meeting occur?", "Ayn Issa"),
            ("What is Ayn Issa the base for?", "Raqqa Civil Council"),
            ("Who won the cup?", None),
        ],
    ),
    (
        "Tabqa",
        "A similar deal was reached between the SDF and ISIS at the Tabqa dam in May.",
        [
            ("When was the deal reached?", "May"),
            ("Where was the deal reached?", "the Tabqa dam"),
            ("What colour is the sky?", None),
        ],
    ),
    (
        "Dillon",
        "Dillon said that at least 700 civilians were evacuated since Monday.",
        [("How many civilians were evacuated?", "at least 700"), ("Since when?", "Monday")],
    ),
]


@pytest.fixture()
def squad_file(tmp_path):
    data = []
    for title, context, questions in PARAGRAPHS:
        qas = []
        for number, (question, answer) in enumerate(questions):
            answers = [{"text": answer, "answer_start": context.index(answer)}] if answer else []
            qas.append(
                {"id": f"{title}-{number}", "question": question, "answers": answers, "is_impossible": answer is None}
            )
        data.append({"title": title, "paragraphs": [{"context": context, "qas": qas}]})
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    return path


def test_labels_point_at_the_answer_tokens(squad_file, tiny_reader_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_reader_dir)
    for example in load_squad(squad_file):
        encoding = encode_windows(tokenizer, [example.question], [example.context], max_length=64, stride=16)
        start, end = label_positions(example, encoding["offset_mapping"][0], encoding["context_mask"][0])
        if example.is_impossible:
            assert (start, end) == (0, 0)
        else:
            offsets = encoding["offset_mapping"][0]
            assert example.context[offsets[start][0] : offsets[end][1]] == example.answers[0]


def test_answer_outside_the_window_points_at_cls(tiny_reader_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_reader_dir)
    context = "filler " * 100 + "Ayn Issa is the place."
    example = SquadExample("x", "t", "Where?", context, ("Ayn Issa",), context.index("Ayn Issa"))
    encoding = encode_windows(tokenizer, ["Where?"], [context], max_length=48, stride=16)
    labels = [
        label_positions(example, encoding["offset_mapping"][w], encoding["context_mask"][w])
        for w in range(len(encoding["input_ids"]))
    ]
    assert labels[0] == (0, 0) and labels[-1] != (0, 0)


def test_calibration_split_holds_out_whole_articles(squad_file):
    examples = load_squad(squad_file)
    kept, held = split_calibration(examples, 0.34, seed=1)
    assert held and kept
    assert not {e.title for e in kept} & {e.title for e in held}


def test_a_stage_holds_out_the_articles_its_base_was_calibrated_on_whatever_its_seed(squad_file, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "reader_card.json").write_text(json.dumps({"calibration": {"titles": ["Tabqa", "Not in this data"]}}))
    for seed in (1, 2, 3):
        config = TrainConfig([str(squad_file)], str(tmp_path / "stage"), base=str(base), seed=seed)
        _, calibration = training_examples(config)
        assert {e.title for e in calibration} == {"Tabqa"}

    averaged = tmp_path / "averaged"  # an average has no titles in its card, only its first parent's file
    averaged.mkdir()
    write_squad(averaged / "calibration.json", [e for e in load_squad(squad_file) if e.title == "Dillon"])
    _, calibration = training_examples(TrainConfig([str(squad_file)], str(tmp_path / "s2"), base=str(averaged)))
    assert {e.title for e in calibration} == {"Dillon"}

    no_card = TrainConfig([str(squad_file)], str(tmp_path / "s3"), base=str(tmp_path), calibration_fraction=0.34)
    assert training_examples(no_card)[1] == split_calibration(load_squad(squad_file), 0.34, seed=13)[1]


def test_a_stage_records_the_articles_its_base_held_out_from_files_it_never_read(squad_file, tmp_path):
    """A stage on one file keeps its lineage's held-out articles of other files on record (an average of it and
    its base can choose a threshold on them), but not those it trained on."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "reader_card.json").write_text(json.dumps({"calibration": {"titles": ["Tabqa", "Of another file"]}}))
    trained, calibration = training_examples(TrainConfig([str(squad_file)], str(tmp_path / "stage"), base=str(base)))
    assert {e.title for e in calibration} == {"Tabqa"} and "Tabqa" not in {e.title for e in trained}
    assert never_trained_titles(str(base), trained, calibration) == {"Tabqa", "Of another file"}
    assert never_trained_titles(str(base), trained + calibration, []) == {"Of another file"}  # trained: not on record
    assert never_trained_titles(str(tmp_path / "no card"), trained, calibration) == {"Tabqa"}


def test_short_training_run_lowers_the_loss_and_checkpoints_load_back(squad_file, tiny_reader_dir, tmp_path):
    output = tmp_path / "reader"
    config = TrainConfig(
        train_files=[str(squad_file)],
        output=str(output),
        base=str(tiny_reader_dir),
        epochs=12,
        learning_rate=3e-3,
        batch_size=4,
        max_length=64,
        stride=16,
        warmup_fraction=0.0,
        calibration_fraction=0.34,
        dev_file=str(squad_file),
    )
    card = train(config)
    losses = card["epoch_losses"]
    assert len(losses) == 12 and losses[-1] < losses[0] * 0.7
    stored = json.loads((output / "reader_card.json").read_text())
    assert stored["threshold"] == card["threshold"] and stored["data"][0]["sha256"]
    assert set(card["dev"]) >= {"exact", "f1", "HasAns_f1", "NoAns_f1", "total"}
    reader = Reader(output, backend="torch")
    assert reader.threshold == card["threshold"]
    assert str(next(reader.model.parameters()).dtype) == "torch.float32"  # stored float16, loaded float32
    checkpoint = latest_checkpoint(output)
    assert checkpoint.name == f"step-{card['steps']}"
    assert AutoModelForQuestionAnswering.from_pretrained(checkpoint) is not None

    resumed = train(TrainConfig(**{**config.__dict__, "epochs": 13}), resume=True)
    assert resumed["steps"] == card["steps"] + card["steps"] // 12
    assert latest_checkpoint(output).name == f"step-{resumed['steps']}"
    assert len(list((output / "checkpoints").iterdir())) == 2  # only the newest two are kept


def test_a_run_stopped_mid_epoch_resumes_where_it_stopped(squad_file, tiny_reader_dir, tmp_path):
    """Checkpoints inside an epoch: a stopped run continues with the next batch, not from the epoch start."""
    common = dict(
        train_files=[str(squad_file)],
        base=str(tiny_reader_dir),
        epochs=1,
        batch_size=1,
        max_length=64,
        stride=16,
        calibration_fraction=0.0,
        checkpoint_minutes=0.0,  # a checkpoint after every step
        precision="fp32",
    )
    whole = train(TrainConfig(output=str(tmp_path / "whole"), **common))
    stopped = train(TrainConfig(output=str(tmp_path / "split"), max_steps=3, **common))
    assert stopped["steps"] == 3
    resumed = train(TrainConfig(output=str(tmp_path / "split"), **common), resume=True)
    assert resumed["steps"] == whole["steps"] == len(load_squad(squad_file))
    assert resumed["epoch_losses"] and resumed["train_features"] == whole["train_features"]


def test_retrieval_negatives_are_other_paragraphs_of_the_article_without_the_answer():
    article = [
        "The Tabqa dam holds Lake Assad on the Euphrates river.",
        "The deal at the dam was reached in May between the SDF and ISIS.",
        "Raqqa lies on the Euphrates river east of the dam.",
    ]
    examples = [
        SquadExample("q1", "Dam", "When was the deal at the dam reached?", article[1], ("May",), 35),
        SquadExample("q2", "Dam", "Which lake does the Tabqa dam hold?", article[0], ("Lake Assad",), 20),
        SquadExample("q3", "Dam", "Who built the dam?", article[0], (), -1),
    ]
    negatives = retrieval_negatives(examples, share=1.0, seed=0)
    assert [n.id for n in negatives] == ["q1#negative", "q2#negative"]  # unanswerable questions get none
    for negative, source in zip(negatives, examples):
        assert negative.is_impossible and negative.question == source.question
        assert negative.context in article and negative.context != source.context
        assert source.answers[0] not in negative.context
    assert retrieval_negatives(examples, share=0.0, seed=0) == []


def test_swapped_questions_name_what_another_article_asks_about_and_are_unanswerable():
    dam = "The deal at the Tabqa dam was reached in May 2017 between the SDF and ISIS."
    examples = [
        SquadExample("q1", "Dam", "When was the deal at the Tabqa dam reached?", dam, ("May 2017",), 33),
        SquadExample("q2", "Dam", "In which year was the deal reached?", dam, ("2017",), 37),
        SquadExample("q3", "Dam", "Who built the Tabqa dam?", dam, (), -1),
        SquadExample("p1", "Paris", "What river flows through Paris?", "Paris lies on the Seine.", ("Seine",), 17),
        SquadExample(
            "p2", "Paris", "What did Haussmann rebuild in 1853?", "In 1853 Haussmann rebuilt Paris.", ("Paris",), 26
        ),
    ]
    swapped = {s.id: s for s in swapped_questions(examples, share=1.0, seed=0)}
    # q2 names nothing the paragraph names after its first word; q3 is unanswerable already
    assert set(swapped) == {"q1#swapped", "p1#swapped", "p2#swapped"}
    assert swapped["q1#swapped"].question in {
        "When was the deal at the Paris dam reached?",
        "When was the deal at the Haussmann dam reached?",
    }
    assert swapped["p1#swapped"].question == "What river flows through Tabqa?"
    # no other article asks about a year, and "Paris" is in this paragraph: only "Tabqa" can stand in
    assert swapped["p2#swapped"].question == "What did Tabqa rebuild in 1853?"
    for twin in swapped.values():
        assert twin.is_impossible and twin.answer_start == -1
        assert twin.context == next(e.context for e in examples if twin.id.startswith(e.id + "#"))
    assert swapped_questions(examples, share=1.0, seed=0) == list(swapped.values())  # seeded
    assert swapped_questions(examples, share=0.0, seed=0) == []


def test_antonym_questions_ask_for_the_opposite_that_the_paragraph_never_says_and_are_unanswerable():
    mayors = "Ryan Dillon became the first mayor of Raqqa in 2017; the oldest council member is 80."
    examples = [
        SquadExample("m1", "Raqqa", "Who was the first mayor of Raqqa?", mayors, ("Ryan Dillon",), 0),
        SquadExample("m2", "Raqqa", "How old is the oldest council member?", mayors, ("80",), 84),
        SquadExample("m3", "Raqqa", "First, who became mayor?", mayors, ("Ryan Dillon",), 0),
        SquadExample("m4", "Raqqa", "Who was the largest donor?", "The smallest donor gave $5.", ("$5",), 0),
        SquadExample("m5", "Raqqa", "What was the last mayor's name?", "The final mayor was Ryan.", ("Ryan",), 21),
        SquadExample("m6", "Raqqa", "Who was the first mayor?", mayors, (), -1),
    ]
    twins = {t.id: t for t in antonym_questions(examples, share=1.0, seed=0)}
    # m3 has the word first only; m4's paragraph says "smallest"; m6 is unanswerable already
    assert set(twins) == {"m1#antonym", "m2#antonym", "m5#antonym"}
    assert twins["m1#antonym"].question == "Who was the last mayor of Raqqa?"
    assert twins["m2#antonym"].question == "How old is the youngest council member?"
    assert twins["m5#antonym"].question == "What was the first mayor's name?"
    for twin in twins.values():
        assert twin.is_impossible and twin.answer_start == -1
    # "first" -> "last" is refused where the paragraph says "final" (the same as "last")
    final = SquadExample("f", "Raqqa", "Who was the first mayor?", "The final mayor was Ryan Dillon.", ("Ryan",), 0)
    assert antonym_questions([final], share=1.0, seed=0) == []
    assert antonym_questions(examples, share=1.0, seed=0) == list(twins.values())  # seeded
    assert antonym_questions(examples, share=0.0, seed=0) == []


def test_paragraph_swapped_questions_name_another_of_the_paragraph_not_tied_to_the_question():
    tesla = "In 1884 Tesla moved to New York, where Edison hired him. Later, Westinghouse hired engineers in Boston."
    examples = [
        SquadExample("t1", "Tesla", "When did Tesla move to Boston?", tesla, ("1884",), 3),
        SquadExample("t2", "Tesla", "Who hired engineers in Boston?", tesla, ("Westinghouse",), tesla.index("West")),
        SquadExample("t3", "Tesla", "Who hired Tesla?", tesla, ("Edison",), tesla.index("Edison")),
        SquadExample("t4", "Tesla", "Who hired Tesla in May?", tesla, (), -1),
    ]
    twins = {t.id: t for t in paragraph_swapped_questions(examples, share=1.0, seed=0)}
    assert set(twins) == {"t1#paragraph-swapped", "t2#paragraph-swapped", "t3#paragraph-swapped"}  # t4: no answer
    for twin in twins.values():
        assert twin.is_impossible and twin.answer_start == -1 and twin.context == tesla
        source = next(e for e in examples if twin.id.startswith(e.id + "#"))
        new = set(twin.question.rstrip("?").split()) - set(source.question.rstrip("?").split())
        # one name of the paragraph stands in, never the answer, never a word that only starts a sentence
        assert new and " ".join(sorted(new)) in {"Edison", "Westinghouse", "Tesla", "Boston", "New York"}
        assert not new & set(source.answers[0].split()) and "Later" not in new
    # "New York" is named with "moved" and "Tesla": asked "When did Tesla move to New York?" the paragraph answers
    assert "New York" not in twins["t1#paragraph-swapped"].question
    # the only other name is written beside the question's other words: the paragraph may answer, so no twin
    both = SquadExample(
        "b", "T", "When did Edison move to New York?", "In 1884 Tesla moved to New York with Edison.", ("1884",), 3
    )
    assert paragraph_swapped_questions([both], share=1.0, seed=0) == []
    # a word that starts a sentence after a citation mark is no name either: "... cold.[1] However, ..."
    cited = SquadExample(
        "c",
        "T",
        "When did Tesla move to New York?",
        "Tesla moved to New York in 1884. It was cold.[1] However, he stayed.",
        ("1884",),
        27,
    )
    assert paragraph_swapped_questions([cited], share=1.0, seed=0) == []
    assert paragraph_swapped_questions(examples, share=1.0, seed=0) == list(twins.values())  # seeded
    assert paragraph_swapped_questions(examples, share=0.0, seed=0) == []


def test_sentences_end_at_full_stops_but_not_after_initials_or_titles():
    text = 'The U.S. Army came in 1990. Dr. Smith led it! "Why?" he asked.  It ended (in 1991).[4] "Fine."[a] Then'
    assert [text[start:end] for start, end in sentence_spans(text)] == [
        "The U.S. Army came in 1990.",
        "Dr. Smith led it!",
        '"Why?" he asked.',
        "It ended (in 1991).[4]",
        '"Fine."[a]',
        "Then",
    ]


def test_answer_cut_twins_keep_the_paragraph_but_not_the_sentence_holding_the_answer():
    meeting = (
        "The meeting took place in Ayn Issa. Tribal elders met the Raqqa Civil Council there. "
        "Colonel Ryan Dillon spoke for the Coalition."
    )
    examples = [
        SquadExample("a1", "Raqqa", "Who met the council?", meeting, ("Tribal elders",), meeting.index("Tribal")),
        SquadExample("a2", "Raqqa", "Where was the meeting?", meeting, ("Ayn Issa",), meeting.index("Ayn")),
        SquadExample("a3", "Raqqa", "Who spoke?", "Colonel Ryan Dillon spoke.", ("Ryan Dillon",), 8),
        SquadExample("a4", "Raqqa", "Who led the council?", meeting, (), -1),
        SquadExample(
            "a5",
            "Raqqa",
            "Who spoke for whom?",
            meeting,
            ("elders met the Raqqa Civil Council there. Colonel",),
            meeting.index("elders"),
        ),
    ]
    twins = answer_cut_twins(examples, share=1.0, seed=0)
    # a3's paragraph is its answer's sentence alone; a4 is unanswerable already; a5's answer spans two sentences
    assert [t.id for t in twins] == ["a1#cut", "a2#cut", "a5#cut"]
    assert twins[0].context == "The meeting took place in Ayn Issa. Colonel Ryan Dillon spoke for the Coalition."
    assert (
        twins[1].context
        == "Tribal elders met the Raqqa Civil Council there. Colonel Ryan Dillon spoke for the Coalition."
    )
    assert twins[2].context == "The meeting took place in Ayn Issa."
    for twin, source in zip(twins, [examples[0], examples[1], examples[4]]):
        assert twin.is_impossible and twin.answer_start == -1 and twin.question == source.question
    # no twin where the answer is also written in another sentence
    twice = "Ayn Issa hosted it. The meeting took place in Ayn Issa."
    assert answer_cut_twins([SquadExample("t", "R", "Where?", twice, ("Ayn Issa",), 45)], 1.0, 0) == []
    assert answer_cut_twins(examples, share=1.0, seed=0) == twins  # seeded
    assert answer_cut_twins(examples, share=0.0, seed=0) == []


def test_shards_partition_the_articles(squad_file):
    examples = load_squad(squad_file)
    shards = [take_shard(examples, f"{k}/3", seed=5) for k in (1, 2, 3)]
    titles = [{e.title for e in shard} for shard in shards]
    assert all(titles) and set().union(*titles) == {e.title for e in examples}
    assert not (titles[0] & titles[1] or titles[0] & titles[2] or titles[1] & titles[2])
    with pytest.raises(ValueError, match="K/N"):
        take_shard(examples, "two of three", seed=5)


def test_a_shard_can_keep_every_unanswerable_question(squad_file):
    examples = load_squad(squad_file)
    plain = take_shard(examples, "1/3", seed=5)
    kept = take_shard(examples, "1/3", seed=5, all_unanswerable=True)
    unanswerable = [e.id for e in examples if e.is_impossible]
    assert unanswerable and set(unanswerable) - {e.id for e in plain}  # some lie in other shards
    assert {e.id for e in kept} == {e.id for e in plain} | set(unanswerable)


def test_squad_files_round_trip_gzipped(squad_file, tmp_path):
    examples = load_squad(squad_file)
    assert load_squad(write_squad(tmp_path / "copy.json.gz", examples)) == examples


def test_examples_only_writes_what_training_would_train_on(squad_file, tmp_path, capsys):
    dam = [
        "The Tabqa dam holds Lake Assad. It was built in 1973.",
        "The deal at the dam was reached in May between the SDF and ISIS.",
    ]
    examples = [
        *load_squad(squad_file),
        SquadExample("d1", "Dam", "When was the first deal at the dam reached?", dam[1], ("May",), 35),
        SquadExample("d2", "Dam", "Which lake does the Tabqa dam hold?", dam[0], ("Lake Assad",), 20),
    ]
    source = write_squad(tmp_path / "train.json", examples)
    output = tmp_path / "examples"
    options = ["--output", str(output), "--negatives", "1", "--swapped", "1", "--antonyms", "1", "--cut-answer", "1"]
    options += ["--calibration-fraction", "0.25"]
    assert main(["reader", "train", "--train", str(source), *options, "--examples-only"]) == 0
    assert "training examples written to" in capsys.readouterr().out
    written = load_squad(output / EXAMPLES_NAME)
    shares = {"negatives": 1.0, "swapped": 1.0, "antonyms": 1.0, "cut_answer": 1.0}
    config = TrainConfig([str(source)], str(tmp_path / "x"), calibration_fraction=0.25, **shares)
    expected, calibration = training_examples(config)
    assert sorted(written, key=lambda e: e.id) == sorted(expected, key=lambda e: e.id)
    assert {"d1#negative", "d2#negative"} <= {e.id for e in written if e.is_impossible}
    assert any(e.id.endswith("#swapped") for e in written)
    assert "d1#antonym" in {e.id for e in written}
    assert next(e for e in written if e.id == "d2#cut").context == "It was built in 1973."
    assert load_squad(output / "calibration.json") == calibration and calibration
    assert not list(output.glob("*.safetensors"))  # nothing trained
