"""The chat page in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright
against the real Gradio server on 127.0.0.1. Skips when Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa import QA
from qa.models import PACKAGED_READER
from qa.serving.web import build_app, launch_options
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
SEED_DOC = "000_ba938e0baee4174c.txt"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000
MEETING = "Where did the meeting take place?"
XSS_QUESTION = "<img src=x onerror=window.__xss=1> <script>window.__xss=2</script> what happened?"
EVIL_DOC = "evil.md"
EVIL_TEXT = (
    "The launch code of the Falcon project is <img src=x onerror=window.__xss=3> 7319, "
    "set by the council <script>window.__xss=4</script> in March 2019.\n"
)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def serve(qa: QA):
    """The production app over ``qa`` on 127.0.0.1 (in a thread of this process); returns (app, url)."""
    app = build_app(qa)
    app.launch(prevent_thread_lock=True, quiet=True, **launch_options("127.0.0.1", free_port()))
    return app, app.local_url


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory, tiny_reader_dir):
    """The page over the seeds plus a document full of HTML/JS, with a tiny random reader whose
    threshold of -inf makes it cite every paragraph it reads (structure, not answer quality)."""
    base = tmp_path_factory.mktemp("browser")
    (base / "docs").mkdir()
    shutil.copy(ROOT / "seeds" / SEED_DOC, base / "docs" / SEED_DOC)
    (base / "docs" / EVIL_DOC).write_text(EVIL_TEXT, encoding="utf-8")
    qa = QA(base / "docs", base / "index", reader=str(tiny_reader_dir), threshold=float("-inf"))
    qa.index()
    app, url = serve(qa)
    try:
        yield url
    finally:
        app.close()


@pytest.fixture(scope="module")
def seed_server(seed_qa):
    app, url = serve(seed_qa)
    try:
        yield url
    finally:
        app.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()


def ask(page, question: str):
    """Type ``question`` into the page, press Enter, wait for the reply; returns the reply's element."""
    bot = page.locator('[data-testid="bot"]')
    before = bot.count()
    box = page.locator("textarea").first
    box.fill(question)
    box.press("Enter")
    reply = bot.nth(before)
    reply.locator("strong").first.wait_for()  # every reply starts with a bold line
    return reply


def open_chat(page, url: str) -> None:
    page.goto(url, wait_until="load")
    page.locator("textarea").first.wait_for()


def screenshot(page, tmp_path: Path, keep: bool) -> Path:
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if keep:
        (ROOT / "reports").mkdir(exist_ok=True)
        shutil.copy(shot, ROOT / "reports" / "browser.png")
    return shot


def marks_inside_quotes(reply) -> list[tuple[str, str]]:
    """(highlighted text, the whole quoted paragraph) for every <mark> in the reply."""
    return reply.locator("mark").evaluate_all(
        "marks => marks.map(m => [m.textContent, (m.closest('blockquote') || {}).textContent || ''])"
    )


def assert_no_injection(page) -> None:
    chat = page.locator('[data-testid="user"], [data-testid="bot"]')
    assert chat.locator("img").count() == 0
    assert chat.locator("script").count() == 0
    assert chat.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_reply_structure_with_highlighted_citations(page, tiny_server, tmp_path):
    open_chat(page, tiny_server)
    reply = ask(page, MEETING)
    answer = reply.locator("strong").first.inner_text().strip()
    marks = marks_inside_quotes(reply)
    assert marks, reply.inner_html()
    highlighted, paragraph = marks[0]
    assert highlighted.strip() == answer  # the answer is the first citation's highlighted span
    assert highlighted in paragraph and len(paragraph) > len(highlighted)
    assert f"[1] {SEED_DOC}, paragraph" in reply.inner_text() or f"[1] {EVIL_DOC}, paragraph" in reply.inner_text()
    assert_no_injection(page)
    assert not page.errors
    screenshot(page, tmp_path, keep=not (PACKAGED_READER / "config.json").is_file())


def test_question_with_html_renders_as_text(page, tiny_server):
    open_chat(page, tiny_server)
    ask(page, XSS_QUESTION)
    user = page.locator('[data-testid="user"]').last
    assert "<img src=x onerror=window.__xss=1>" in user.inner_text()
    assert_no_injection(page)


def test_document_html_in_a_citation_renders_as_text(page, tiny_server):
    open_chat(page, tiny_server)
    reply = ask(page, "What is the launch code of the Falcon project?")
    text = reply.inner_text()
    assert f"{EVIL_DOC}, paragraph 0" in text
    assert "<img src=x onerror=window.__xss=3>" in text
    assert "<script>window.__xss=4</script>" in text
    assert_no_injection(page)


def test_trained_reader_answer_in_the_browser(page, seed_server, tmp_path):
    open_chat(page, seed_server)
    reply = ask(page, MEETING)
    assert reply.locator("strong").first.inner_text().strip() == "Ayn Issa"
    highlighted, paragraph = marks_inside_quotes(reply)[0]
    assert highlighted == "Ayn Issa"
    assert paragraph.strip() == "The meeting reportedly occurred in Ayn Issa, the interim base for Raqqa Civil Council."
    assert f"[1] {SEED_DOC}, paragraph 2" in reply.inner_text()
    assert_no_injection(page)
    assert not page.errors
    screenshot(page, tmp_path, keep=True)


@pytest.fixture()
def library_server(tmp_path):
    """The page over an empty library with the shipped reader (documents come through the upload control)."""
    if not (PACKAGED_READER / "config.json").is_file():
        pytest.skip("no trained reader shipped yet")
    (tmp_path / "docs").mkdir()
    qa = QA(tmp_path / "docs", tmp_path / "index")
    app, url = serve(qa)
    try:
        yield url, qa
    finally:
        app.close()


