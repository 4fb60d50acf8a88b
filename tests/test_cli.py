import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qa.cli import build_parser, main
from qa.evaluation.squad import normalize_answer
from qa.search.store import STORE_NAME
from tests.conftest import SEEDS, needs_shared_data, needs_trained_reader


@pytest.fixture()
def pipeline_args(tmp_path, seeds_copy, tiny_reader_dir):
    return ["--documents", str(seeds_copy), "--index", str(tmp_path / "index"), "--reader", str(tiny_reader_dir)]


def test_console_script_lists_everyday_commands_first_and_the_lab_apart():
    def help_of(*command: str) -> str:
        run = subprocess.run([sys.executable, "-m", "qa.cli", *command, "--help"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout

    listed = re.findall(r"^    (\S+)", help_of(), flags=re.MULTILINE)
    assert listed == ["ask", "eval", "index", "add", "remove", "docs", "serve", "reader"]
    lab = re.findall(r"^    (\S+)", help_of("reader"), flags=re.MULTILINE)
    assert lab == ["train", "average", "calibrate", "eval", "eval-corpus"]


def test_index_command_reports_what_it_indexed(pipeline_args, capsys, tmp_path):
    assert main(["index", *pipeline_args]) == 0
    assert "14 paragraphs from 1 document indexed" in capsys.readouterr().out
    assert (tmp_path / "index" / STORE_NAME).is_file()


def test_ask_json_has_answer_and_citations(pipeline_args, capsys):
    assert main(["ask", "Where did the meeting take place?", "--json", "--threshold=-1e9", *pipeline_args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["question"] == "Where did the meeting take place?"
    citation = result["citations"][0]
    assert citation["passage"][citation["start"] : citation["end"]] == result["answer"]


def test_ask_lists_citations_that_say_something_else_as_other_possible_answers(pipeline_args, capsys):
    question = ["ask", "Where did the meeting take place?", "--threshold=-1e9", "--stop-margin=inf", *pipeline_args]
    assert main([*question, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    spans = [c["passage"][c["start"] : c["end"]] for c in result["citations"]]
    others = [span for span in spans if normalize_answer(span) != normalize_answer(result["answer"])]
    assert [not c["supports"] for c in result["citations"]].count(True) == len(others)
    assert len(spans) == 3 and others  # every read paragraph clears a threshold of -1e9
    assert main(question) == 0
    out = capsys.readouterr().out.splitlines()
    headings = [i for i, line in enumerate(out) if line.lstrip().startswith("[")]
    other_at = out.index("  Other possible answers in the documents:")
    assert len(headings) == 3 and sum(i > other_at for i in headings) == len(others)
    assert all(f"[{span}]" in out[i + 1] for span, i in zip(others, headings[-len(others) :]))


def test_top_k_sets_how_many_paragraphs_are_read(pipeline_args, capsys):
    question = ["ask", "Where did the meeting take place?", "--json", "--threshold=-1e9", "--stop-margin=inf"]
    assert main([*question, "--top-k", "5", *pipeline_args]) == 0
    assert len(json.loads(capsys.readouterr().out)["citations"]) == 5  # every read paragraph clears -1e9
    with pytest.raises(SystemExit):
        main([*question, "--top-k", "0", *pipeline_args])
    assert "--top-k: must be 1 or more, not 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["eval", "q.jsonl"], ["reader", "eval-corpus", "dev.json"], ["serve"]])
def test_every_answering_command_takes_top_k(command):
    assert build_parser().parse_args([*command, "--top-k", "5"]).top_k == 5


def test_ask_refuses_an_empty_question(pipeline_args, capsys):
    assert main(["ask", "   ", *pipeline_args]) == 2
    assert "Please type a question" in capsys.readouterr().err


def test_ask_with_a_missing_documents_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["ask", "Why?", "--documents", str(tmp_path / "none"), "--index", str(tmp_path / "i")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_eval_prints_every_figure_and_writes_report_and_plot(pipeline_args, capsys, tmp_path):
    report, png = tmp_path / "report.json", tmp_path / "eval.png"
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "\n".join(
            (SEEDS / "questions.jsonl").read_text().splitlines()[:6]
            + [json.dumps({"question": "What is the capital of France?", "answers": [], "paragraph": None})]
        )
    )
    assert main(["eval", str(questions), "--report", str(report), "--plot", str(png), *pipeline_args]) == 0
    out = capsys.readouterr().out
    for figure in (
        "exact",
        "f1",
        "recall@1",
        "recall@3",
        "recall@5",
        "mrr",
        "no_answer_accuracy",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        assert figure in out
    metrics = json.loads(report.read_text())["metrics"]
    assert metrics["questions"] == 7 and metrics["recall@5"] == 1.0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_eval_rejects_a_malformed_question_file(pipeline_args, capsys, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?", "answers": []}\nnot json\n')
    assert main(["eval", str(bad), *pipeline_args]) == 1
    assert "line 2" in capsys.readouterr().err


@pytest.fixture
def tiny_squad(tmp_path) -> Path:
    """A two-question SQuAD 2.0 file: one answerable, one not.

    No word of the context is an article or a lone full stop: SQuAD's normalisation empties those, so a span
    of one would score as a correct "no answer" whatever the threshold."""
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Ayn Issa lies north of Raqqa in Syria",
                        "qas": [
                            {
                                "id": "1",
                                "question": "Which town?",
                                "answers": [{"text": "Ayn Issa", "answer_start": 0}],
                            },
                            {"id": "2", "question": "Who won?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    }
    squad = tmp_path / "s.json"
    squad.write_text(json.dumps(data))
    return squad


def test_eval_reader_prints_squad_metrics_and_predictions(tiny_reader_dir, tiny_squad, tmp_path, capsys):
    predictions = tmp_path / "pred.json"
    code = main(
        [
            "reader",
            "eval",
            str(tiny_squad),
            "--reader",
            str(tiny_reader_dir),
            "--predictions",
            str(predictions),
            "--json",
        ]
    )
    assert code == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "total"} <= set(metrics)
    assert metrics["total"] == 2 and metrics["questions_per_second"] > 0
    assert set(json.loads(predictions.read_text())) == {"1", "2"}


def test_eval_reader_sweep_shows_the_answer_decline_trade_off(tiny_reader_dir, tiny_squad, capsys):
    assert (
        main(["reader", "eval", str(tiny_squad), "--reader", str(tiny_reader_dir), "--sweep=-1e9,1e9", "--json"]) == 0
    )
    out = capsys.readouterr().out.strip().splitlines()
    always, never = json.loads(out[-1])["sweep"]
    assert (always["threshold"], never["threshold"]) == (-1e9, 1e9)
    assert always["NoAns_f1"] == 0.0  # answers everything, so the unanswerable question is missed
    assert never["NoAns_f1"] == 100.0 and never["HasAns_f1"] == 0.0  # declines everything
    assert any(line.split()[0] == "threshold" for line in out)


def test_eval_reader_rejects_a_malformed_sweep(tiny_squad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reader", "eval", str(tiny_squad), "--sweep", "low,high"])
    assert exit_info.value.code == 2
    assert "comma-separated numbers" in capsys.readouterr().err


@needs_trained_reader
@needs_shared_data
def test_shipped_reader_scores_on_a_dev_slice(tmp_path, capsys):
    from tests.conftest import SHARED_DATA

    dev = json.loads((SHARED_DATA / "dev.json").read_text())
    dev["data"] = dev["data"][:1]
    dev["data"][0]["paragraphs"] = dev["data"][0]["paragraphs"][:8]
    small = tmp_path / "dev-slice.json"
    small.write_text(json.dumps(dev))
    assert main(["reader", "eval", str(small), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["HasAns_f1"] > 40


def test_ask_prints_no_library_debug_lines(pipeline_args):
    result = subprocess.run(
        [sys.executable, "-m", "qa.cli", "ask", "How many civilians were evacuated since Monday?", *pipeline_args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stdout + result.stderr  # bm25s logs at DEBUG unless told otherwise


@needs_trained_reader
def test_ask_shows_the_closest_candidate_when_not_sure(seeds_copy, tmp_path, capsys):
    args = ["--documents", str(seeds_copy), "--index", str(tmp_path / "index")]
    assert main(["ask", "Where did the meeting take place?", "--json", *args]) == 0
    score = json.loads(capsys.readouterr().out)["score"]
    assert main(["ask", "Where did the meeting take place?", f"--threshold={score + 1}", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Not sure") and "[Ayn Issa]" in out[2] and "likely right" in out[1]
    assert main(["ask", "Where did the meeting take place?", f"--threshold={score + 9}", *args]) == 0
    assert capsys.readouterr().out.strip() == "I could not find that in the documents."


def test_without_ray_the_commands_say_how_to_install_it(tmp_path):
    """A fresh interpreter where ``import ray`` fails: ``qa index --ray`` explains, plain indexing works."""
    script = (
        "import sys; sys.modules['ray'] = None\n"
        "from qa.cli import main\n"
        f"print(main(['index', '--documents', {json.dumps(str(SEEDS))}, '--index', {json.dumps(str(tmp_path))}, "
        "'--ray']))\n"
        f"print(main(['index', '--documents', {json.dumps(str(SEEDS))}, '--index', {json.dumps(str(tmp_path))}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.stdout.split()[0] == "1" and "pip install" in result.stderr
    assert "14 paragraphs from 1 document indexed" in result.stdout and result.stdout.split()[-1] == "0"
