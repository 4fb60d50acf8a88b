"""Documents as people have them: real PDF (fpdf2), Word (python-docx) and HTML files go through the
converters, the library (``qa add/remove/docs``) and the real pipeline, which cites page and section."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from qa import QA
from qa.cli import main
from qa.conversation.chat import escape
from qa.documents.converters import DocumentError, convert
from qa.documents.library import add_document, remove_document, safe_name
from qa.documents.paragraphs import Document, split_paragraphs
from qa.search.sync import open_index
from tests.conftest import SEED_DOC, SEEDS, needs_trained_reader

LATIN1 = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2019": "'", "\u2026": "...", "\u2013": "-"})
PAGE_TWO_FROM = 8  # seed paragraphs from this one on go to page 2 (the militants count is on page 2)


def seed_blocks() -> list[str]:
    text = (SEEDS / SEED_DOC).read_text(encoding="utf-8").translate(LATIN1)
    return [block.strip() for block in text.split("\n\n") if len(block.split()) > 5]


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=11)
    for blocks in pages:
        pdf.add_page()
        for block in blocks:
            pdf.multi_cell(0, 6, block)
            pdf.ln(4)
    return bytes(pdf.output())


def image_only_pdf(tmp_path: Path) -> bytes:
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    picture = tmp_path / "scan.png"
    image = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(image).text((20, 80), "A scanned page: no text layer here.", fill="black")
    image.save(picture)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(picture), x=10, y=10, w=180)
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["A secret paragraph about the harbour."]]))))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Widget Guide", level=0)
    document.add_paragraph("Widgets are small devices used in many factories across the north of England.")
    document.add_heading("Installation", level=1)
    document.add_paragraph("To install a widget, fasten it to the wall with four brass screws.")
    document.add_heading("Maintenance", level=1)
    document.add_paragraph("Clean the widget every three months with a dry cloth; never use water.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (40 * 1024 * 1024))
    return out.getvalue()


HTML_PAGE = """<!doctype html><html><head><title>Lighthouse Notes | Harbour Trust</title></head><body>
<nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/contact">Contact the Harbour Trust office</a></nav>
<main><article>
<h1>Lighthouse Notes</h1>
<p>The harbour lighthouse was built in <b>1874</b> by the engineer <i>Thomas Stevenson</i> for the Harbour Trust.</p>
<h2>Keepers</h2>
<p>Three keepers lived at the lighthouse until 1962, when the light was automated and the keepers left.</p>
<h2>Visiting</h2>
<p>The tower opens to visitors every Saturday from April to October; tickets cost four pounds.</p>
</article></main>
<footer><p>Copyright 2024 Harbour Trust. All rights reserved. Privacy policy and cookie settings.</p></footer>
</body></html>"""


@pytest.fixture(scope="module")
def seed_pdf() -> bytes:
    blocks = seed_blocks()
    return make_pdf([blocks[:PAGE_TWO_FROM], blocks[PAGE_TWO_FROM:]], title="Coalition confirms meeting on Raqqa")


def test_pdf_text_is_extracted_page_by_page_with_exact_offsets(seed_pdf):
    document = Document.from_bytes("seed.pdf", Path("seed.pdf"), seed_pdf)
    assert document.kind == "pdf" and len(document.page_starts) == 2
    assert document.title == "Coalition confirms meeting on Raqqa"
    paragraphs = split_paragraphs(document)
    for paragraph in paragraphs:
        assert document.text[paragraph.start : paragraph.end] == paragraph.text
        assert paragraph.title == document.title
    meeting = next(p for p in paragraphs if "Ayn Issa, the interim base" in p.text)
    militants = next(p for p in paragraphs if "around 400 militants" in p.text)
    assert (meeting.page, militants.page) == (1, 2)
    assert "The meeting reportedly occurred in Ayn Issa" in meeting.text  # lines joined back into a paragraph


def test_word_headings_give_title_and_sections():
    document = Document.from_bytes("guide.docx", Path("guide.docx"), make_docx())
    assert (document.kind, document.title) == ("docx", "Widget Guide")
    sections = {p.section for p in split_paragraphs(document) if "brass screws" in p.text}
    assert sections == {"Installation"}


def test_web_pages_keep_the_main_text_without_menus_and_footers():
    document = Document.from_bytes("notes.html", Path("notes.html"), HTML_PAGE.encode())
    assert document.kind == "html" and document.title.startswith("Lighthouse Notes")
    assert "built in 1874 by the engineer Thomas Stevenson" in document.text  # emphasis dropped
    assert "tickets cost four pounds" in document.text
    assert "Shop" not in document.text and "cookie settings" not in document.text
    keepers = next(p for p in split_paragraphs(document) if "automated" in p.text)
    assert keepers.section == "Keepers" and keepers.page is None


def test_markdown_headings_give_sections():
    text = "# Field Notes\n\nThe first entry is about the weather in the valley.\n\n## Birds\n\nA heron stood there."
    document = Document.from_bytes("notes.md", Path("notes.md"), text.encode())
    heron = next(p for p in split_paragraphs(document) if "heron" in p.text)
    assert (document.title, heron.section) == ("Field Notes", "Birds")


BAD_FILES = [  # (name, how it is made, the reason its message gives)
    ("scan.pdf", "image_only", "no text layer"),
    ("locked.pdf", "encrypted", "password-protected"),
    ("broken.pdf", "truncated", "not a readable PDF"),
    ("empty.pdf", "empty", "empty"),
    ("picture.pdf", "png", "not a PDF"),
    ("bomb.docx", "bomb", "zip bomb"),
    ("text.docx", "text", "not a Word .docx file"),
    ("broken.docx", "bad_zip", "not a readable Word document"),
    ("binary.html", "png", "binary"),
    ("plain.html", "plain", "not a web page"),
]


def bad_file(make: str, tmp_path: Path, seed_pdf: bytes) -> bytes:
    makers = {
        "image_only": lambda: image_only_pdf(tmp_path),
        "encrypted": encrypted_pdf,
        "truncated": lambda: seed_pdf[:400],
        "empty": lambda: b"",
        "png": lambda: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
        "bomb": zip_bomb,
        "text": lambda: b"Just some text pretending to be a file of another type.",
        "bad_zip": lambda: _zip_with({"hello.txt": "not a word document"}),
        "plain": lambda: b"No markup at all in this so-called web page.",
    }
    return makers[make]()


@pytest.mark.parametrize("name, make, reason", [*BAD_FILES, ("image.exe", "text", "not a supported type")])
def test_bad_files_are_refused_with_a_clear_reason(name, make, reason, seed_pdf, tmp_path):
    with pytest.raises(DocumentError, match=reason):
        convert(Path(name).suffix, bad_file(make, tmp_path, seed_pdf))


def _zip_with(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\Report 2024.PDF", "Report 2024.pdf"),
        ("odd<img src=x>.md", "odd_img src_x.md"),
        (".hidden.html", "hidden.html"),
        ("....pdf", "document.pdf"),
    ],
)
def test_safe_names(name, expected):
    assert safe_name(name) == expected


def test_library_adds_without_overwriting_and_removes_inside_the_folder_only(tmp_path, seed_pdf):
    folder = tmp_path / "docs"
    info = add_document(folder, "../report.pdf", seed_pdf)
    assert (info.name, info.kind, info.pages) == ("report.pdf", "pdf", 2) and info.paragraphs > 10
    with pytest.raises(FileExistsError, match="already in the library"):
        add_document(folder, "report.pdf", make_pdf([["Another report entirely, with other words."]]))
    assert (folder / "report.pdf").read_bytes() == seed_pdf  # untouched
    add_document(folder, "report.pdf", make_pdf([["Another report entirely, with other words."]]), replace=True)
    with pytest.raises(DocumentError):
        add_document(folder, "report.pdf", b"%PDF-1.4 broken", replace=True)
    assert "Another report" in Document.from_bytes("r.pdf", Path("r.pdf"), (folder / "report.pdf").read_bytes()).text
    (tmp_path / "outside.txt").write_text("Must never be deleted by the library.")
    for name in ("../outside.txt", "/etc/hostname", "missing.pdf"):
        with pytest.raises(FileNotFoundError):
            remove_document(folder, name)
    assert (tmp_path / "outside.txt").exists()
    remove_document(folder, "report.pdf")
    assert not any(folder.iterdir())


def test_the_library_is_listed_from_the_index_store(tmp_path, embedder):
    """What the documents panel and ``qa docs`` show: the store's record of each document, following adds,
    replacements and removals, with what the add returned."""
    folder, index_dir = tmp_path / "docs", tmp_path / "index"
    added = add_document(folder, "a.pdf", make_pdf([["Alpha report.", "The dam held in May."]], title="Alpha"))
    add_document(folder, "b.txt", b"Bravo notes.\n\nThe levee held in June.")
    first = {d.name: d for d in open_index(folder, index_dir, embedder).infos()}
    assert first["a.pdf"] == added and (added.title, added.kind, added.pages) == ("Alpha", "pdf", 1)
    add_document(folder, "b.txt", b"Charlie notes.\n\nOne.\n\nTwo.", replace=True)
    (folder / "c.md").write_text("# Delta\n\nA new file.", encoding="utf-8")
    changed = {d.name: d for d in open_index(folder, index_dir, embedder).infos()}
    assert changed["a.pdf"] == first["a.pdf"]
    assert changed["b.txt"].paragraphs == 3 and changed["b.txt"] != first["b.txt"]
    assert changed["c.md"].title == "Delta"
    remove_document(folder, "a.pdf")
    assert [d.name for d in open_index(folder, index_dir, embedder).infos()] == ["b.txt", "c.md"]


@needs_trained_reader
def test_a_pdf_added_from_the_command_line_is_cited_by_page(tmp_path, seed_pdf, capsys):
    folder, index = tmp_path / "docs", tmp_path / "index"
    (tmp_path / "seed.pdf").write_bytes(seed_pdf)
    (tmp_path / "guide.docx").write_bytes(make_docx())
    (tmp_path / "scan.pdf").write_bytes(image_only_pdf(tmp_path))
    args = ["--documents", str(folder), "--index", str(index)]
    assert main(["add", str(tmp_path / "seed.pdf"), str(tmp_path / "guide.docx"), *args]) == 0
    out = capsys.readouterr().out
    assert "added seed.pdf: 'Coalition confirms meeting on Raqqa' (pdf, 2 pages" in out
    assert "added guide.docx: 'Widget Guide' (docx" in out

    qa = QA(folder, index)
    meeting = qa.answer("Where did the meeting take place?")
    assert meeting.text == "Ayn Issa"
    assert (meeting.citations[0].doc_id, meeting.citations[0].page) == ("seed.pdf", 1)
    assert meeting.citations[0].source == "Coalition confirms meeting on Raqqa (seed.pdf), page 1"
    militants = qa.answer("How many militants remain in the city?")
    assert "400" in militants.text and militants.citations[0].page == 2
    screws = qa.answer("How many screws fasten a widget to the wall?")
    assert screws.citations and screws.citations[0].section == "Installation"

    assert main(["add", str(tmp_path / "scan.pdf"), *args]) == 1  # refused, and nothing else changes
    assert "cannot add" in capsys.readouterr().err and not (folder / "scan.pdf").exists()
    assert main(["docs", *args]) == 0
    listing = capsys.readouterr().out
    assert "seed.pdf" in listing and "guide.docx" in listing and "Widget Guide" in listing

    assert main(["remove", "seed.pdf", *args]) == 0
    assert all(c.doc_id != "seed.pdf" for c in QA(folder, index).answer("Where did the meeting take place?").citations)


@needs_trained_reader
def test_upload_ask_and_remove_through_gradio_client(tmp_path, seed_pdf):
    from gradio_client import Client, handle_file

    from qa.serving.web import build_app, launch_options
    from tests.test_web import free_port

    (tmp_path / "docs").mkdir()
    upload = tmp_path / "upload" / "Raqqa report.pdf"
    upload.parent.mkdir()
    upload.write_bytes(seed_pdf)
    empty = tmp_path / "upload" / "empty.docx"
    empty.write_bytes(b"")
    app = build_app(QA(tmp_path / "docs", tmp_path / "index"))
    app.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", free_port()))
    try:
        client = Client(app.local_url, verbose=False)
        status, table, *_ = client.predict(
            [handle_file(str(upload)), handle_file(str(empty))], False, api_name="/add_documents"
        )
        assert "Raqqa report\\.pdf** added (pdf, 2 pages" in status  # names are escaped markdown
        assert "empty\\.docx** was not added: it is empty" in status
        assert [row[0] for row in table["data"]] == ["Raqqa report.pdf"]
        again, *_ = client.predict([handle_file(str(upload))], False, api_name="/add_documents")
        assert "already in the library" in again  # no overwrite without asking
        reply = client.predict("How many militants remain in the city?", api_name="/chat")
        assert "\\(Raqqa report\\.pdf\\), page 2" in reply and "400" in reply.split("\n", 1)[0]
        bad = []
        for name, make, _ in BAD_FILES:
            (tmp_path / "upload" / name).write_bytes(bad_file(make, tmp_path, seed_pdf))
            bad.append(handle_file(str(tmp_path / "upload" / name)))
        status, table, *_ = client.predict(bad, False, api_name="/add_documents")
        for name, _, reason in BAD_FILES:
            line = next(line for line in status.splitlines() if escape(name) in line)
            assert "was not added" in line and escape(reason) in line, line
        assert [row[0] for row in table["data"]] == ["Raqqa report.pdf"]  # nothing else stored
        assert client.predict("How many militants remain in the city?", api_name="/chat") == reply  # as before
        status, table, *_ = client.predict("Raqqa report.pdf", api_name="/remove")
        assert "removed" in status and table["data"] in ([], [["", "", "", "", ""]])
        gone = client.predict("How many militants remain in the city?", api_name="/chat")
        assert "Raqqa report.pdf" not in gone
    finally:
        app.close()


def test_a_document_is_summarised_in_words_people_read():
    from qa.documents.library import DocumentInfo

    assert DocumentInfo("a.pdf", "A", "pdf", 1, 1, 10).summary == "pdf, 1 page, 1 paragraph"
    assert DocumentInfo("b.md", "B", "markdown", None, 12, 10).summary == "markdown, 12 paragraphs"
