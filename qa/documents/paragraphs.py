"""Load documents from a folder and split them into paragraphs with exact char offsets.

Each file goes through its format's converter (``qa/documents/converters.py``: text, Markdown, PDF, Word, HTML), which
gives the document's text, title, pages and headings. A paragraph is a blank-line separated block of that
text. Its ``text`` is the exact slice ``document.text[start:end]`` (only the surrounding white space is
trimmed), so a citation's offsets point into the real text; it also knows its page and section.
Boilerplate blocks (category tags, "Related Articles", "Back to top button")
are dropped by rule: a block with no sentence punctuation and fewer than ``MIN_HEADLINE_WORDS`` words.
Headlines, which are long, stay. Blocks longer than ``max_chars`` are cut at sentence ends.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from qa.documents.converters import SUFFIXES, DocumentError, Extracted, convert

log = logging.getLogger(__name__)

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
    start: int  # char offset in the document's text
    end: int
    title: str = ""  # the document's display title
    page: int | None = None  # 1-based page (documents with pages: PDF)
    section: str | None = None  # the nearest heading before the paragraph

    @property
    def id(self) -> str:
        return f"{self.doc_id}#{self.paragraph}"


@dataclass(frozen=True)
class Document:
    doc_id: str
    path: Path
    sha256: str
    text: str
    kind: str = "text"
    title: str = ""  # from the file's metadata or first heading, else the file name
    page_starts: tuple[int, ...] = ()
    headings: tuple[tuple[int, str], ...] = field(default_factory=tuple)

    @classmethod
    def from_bytes(cls, doc_id: str, path: Path, raw: bytes) -> Document:
        """Convert a file's bytes (by its suffix); ``DocumentError`` when they cannot be read as that type."""
        extracted: Extracted = convert(path.suffix, raw)
        return cls(
            doc_id,
            path,
            hashlib.sha256(raw).hexdigest(),
            extracted.text,
            extracted.kind,
            extracted.title or path.name,
            extracted.page_starts,
            extracted.headings,
        )

    def page_at(self, offset: int) -> int | None:
        """1-based page holding char ``offset`` (None without pages)."""
        return bisect.bisect_right(self.page_starts, offset) if self.page_starts else None

    def section_at(self, offset: int) -> str | None:
        """The last heading starting at or before ``offset``."""
        position = bisect.bisect_right(self.headings, offset, key=lambda heading: heading[0])
        return self.headings[position - 1][1] if position else None


def document_paths(folder: str | Path) -> list[Path]:
    """The documents under ``folder`` (files of a supported type), sorted; hidden files and folders skipped."""
    return sorted(Path(entry.path) for entry in _document_entries(Path(folder)))


def folder_fingerprint(folder: str | Path) -> tuple:
    """Names, sizes and modification times of the documents under ``folder``: changes when any file does. Asked
    before every question: os.scandir, not pathlib (10,000 files: p50 55 ms instead of ~190 ms on this machine,
    ``benchmarks/bench_library.py``)."""
    entries = []
    for entry in _document_entries(Path(folder)):
        try:
            stat = entry.stat()
        except OSError:  # removed meanwhile
            continue
        entries.append((entry.path, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def _document_entries(folder: Path) -> list[os.DirEntry]:
    """The directory entries of the documents under ``folder`` (symlinked folders not followed)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"Documents folder {folder} does not exist.")
    found, folders = [], [folder]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(Path(entry.path))
                    elif os.path.splitext(entry.name)[1].lower() in SUFFIXES and entry.is_file():
                        found.append(entry)
        except OSError:  # a subfolder removed meanwhile or unreadable
            continue
    return found


@dataclass(frozen=True)
class Converted:
    """A document converted and split into paragraphs: what indexing stores of a file."""

    document: Document
    paragraphs: tuple[Paragraph, ...]


def read_converted(doc_id: str, path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> Converted | None:
    """Read, convert and split one file; warn and return None when it is unreadable, of a bad type, empty or too
    big (the one place that decides what indexing leaves out)."""
    try:
        return convert_file(doc_id, path, read_file(path, max_bytes))
    except (DocumentError, OSError) as error:
        warn_skipped(doc_id, error)
        return None


def read_document(path: Path, folder: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> Document | None:
    """Read and convert one file of ``folder``; warn and return None when it cannot be used (``read_converted``)."""
    converted = read_converted(path.relative_to(folder).as_posix(), path, max_bytes)
    return converted.document if converted is not None else None


def warn_skipped(doc_id: str, error: Exception | str) -> None:
    """Say why a document is left out of the index (indexing goes on without it)."""
    if isinstance(error, OSError):
        log.warning("Skipping %s: cannot read it (%s).", doc_id, error)
    else:
        log.warning("Skipping %s: %s.", doc_id, error)


def read_file(path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
    """A document's bytes; ``DocumentError`` when it is over ``max_bytes`` (before reading it), ``OSError``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(f"{size} bytes is over the {max_bytes}-byte limit")
    return path.read_bytes()


def convert_file(doc_id: str, path: Path, raw: bytes) -> Converted:
    """A file's bytes converted and split (``DocumentError`` when they cannot be read as their type): the CPU
    work of indexing a document besides its embedding, which ``qa.serving.conversion`` runs in Ray tasks."""
    document = Document.from_bytes(doc_id, path, raw)
    return Converted(document, tuple(split_paragraphs(document)))


def load_documents(folder: str | Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> list[Document]:
    """Every readable document under ``folder`` (unreadable ones are skipped with a warning)."""
    return _load_converted(folder, max_bytes)[0]


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
        Paragraph(
            document.doc_id,
            number,
            document.text[start:end],
            start,
            end,
            document.title,
            document.page_at(start),
            document.section_at(start),
        )
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
    return _load_converted(folder, MAX_DOCUMENT_BYTES)


def _load_converted(folder: str | Path, max_bytes: int) -> tuple[list[Document], list[Paragraph]]:
    folder = Path(folder)
    paths = document_paths(folder)
    kept = [c for path in paths if (c := read_converted(path.relative_to(folder).as_posix(), path, max_bytes))]
    return [c.document for c in kept], [p for c in kept for p in c.paragraphs]
