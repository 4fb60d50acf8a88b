"""The README's code runs as written: its Python blocks in one namespace and the ``qa`` lines of its shell blocks
(all but the first, the setup), in a fresh working directory as a new user's; a value a comment shows
(``result.text  # 'Ayn Issa'``) is the value the code gives."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from qa.search.store import STORE_NAME
from tests.conftest import ROOT, needs_trained_reader

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHOWN = re.compile(r"#\s*('[^']*')")  # a comment that starts with the quoted value the line gives


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")) if lang == language]


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    linked = set(re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines)))
    assert linked and all((ROOT / link).is_file() for link in linked), linked


@needs_trained_reader
def test_the_python_blocks_run_and_show_true_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # answer() starts library/ here, with the sample article
    import qa.pipeline

    monkeypatch.setattr(qa.pipeline, "_default", None)
    namespace: dict = {}
    checked = 0
    for code in blocks("python"):
        lines = code.splitlines()
        for statement in ast.parse(code).body:
            exec(compile(ast.Module([statement], []), "README.md", "exec"), namespace)
            shown = SHOWN.search(lines[statement.lineno - 1])
            if isinstance(statement, ast.Expr) and shown and statement.end_lineno == statement.lineno:
                value = eval(compile(ast.Expression(statement.value), "README.md", "eval"), namespace)
                assert value == ast.literal_eval(shown.group(1)), lines[statement.lineno - 1]
                checked += 1
    assert checked >= 4


@needs_trained_reader
def test_the_command_lines_run(tmp_path):
    commands = [line for code in blocks("bash")[1:] for line in code.splitlines() if line.startswith("qa ")]
    assert commands
    qa_command = str(Path(sys.executable).with_name("qa"))
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")  # the checkout's sample and sets, as a user's clone has them
    for line in commands:
        run = subprocess.run([qa_command, *shlex.split(line)[1:]], cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 0, f"{line}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    assert (tmp_path / "library").is_dir() and (tmp_path / "index" / STORE_NAME).is_file()


def test_the_setup_block_is_the_one_ci_runs():
    setup = blocks("bash")[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0" in setup and "python -m pytest -q" in setup
    assert "python -m pytest -q" in ci and 'pip install -q -e ".[test,ray]"' in ci
