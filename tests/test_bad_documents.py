"""Bad documents in the documents folder: indexing skips what it cannot read, with a warning naming
the file, and goes on; document text (HTML, JavaScript, markdown) is escaped wherever it is cited."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from qa import QA
from qa.conversation.chat import render_markdown
from qa.documents.paragraphs import MAX_DOCUMENT_BYTES, load_documents, read_document
from tests.conftest import only_highlight_tags

ROOT = Path(__file__).resolve().parent.parent
SEED_DOC = "000_ba938e0baee4174c.txt"
MEETING_QUESTION = "Where did the meeting take place?"

EVIL_DOC = "evil.md"
EVIL_TEXT = """# The Falcon project notes <script>window.__xss = 'doc'</script> begin here.

The launch code of the Falcon project is <img src=x onerror=alert(1)> 7319, set by the council in March 2019.

Markdown tricks in the Falcon notes: [click](javascript:alert(2)), ![pixel](http://127.0.0.1:9/x.png), \
<a href="javascript:alert(3)">here</a>, `code`, **bold**, | a | table |, and a > quote.
"""
ODD_NAME = "odd<img src=y onerror=alert(4)>.md"
ODD_TEXT = "The harbour lighthouse was repainted in a deep shade of green during the spring festival.\n"

# file name -> the reason its warning gives
BAD_FILES = {
    "empty.txt": "it is empty",
    "blank.md": "it is empty",
    "latin1.txt": "not UTF-8",
    "binary.txt": "looks binary",
    "utf16.txt": "looks binary",
    "huge.txt": f"{20 * 1024 * 1024} bytes is over the {MAX_DOCUMENT_BYTES}-byte limit",
    "notes.pdf": "not a readable PDF",
}
GOOD_FILES = {SEED_DOC, EVIL_DOC, ODD_NAME, "bom.txt", "sub/crlf.md"}


def make_bad_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "seeds" / SEED_DOC, folder / SEED_DOC)
    (folder / EVIL_DOC).write_text(EVIL_TEXT, encoding="utf-8")
    (folder / ODD_NAME).write_text(ODD_TEXT, encoding="utf-8")
    (folder / "bom.txt").write_bytes("\ufeffThe orchard keeper counted forty-two pear trees last autumn.\n".encode())
    (folder / "sub").mkdir()
    (folder / "sub" / "crlf.md").write_bytes(b"The ferry leaves at nine every morning.\r\n\r\nIt returns at six.\r\n")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text(" \n\t\n  \n")
    (folder / "latin1.txt").write_bytes("Le caf\u00e9 est ferm\u00e9 le lundi.".encode("latin-1"))
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(256))
    (folder / "utf16.txt").write_bytes("A text saved as UTF-16.".encode("utf-16"))
    line = b"All work and no play makes a very long document that nobody should index. " * 8 + b"\n\n"
    with open(folder / "huge.txt", "wb") as handle:
        handle.write(line * (20 * 1024 * 1024 // len(line)))
        handle.write(b"x" * (20 * 1024 * 1024 - handle.tell()))
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4 not a text document")
    # Not documents at all: skipped without a word, and never opened (a FIFO would block a reader).
    (folder / ".hidden.txt").write_text("A hidden file that must not be indexed.")
    (folder / "folder.txt").mkdir()
    os.mkfifo(folder / "pipe.txt")
    (folder / "dangling.txt").symlink_to(folder / "does-not-exist.txt")
    return folder


def warnings_by_file(records) -> dict[str, str]:
    found = {}
    for record in records:
        if record.levelno == logging.WARNING and record.getMessage().startswith("Skipping "):
            name = record.args[0]
            found[name] = record.getMessage()
    return found


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    return make_bad_folder(tmp_path_factory.mktemp("bad-docs") / "docs")


@pytest.fixture(scope="module")
def bad_qa(bad_folder, tiny_reader_dir, tmp_path_factory) -> QA:
    """The real pipeline over the bad folder; threshold -inf makes it cite every passage it reads."""
    return QA(bad_folder, tmp_path_factory.mktemp("bad-index"), reader=str(tiny_reader_dir), threshold=float("-inf"))


def test_unreadable_documents_are_skipped_with_a_warning_naming_each(bad_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="qa.documents.paragraphs"):
        documents = load_documents(bad_folder)
    assert {doc.doc_id for doc in documents} == GOOD_FILES
    warnings = warnings_by_file(caplog.records)
    assert set(warnings) == set(BAD_FILES)
    for name, reason in BAD_FILES.items():
        assert name in warnings[name] and reason in warnings[name]
    assert next(doc for doc in documents if doc.doc_id == "bom.txt").text.startswith("The orchard")


def test_indexing_skips_bad_documents_and_goes_on(bad_qa, caplog):
    with caplog.at_level(logging.WARNING):
        index = bad_qa.index()
    assert set(index.documents) == GOOD_FILES
    assert set(warnings_by_file(caplog.records)) == set(BAD_FILES)
    assert {p.doc_id for p in index.paragraphs()} == GOOD_FILES
    for paragraph in index.paragraphs():  # offsets still point into the real files
        text = (bad_qa.documents_dir / paragraph.doc_id).read_bytes().decode("utf-8-sig")
        assert text[paragraph.start : paragraph.end] == paragraph.text


def test_citations_escape_html_and_markdown_in_documents(bad_qa, monkeypatch):
    # read all 3 Falcon paragraphs, not only the first
    monkeypatch.setattr(bad_qa, "stop_margin_override", float("inf"))
    answer = bad_qa.answer("What is the launch code of the Falcon project?", top_k=8)
    assert EVIL_DOC in {c.doc_id for c in answer.citations}
    markdown = render_markdown(answer, max_citations=len(answer.citations))
    assert only_highlight_tags(markdown), markdown
    text = markdown.replace("<mark>", "").replace("</mark>", "")
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in text
    assert "&lt;script&gt;window\\.\\_\\_xss = 'doc'&lt;/script&gt;" in text
    assert "](" not in text and "![" not in text  # no link or image syntax survives
    assert '&lt;a href="javascript:alert\\(3\\)"&gt;' in text


def test_citation_escapes_an_html_file_name(bad_qa):
    answer = bad_qa.answer("What colour was the harbour lighthouse repainted during the spring festival?")
    assert ODD_NAME in {c.doc_id for c in answer.citations}
    markdown = render_markdown(answer)
    assert only_highlight_tags(markdown), markdown
    assert "odd&lt;img src=y onerror=alert\\(4\\)&gt;\\.md" in markdown


def test_file_vanishing_before_it_is_read_is_skipped(tmp_path, caplog):
    folder = tmp_path / "docs"
    folder.mkdir()
    path = folder / "gone.txt"
    path.write_text("Here one moment, gone the next.")
    path.unlink()  # listed by a scan, deleted before it is read
    with caplog.at_level(logging.WARNING, logger="qa.documents.paragraphs"):
        assert read_document(path, folder) is None
    assert "Skipping gone.txt: cannot read it" in caplog.text


def test_document_deleted_between_indexing_and_answering(bad_qa, bad_folder, caplog):
    """The next question notices the deletion, re-indexes without the file and never cites it."""
    question = "What is the launch code of the Falcon project?"
    assert EVIL_DOC in {c.doc_id for c in bad_qa.answer(question).citations}
    saved = (bad_folder / EVIL_DOC).read_bytes()
    (bad_folder / EVIL_DOC).unlink()
    try:
        answer = bad_qa.answer(question)
        assert answer.citations and EVIL_DOC not in {c.doc_id for c in answer.citations}
        assert EVIL_DOC not in bad_qa.index().documents
    finally:
        (bad_folder / EVIL_DOC).write_bytes(saved)
    assert EVIL_DOC in bad_qa.index().documents


@pytest.mark.skipif(not (ROOT / "qa" / "models" / "reader" / "config.json").is_file(), reason="no trained reader")
def test_trained_reader_still_answers_beside_bad_documents(bad_folder, tmp_path):
    qa = QA(bad_folder, tmp_path / "index")
    answer = qa.answer(MEETING_QUESTION)
    assert answer.text == "Ayn Issa"
    assert answer.citations[0].doc_id == SEED_DOC
    assert only_highlight_tags(render_markdown(qa.answer("What is the launch code of the Falcon project?")))
