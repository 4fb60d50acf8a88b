"""``qa average-readers``: the weighted average of real readers' weights, a card naming the parents, clear errors."""

import json

import pytest
import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BertConfig, BertForQuestionAnswering

from qa.cli import main
from qa.read import Reader, read_card, write_card


@pytest.fixture()
def shifted_reader(tiny_reader_dir, tmp_path):
    """The tiny reader with every weight raised by 1, a threshold of 2 and a calibration file."""
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter += 1.0
    folder = tmp_path / "shifted"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_reader_dir).save_pretrained(folder)
    write_card(folder, {"threshold": 2.0, "steps": 7})
    (folder / "calibration.json").write_text(json.dumps({"version": "v2.0", "data": []}))
    return folder


def test_the_average_lies_where_the_weights_say(tiny_reader_dir, shifted_reader, tmp_path, capsys):
    output = tmp_path / "average"
    arguments = [str(tiny_reader_dir), str(shifted_reader), "--weights", "0.25", "0.75", "--output", str(output)]
    assert main(["average-readers", *arguments]) == 0
    assert "--choose --store" in capsys.readouterr().out  # says how to give the average its own threshold

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
    assert (output / "calibration.json").read_text() == (shifted_reader / "calibration.json").read_text()
    span = Reader(output, backend="torch").read_pairs(["Where did the meeting occur?"], ["It occurred in Ayn Issa."])[0]
    assert span.text in "It occurred in Ayn Issa."


def test_averaging_refuses_other_architectures_and_bad_weights(tiny_reader_dir, shifted_reader, tmp_path, capsys):
    other = tmp_path / "other"
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    BertForQuestionAnswering(config).save_pretrained(other)
    output = tmp_path / "average"
    assert main(["average-readers", str(tiny_reader_dir), str(other), "--output", str(output)]) == 1
    assert "other weights" in capsys.readouterr().err
    assert (
        main(
            [
                "average-readers",
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
    assert main(["average-readers", str(tiny_reader_dir), "--output", str(output)]) == 1
    assert "at least two" in capsys.readouterr().err
    assert not output.exists()  # nothing written on refusal
