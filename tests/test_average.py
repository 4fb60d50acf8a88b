"""``qa reader average``: the weighted average of real readers' weights, a card naming the parents, clear errors."""

import json
import shutil

import pytest
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BertConfig, BertForQuestionAnswering

from qa.cli import main
from qa.evaluation.squad import load_squad
from qa.reading.reader import Reader, read_card, write_card
from qa.training.held_out import held_out_titles


@pytest.fixture()
def shifted_reader(tiny_reader_dir, tmp_path):
    """The tiny reader with every weight raised by 1, a threshold of 2 and a calibration file of two articles."""
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += 1.0
    folder = tmp_path / "shifted"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_reader_dir).save_pretrained(folder)
    write_card(folder, {"threshold": 2.0, "steps": 7})
    articles = [
        {"title": title, "paragraphs": [{"context": f"{title} lies by the river.", "qas": [question(title)]}]}
        for title in ("Tabqa", "Dillon")
    ]
    (folder / "calibration.json").write_text(json.dumps({"version": "v2.0", "data": articles}))
    return folder


def question(title: str) -> dict:
    return {"id": title, "question": "What lies by the river?", "answers": [{"text": title, "answer_start": 0}]}


def test_the_average_lies_where_the_weights_say(tiny_reader_dir, shifted_reader, tmp_path, capsys, caplog):
    output = tmp_path / "average"
    arguments = [str(tiny_reader_dir), str(shifted_reader), "--weights", "0.25", "0.75", "--output", str(output)]
    assert main(["reader", "average", *arguments]) == 0
    assert "--choose --store" in capsys.readouterr().out  # says how to give the average its own threshold
    assert f"no held-out articles on record for {tiny_reader_dir}" in caplog.text  # it cannot vouch for that one

    first = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir).state_dict()
    averaged = AutoModelForQuestionAnswering.from_pretrained(output, dtype=torch.float32).state_dict()
    for name, tensor in first.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(averaged[name], tensor + 0.75, atol=2e-2, rtol=2e-3)  # stored float16
    card = read_card(output)
    assert card["threshold"] == pytest.approx(0.25 * 0.0 + 0.75 * 2.0)
    assert [(p["weight"], p["card"]) for p in card["averaged_from"]] == [
        (0.25, {}),
        (0.75, {"threshold": 2.0, "steps": 7}),
    ]
    assert [e.title for e in load_squad(output / "calibration.json")] == ["Tabqa", "Dillon"]
    assert card["calibration"] == {"questions": 2, "titles": ["Dillon", "Tabqa"]}
    span = Reader(output, backend="torch").read_pairs(["Where did the meeting occur?"], ["It occurred in Ayn Issa."])[0]
    assert span.text in "It occurred in Ayn Issa."


def test_the_average_is_calibrated_only_on_articles_no_parent_trained_on(shifted_reader, tmp_path, capsys, caplog):
    narrow = tmp_path / "narrow"  # a stage that held out Tabqa alone, so it trained on Dillon
    shutil.copytree(shifted_reader, narrow)
    (narrow / "calibration.json").unlink()
    write_card(narrow, {"threshold": 1.0, "calibration": {"titles": ["Tabqa", "Raqqa"]}})
    output = tmp_path / "average"
    assert main(["reader", "average", str(shifted_reader), str(narrow), "--output", str(output)]) == 0
    assert [e.title for e in load_squad(output / "calibration.json")] == ["Tabqa"]
    assert held_out_titles(output) == {"Tabqa"}  # what a stage trained from the average holds out again
    assert "--choose --store" in capsys.readouterr().out

    write_card(narrow, {"threshold": 1.0, "calibration": {"titles": ["Raqqa"]}})
    disjoint = tmp_path / "disjoint"
    assert main(["reader", "average", str(shifted_reader), str(narrow), "--output", str(disjoint)]) == 0
    assert "no article that every parent held out" in caplog.text and "--choose" not in capsys.readouterr().out
    assert not (disjoint / "calibration.json").exists() and "calibration" not in read_card(disjoint)


def test_a_calibration_file_given_is_kept_to_the_articles_no_parent_trained_on(shifted_reader, tmp_path, capsys):
    """A stage on other data from a base records the base's held-out articles it never read; the lineage's wider
    held-out file, given with --calibration, keeps them (the first parent's own file holds only Raqqa, which the
    other parent trained on)."""
    stage = tmp_path / "stage"
    shutil.copytree(shifted_reader, stage)
    write_card(stage, {"threshold": 1.0, "calibration": {"titles": ["Tabqa", "Dillon", "Raqqa", "Elsewhere"]}})
    write_card(shifted_reader, {"threshold": 2.0, "calibration": {"titles": ["Tabqa", "Dillon", "Elsewhere"]}})
    wider = tmp_path / "held_out.json"
    articles = [
        {"title": title, "paragraphs": [{"context": f"{title} lies by the river.", "qas": [question(title)]}]}
        for title in ("Tabqa", "Dillon", "Raqqa", "Trained on")
    ]
    wider.write_text(json.dumps({"version": "v2.0", "data": articles}))
    (stage / "calibration.json").write_text(json.dumps({"version": "v2.0", "data": articles[2:3]}))
    output = tmp_path / "average"
    arguments = [str(stage), str(shifted_reader), "--output", str(output)]
    assert main(["reader", "average", *arguments, "--calibration", str(wider)]) == 0
    assert [e.title for e in load_squad(output / "calibration.json")] == ["Tabqa", "Dillon"]
    assert read_card(output)["calibration_file"] == str(wider)
    assert held_out_titles(output) == {"Tabqa", "Dillon", "Elsewhere"}  # on record for a stage trained from it
    assert "keeps the 2 questions" in capsys.readouterr().out

    missing = tmp_path / "missing"
    assert main(["reader", "average", *arguments[:-1], str(missing), "--calibration", str(tmp_path / "no.json")]) == 1
    assert "no calibration file" in capsys.readouterr().err and not missing.exists()


def test_averaging_refuses_other_architectures_and_bad_weights(tiny_reader_dir, shifted_reader, tmp_path, capsys):
    other = tmp_path / "other"
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    BertForQuestionAnswering(config).save_pretrained(other)
    output = tmp_path / "average"
    assert main(["reader", "average", str(tiny_reader_dir), str(other), "--output", str(output)]) == 1
    assert "other weights" in capsys.readouterr().err
    assert (
        main(
            [
                "reader",
                "average",
                str(tiny_reader_dir),
                str(shifted_reader),
                "--weights",
                "0.5",
                "0.6",
                "--output",
                str(output),
            ]
        )
        == 1
    )
    assert "sum to 1" in capsys.readouterr().err
    assert main(["reader", "average", str(tiny_reader_dir), "--output", str(output)]) == 1
    assert "at least two" in capsys.readouterr().err
    assert not output.exists()  # nothing written on refusal