def keep_screenshot(page, name: str) -> None:
    """Retake a picture the docs show (``docs/NAME``), so that they show the page as it is now."""
    page.screenshot(path=str(ROOT / "docs" / name), full_page=True)


def test_upload_a_pdf_ask_about_page_two_then_remove_it(page, library_server, tmp_path):
    from tests.test_formats import PAGE_TWO_FROM, make_pdf, seed_blocks

    url, qa = library_server
    blocks = seed_blocks()
    pdf = tmp_path / "Raqqa report.pdf"
    pdf.write_bytes(make_pdf([blocks[:PAGE_TWO_FROM], blocks[PAGE_TWO_FROM:]], title="Coalition confirms meeting"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is no PDF at all")
    open_chat(page, url)
    page.get_by_text("Documents", exact=True).first.click()
    page.locator('#add-files input[type="file"]').set_input_files([str(pdf), str(broken)])
    page.get_by_role("button", name="Add to the library").click()
    status = page.locator("#library-status")
    status.get_by_text("Raqqa report.pdf").wait_for()
    assert "added (pdf, 2 pages" in status.inner_text()
    assert "broken.pdf was not added: it is not a readable PDF" in status.inner_text()
    page.locator("#library-table").get_by_text("Coalition confirms meeting").first.wait_for(state="attached")

    meeting = ask(page, MEETING)
    assert meeting.locator("strong").first.inner_text().strip() == "Ayn Issa"
    assert "Coalition confirms meeting (Raqqa report.pdf), page 1" in meeting.inner_text()
    assert marks_inside_quotes(meeting)[0][0] == "Ayn Issa"
    reply = ask(page, "How many militants remain in the city?")
    assert "400" in reply.locator("strong").first.inner_text()
    assert "Coalition confirms meeting (Raqqa report.pdf), page 2" in reply.inner_text()
    assert "400" in marks_inside_quotes(reply)[0][0]
    keep_screenshot(page, "browser-page-citation.png")

    page.locator("#remove-choice input").click()
    page.get_by_role("option", name="Raqqa report.pdf").click()
    page.get_by_role("button", name="Remove from the library", exact=True).click()
    status.get_by_text("removed").wait_for()
    reply = ask(page, "How many militants remain in the city?")
    assert "Raqqa report.pdf" not in reply.inner_text()
    assert len(qa.index()) == 0 and qa.index().infos() == []
    assert not page.errors


def test_the_unsure_view_marks_the_candidate_differently(page, tmp_path):
    if not (PACKAGED_READER / "config.json").is_file():
        pytest.skip("no trained reader shipped yet")
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "seeds" / SEED_DOC, tmp_path / "docs" / SEED_DOC)
    probe = QA(tmp_path / "docs", tmp_path / "index")
    sure = probe.answer(MEETING).confidence
    needed = min(1.0, sure + 0.01)  # the answer policy just out of reach
    app, url = serve(QA(tmp_path / "docs", tmp_path / "index", min_confidence=needed))
    try:
        open_chat(page, url)
        assert f"at least {round(100 * needed)}% likely right" in page.locator("body").inner_text()  # the policy
        reply = ask(page, MEETING)
        assert reply.locator("strong").first.inner_text().startswith("Not sure")
        assert reply.locator("u").first.inner_text() == "Ayn Issa" and reply.locator("mark").count() == 0
        text = reply.inner_text()
        assert f"{min(max(round(100 * sure), 1), 99)}% likely right" in text  # the candidate's calibrated confidence
        assert f"need: {min(max(round(100 * needed), 1), 99)}% likely right" in text
        keep_screenshot(page, "browser-unsure.png")
        hopeless = ask(page, "Who won the 2018 football World Cup?")
        assert hopeless.locator("strong").first.inner_text().startswith("I could not find")
        assert hopeless.locator("blockquote").count() == 0
    finally:
        app.close()


def test_the_chat_asks_back_with_choices_that_answer_when_clicked(page, seed_server, tmp_path):
    """A follow-up the documents answer two ways shows both readings as buttons; clicking one asks it (shown as
    the user's turn) and answers it. Also: a visible Send button, the placeholder kept after a question, small
    talk answered, and the user's own markup shown as typed."""
    open_chat(page, seed_server)
    box = page.locator("textarea").first
    placeholder = box.get_attribute("placeholder")
    bot = page.locator('[data-testid="bot"]')
    box.fill("hello")
    page.get_by_role("button", name="Send").click()
    bot.nth(0).get_by_text("Hello!").wait_for()
    ask(page, "Which activist group posted a series of tweets?")
    ask(page, "Who did local mediators talk to?")
    reply = ask(page, "What did they say?")
    assert "Do you mean" in reply.inner_text()
    choice = page.get_by_role("button", name="What did Raqqa24 say?")
    choice.wait_for()
    keep_screenshot(page, "browser-clarify.png")
    before = bot.count()
    choice.click()
    answered = bot.nth(before)
    answered.locator("strong").first.wait_for()
    assert page.locator('[data-testid="user"]').last.inner_text().strip() == "What did Raqqa24 say?"
    assert "refused" in answered.locator("strong").first.inner_text()
    assert box.get_attribute("placeholder") == placeholder  # still there after the first question
    ask(page, "<b>Where</b> did the meeting take place?")
    assert page.locator('[data-testid="user"]').last.inner_text().strip().startswith("<b>Where</b> did")
    assert_no_injection(page)
    assert not page.errors
