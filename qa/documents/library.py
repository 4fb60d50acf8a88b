"""The documents folder as a library: where it is, add files (checked, under safe names), remove them.

A user's library is ``library/`` in the working directory unless told otherwise (``QA(documents_dir=...)``,
``--documents``): a folder of its own beside ``index/``, which git ignores, so a person's documents never mix with
the shipped sample (``seeds/``, read-only to the product) and a checkout's tests never see them. The working
directory rather than a per-user data folder, so that each project keeps its own library next to its own index,
in plain sight. Started on first use with a copy of the sample article, so the first question has an answer.

Used by ``qa add`` / ``qa remove`` and the documents panel (their lists come from the index's store). A file is
converted before it is stored, so a corrupt, empty, password-protected or wrongly named file is refused with a
message and never reaches the folder; it is written to a hidden temp file and renamed, so a crash leaves the folder
as it was. Names are reduced to a safe base name (no folders, no path traversal) and an existing file is only
replaced when asked. The index follows the folder on the next question (``QA.index()``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qa.documents.converters import SUFFIXES, DocumentError
from qa.documents.paragraphs import MAX_DOCUMENT_BYTES, Document, document_paths, split_paragraphs

DEFAULT_LIBRARY = Path("library")
SAMPLE = Path(__file__).resolve().parents[2] / "seeds"  # the checkout's sample article (absent from a plain install)
UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class DocumentInfo:
    """One document of the library, as listed to people."""

    name: str  # its doc_id: the path relative to the documents folder
    title: str
    kind: str
    pages: int | None
    paragraphs: int
    bytes: int

    @property
    def summary(self) -> str:
        """Its type, pages and paragraphs as people read them: "pdf, 1 page, 12 paragraphs"."""
        counts = [(self.pages, "page"), (self.paragraphs, "paragraph")]
        return ", ".join([self.kind] + [f"{n} {noun}{'s' * (n != 1)}" for n, noun in counts if n is not None])


def library_folder(folder: str | Path | None = None) -> Path:
    """The documents folder: ``folder`` as given, else the user's library ``library/``, created on first use with a
    copy of the sample documents (renamed into place whole: a killed start leaves no half library)."""
    if folder is not None:
        return Path(folder)
    if not DEFAULT_LIBRARY.exists():
        DEFAULT_LIBRARY.absolute().parent.mkdir(parents=True, exist_ok=True)
        start = Path(tempfile.mkdtemp(prefix=".library-", dir=DEFAULT_LIBRARY.absolute().parent))
        for path in document_paths(SAMPLE) if SAMPLE.is_dir() else []:
            shutil.copy2(path, start / path.name)
        try:
            os.replace(start, DEFAULT_LIBRARY)
        except OSError:  # another process started it meanwhile
            shutil.rmtree(start, ignore_errors=True)
    return DEFAULT_LIBRARY


def safe_name(name: str) -> str:
    """A file name fit for the documents folder: the base name only, odd characters replaced, the suffix
    lower-cased; ``DocumentError`` for a type the product does not read."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    suffix = f".{suffix.lower()}" if dot else ""
    if suffix not in SUFFIXES:
        raise DocumentError(f"{suffix or 'a file without a suffix'} is not a supported type ({', '.join(SUFFIXES)})")
    stem = UNSAFE.sub("_", stem).strip(" ._-")[: MAX_NAME_CHARS - len(suffix)] or "document"
    return stem + suffix


def describe(document: Document, size: int) -> DocumentInfo:
    pages = len(document.page_starts) or None
    return DocumentInfo(document.doc_id, document.title, document.kind, pages, len(split_paragraphs(document)), size)


def add_document(
    folder: str | Path, name: str, data: bytes, replace: bool = False, max_bytes: int = MAX_DOCUMENT_BYTES
) -> DocumentInfo:
    """Check ``data`` (a file called ``name``) and store it in ``folder`` under a safe name.

    Raises ``DocumentError`` (with the reason) for a file the product cannot read, and ``FileExistsError``
    when a document of that name exists and ``replace`` is False."""
    folder = Path(folder)
    target_name = safe_name(name)
    if len(data) > max_bytes:
        raise DocumentError(f"{len(data):,} bytes is over the {max_bytes:,}-byte limit")
    target = folder / target_name
    document = Document.from_bytes(target_name, target, data)  # raises DocumentError before anything is written
    if target.exists() and not replace:
        raise FileExistsError(f"{target_name} is already in the library; replace it to store the new one")
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{target_name}.adding"
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return describe(document, len(data))


def remove_document(folder: str | Path, name: str) -> Path:
    """Delete the document ``name`` (a path relative to ``folder``); refuses anything outside the folder."""
    folder = Path(folder).resolve()
    target = (folder / name).resolve()
    if folder not in target.parents or not target.is_file() or target.suffix.lower() not in SUFFIXES:
        raise FileNotFoundError(f"{name} is not a document in {folder}")
    target.unlink()
    return target
