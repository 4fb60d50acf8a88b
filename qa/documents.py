"""Load documents from a folder and split them into paragraphs with exact char offsets.

A paragraph is a blank-line separated block of a ``.txt`` or ``.md`` file. Its ``text`` is the exact
slice ``source[start:end]`` (only the surrounding white space is trimmed), so a citation's offsets
point into the real file. Boilerplate blocks (category tags, "Related Articles", "Back to top button")
are dropped by rule: a block with no sentence punctuation and fewer than ``MIN_HEADLINE_WORDS`` words.
Headlines, which are long, stay. Blocks longer than ``max_chars`` are cut at sentence ends.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")
MIN_HEADLINE_WORDS = 6
MAX_PARAGRAPH_CHARS = 1500
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
BLOCK_SEPARATOR = re.compile(r"\n[ \t\r\f\v]*\n")
SENTENCE_MARK = re.compile(r"[.!?:;\"”’)]\s*$|[.!?]\s")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+")


@dataclass(frozen=True)
class Paragraph:
    """One citable paragraph: ``text == source_file_text[start:end]``."""

    doc_id: str  # file path relative to the documents folder, with '/' separators
    paragraph: int  # 0-based position among the document's kept paragraphs
    text: str
    start: int  # char offset in the decoded document
    end: int

    @property
    def id(self) -> str:
        return f"{self.doc_id}#{self.paragraph}"


@dataclass(frozen=True)
class Document:
    doc_id: str
    path: Path
    sha256: str
    text: str


def document_paths(folder: str | Path) -> list[Path]:
    """The ``.txt``/``.md`` files under ``folder``, sorted, hidden files skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Documents folder {folder} does not exist.")
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def read_document(path: Path, folder: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> Document | None:
    """Read one file as UTF-8 text; warn and return None when it is unreadable, binary, empty or too big."""
    doc_id = path.relative_to(folder).as_posix()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            log.warning("Skipping %s: %d bytes is over the %d-byte limit.", doc_id, size, max_bytes)
            return None
        raw = path.read_bytes()
    except OSError as error:
        log.warning("Skipping %s: cannot read it (%s).", doc_id, error)
        return None
    if b"\x00" in raw:
        log.warning("Skipping %s: it looks binary (contains NUL bytes).", doc_id)
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        log.warning("Skipping %s: not UTF-8 text (%s).", doc_id, error.reason)
        return None
    if not text.strip():
        log.warning("Skipping %s: it is empty.", doc_id)
        return None
    return Document(doc_id, path, hashlib.sha256(raw).hexdigest(), text)


def load_documents(folder: str | Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> list[Document]:
    """Every readable document under ``folder`` (unreadable ones are skipped with a warning)."""
    folder = Path(folder)
    documents = [read_document(path, folder, max_bytes) for path in document_paths(folder)]
    return [doc for doc in documents if doc is not None]


def is_boilerplate(block: str) -> bool:
    """A short block with no sentence punctuation: a tag, a menu item, a button label."""
    return len(block.split()) < MIN_HEADLINE_WORDS and not SENTENCE_MARK.search(block)


def split_paragraphs(document: Document, max_chars: int = MAX_PARAGRAPH_CHARS) -> list[Paragraph]:
    """Split a document into content paragraphs with offsets into ``document.text``."""
    spans = []
    position = 0
    for separator in [*BLOCK_SEPARATOR.finditer(document.text), None]:
        block_end = separator.start() if separator else len(document.text)
        spans.extend(_trimmed_pieces(document.text, position, block_end, max_chars))
        position = separator.end() if separator else block_end
    kept = [(start, end) for start, end in spans if not is_boilerplate(document.text[start:end])]
    return [
        Paragraph(document.doc_id, number, document.text[start:end], start, end)
        for number, (start, end) in enumerate(kept)
    ]


def _trimmed_pieces(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """(start, end) of the block ``text[start:end]`` without surrounding white space, cut at sentence
    ends into pieces of at most ``max_chars`` (a single longer sentence is cut at white space)."""
    block = text[start:end]
    stripped = block.strip()
    if not stripped:
        return []
    start += len(block) - len(block.lstrip())
    end = start + len(stripped)
    pieces = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        cut = max((m.end() for m in SENTENCE_END.finditer(window)), default=0)
        if cut == 0:
            cut = window.rfind(" ") + 1 or max_chars
        pieces.append((start, start + len(window[:cut].rstrip())))
        start += cut
        start += len(text[start:end]) - len(text[start:end].lstrip())
    pieces.append((start, end))
    return pieces


def load_paragraphs(folder: str | Path) -> tuple[list[Document], list[Paragraph]]:
    """Documents and all their paragraphs, in a stable order."""
    documents = load_documents(folder)
    return documents, [p for doc in documents for p in split_paragraphs(doc)]
