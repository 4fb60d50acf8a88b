"""Files as people have them -> plain text with its structure: one small converter per format.

Every converter takes the file's bytes and returns ``Extracted``: the text the product indexes and cites
(character offsets point into it), the display title, and where pages and headings start in that text.
A file that cannot be read as what its name says raises ``DocumentError`` with a message for the user.

- ``.txt``: the text itself.
- ``.md``: the text itself; ``#`` headings give the sections, the first one the title.
- ``.pdf`` (pypdf): the text layer page by page; lines are joined into paragraphs; the title from the
  metadata. A PDF without a text layer (a scan) or with a password is refused with a clear message.
- ``.docx`` (python-docx): paragraphs in order; "Title"/"Heading N" styles give the title and sections.
  The zip is checked before it is opened (size and compression ratio), so a zip bomb is refused.
- ``.html``/``.htm`` (trafilatura): the main text of the page without menus, navigation and footers,
  with its headings; the title from the page's metadata.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace

MAX_UNZIPPED_BYTES = 100 * 1024 * 1024  # a .docx that unpacks to more than this is refused
MAX_ZIP_RATIO = 200  # ... and so is one whose parts are compressed more than this (zip bombs)
MARKDOWN_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
EMPHASIS = re.compile(r"(\*\*|__|\*|_)(\S(?:.*?\S)?)\1")
SENTENCE_END = (".", "!", "?", ":", ";", "\u201d", '"', ")")


class DocumentError(ValueError):
    """A file that cannot be read as its type; the message says why, for the user."""


@dataclass(frozen=True)
class Extracted:
    """A document's text and its structure (offsets are into ``text``)."""

    text: str
    kind: str  # "text", "markdown", "pdf", "docx", "html"
    title: str | None = None
    page_starts: tuple[int, ...] = ()  # offset where page 1, 2, ... starts (PDF only)
    headings: tuple[tuple[int, str], ...] = field(default_factory=tuple)  # (offset, heading) in text order


# A lone surrogate (a broken PDF string can decode to one) is no text: it cannot be stored as UTF-8. Each becomes
# U+FFFD, one character for one, so that offsets into the text stay exact.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_text(raw: bytes) -> str:
    """UTF-8 text (a BOM is dropped); binary data or another encoding raises ``DocumentError``."""
    if b"\x00" in raw:
        raise DocumentError("it looks binary (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"it is not UTF-8 text ({error.reason})") from None


def plain_text(raw: bytes) -> Extracted:
    return Extracted(decode_text(raw), "text")


def markdown(raw: bytes) -> Extracted:
    text = decode_text(raw)
    headings = tuple((m.start(), m.group(2).strip()) for m in MARKDOWN_HEADING.finditer(text))
    return Extracted(text, "markdown", headings[0][1] if headings else None, headings=headings)


def pdf(raw: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not raw.lstrip()[:5].startswith(b"%PDF"):
        raise DocumentError("it is not a PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("it is password-protected; save an unprotected copy and add that")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        raise DocumentError(f"it is not a readable PDF ({type(error).__name__}: {error})") from None
    if not any(page.strip() for page in pages):
        raise DocumentError(
            f"it has no text layer ({len(pages)} page(s) of images: a scan?); run OCR on it first "
            "(e.g. ocrmypdf) and add the result"
        )
    parts, page_starts, offset = [], [], 0
    for page in pages:
        page_starts.append(offset)
        text = "\n\n".join(join_lines(page.splitlines()))
        parts.append(text)
        offset += len(text) + 2
    return Extracted("\n\n".join(parts), "pdf", title.strip() if title else None, tuple(page_starts))


def join_lines(lines: list[str]) -> list[str]:
    """PDF text lines -> paragraphs: a blank line ends one, and so does a short line that ends a sentence
    (the last line of a paragraph rarely reaches the right margin)."""
    width = max((len(line.strip()) for line in lines), default=0)
    paragraphs, current = [], []
    for line in (line.strip() for line in lines):
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
        if line.endswith(SENTENCE_END) and len(line) < 0.8 * width:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def docx(raw: bytes) -> Extracted:
    import docx as python_docx

    check_zip(raw)
    try:
        document = python_docx.Document(io.BytesIO(raw))
    except Exception as error:  # python-docx raises many kinds (KeyError, ValueError, lxml errors) on bad files
        raise DocumentError(f"it is not a readable Word document ({type(error).__name__})") from None
    blocks, headings, offset = [], [], 0
    title = (document.core_properties.title or "").strip() or None
    for paragraph in document.paragraphs:
        text = " ".join(paragraph.text.split())
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style == "Title" or style.startswith("Heading"):
            headings.append((offset, text))
            title = title or text
        blocks.append(text)
        offset += len(text) + 2
    if not blocks:
        raise DocumentError("it holds no text")
    return Extracted("\n\n".join(blocks), "docx", title, headings=tuple(headings))


def check_zip(raw: bytes) -> None:
    """Refuse what is not a zip, or unpacks to too much (a zip bomb posing as a .docx)."""
    if not raw.startswith(b"PK\x03\x04"):
        raise DocumentError("it is not a Word .docx file (not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as error:
        raise DocumentError(f"it is a damaged zip archive ({error})") from None
    unpacked = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos) or 1
    if unpacked > MAX_UNZIPPED_BYTES or unpacked / packed > MAX_ZIP_RATIO:
        raise DocumentError(f"it would unpack to {unpacked:,} bytes (a zip bomb?)")


def html(raw: bytes) -> Extracted:
    import trafilatura

    page = decode_html(raw)
    # Markdown output keeps headings and paragraph breaks (plain-text output loses both); emphasis is dropped.
    text = trafilatura.extract(
        page, output_format="markdown", include_comments=False, include_tables=True, include_formatting=True
    )
    text = EMPHASIS.sub(r"\2", text or "")
    if not text.strip():
        raise DocumentError("no main text was found in this web page")
    metadata = trafilatura.extract_metadata(page)
    extracted = markdown(text.encode("utf-8"))
    title = (metadata.title if metadata else None) or extracted.title
    return Extracted(extracted.text, "html", title, headings=extracted.headings)


def decode_html(raw: bytes) -> str:
    if b"\x00" in raw[:4096]:
        raise DocumentError("it looks binary, not a web page")
    text = raw.decode("utf-8-sig", errors="replace")
    if "<" not in text[:4096]:
        raise DocumentError("it is not a web page (no HTML markup)")
    return text


CONVERTERS: dict[str, Callable[[bytes], Extracted]] = {
    ".txt": plain_text,
    ".md": markdown,
    ".markdown": markdown,
    ".pdf": pdf,
    ".docx": docx,
    ".html": html,
    ".htm": html,
}
SUFFIXES = tuple(CONVERTERS)


def convert(suffix: str, raw: bytes) -> Extracted:
    """The text and structure of a file's bytes, by its suffix; ``DocumentError`` when it cannot be read."""
    converter = CONVERTERS.get(suffix.lower())
    if converter is None:
        raise DocumentError(f"{suffix or 'no suffix'} is not a supported type ({', '.join(SUFFIXES)})")
    if not raw.strip():
        raise DocumentError("it is empty")
    extracted = converter(raw)
    if not extracted.text.strip():
        raise DocumentError("it is empty")
    return replace(
        extracted,
        text=LONE_SURROGATE.sub("\ufffd", extracted.text),
        title=extracted.title and LONE_SURROGATE.sub("\ufffd", extracted.title),
        headings=tuple((offset, LONE_SURROGATE.sub("\ufffd", heading)) for offset, heading in extracted.headings),
    )
