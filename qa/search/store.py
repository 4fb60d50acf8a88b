"""The store: the index's paragraphs, documents, segments and settings in one SQLite file, ``store.sqlite``.

SQLite (the standard library's) rather than JSON: a paragraph is fetched by its row when it is retrieved, a
document is listed, added or removed in one transaction that a crash rolls back whole, and nothing is parsed at
start. Each paragraph knows its segment and its local id there (``qa/search/segments.py``); a removed paragraph's
place is kept in ``removed`` until its segment is merged. ``version`` changes with every commit (what Ray
replicas follow). Rollback journal rather than WAL, so that the store is one file to copy while no build runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from qa.documents.library import DocumentInfo
from qa.documents.paragraphs import Paragraph

STORE_NAME = "store.sqlite"
FORMAT_VERSION = 3  # 3: SQLite store and segments (2: one meta.json, see qa/search/legacy.py)
BUSY_TIMEOUT_S = 60  # a reader waits this long for a commit of another process
SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
    title TEXT NOT NULL, kind TEXT NOT NULL, pages INTEGER, paragraphs INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS paragraphs (
    row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, paragraph INTEGER NOT NULL, text TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, title TEXT NOT NULL, page INTEGER, section TEXT,
    segment TEXT NOT NULL, local INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS paragraphs_of_document ON paragraphs (doc_id);
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, files TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS removed (segment TEXT NOT NULL, local INTEGER NOT NULL, PRIMARY KEY (segment, local));
"""
PARAGRAPH_COLUMNS = 'row, doc_id, paragraph, text, start, "end", title, page, section'


@dataclass(frozen=True)
class StoredDocument:
    """What the store knows of a document's file: its content's sha256, and its size and mtime when last seen."""

    sha256: str
    size: int | None
    mtime_ns: int | None


@dataclass(frozen=True)
class NewDocument:
    """A converted document to store: its listing, its file's identity, its paragraphs."""

    info: DocumentInfo
    stored: StoredDocument
    paragraphs: tuple[Paragraph, ...]


class Store:
    """One open ``store.sqlite``; safe to share between threads. ``read_only``: opened without write access (it
    never writes, and works on a read-only mount); else created when missing."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = path
        target = f"file:{quote(str(path.absolute()))}?mode=ro" if read_only else str(path)
        self._connection = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=read_only
        )
        self._lock = threading.RLock()
        if not read_only:
            self._connection.executescript(SCHEMA)

    def close(self) -> None:
        self._connection.close()

    def query(self, sql: str, parameters: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, tuple(parameters)).fetchall()

    def settings(self) -> dict[str, str]:
        return dict(self.query("SELECT key, value FROM settings"))

    def documents(self) -> dict[str, StoredDocument]:
        rows = self.query("SELECT doc_id, sha256, size, mtime_ns FROM documents ORDER BY doc_id")
        return {doc_id: StoredDocument(sha, size, mtime) for doc_id, sha, size, mtime in rows}

    def infos(self) -> list[DocumentInfo]:
        """Every stored document as listed to people, by name."""
        rows = self.query("SELECT doc_id, title, kind, pages, paragraphs, size FROM documents ORDER BY doc_id")
        return [DocumentInfo(*row[:5], row[5] or 0) for row in rows]

    def segments(self) -> dict[str, dict]:
        return {name: json.loads(files) for name, files in self.query("SELECT name, files FROM segments")}

    def removed(self) -> dict[str, list[int]]:
        """Segment -> local ids of its removed paragraphs."""
        found: dict[str, list[int]] = {}
        for segment, local in self.query("SELECT segment, local FROM removed"):
            found.setdefault(segment, []).append(local)
        return found

    def paragraphs_at(self, rows: list[int]) -> dict[int, Paragraph]:
        """Row -> paragraph, for those of ``rows`` still stored."""
        found = {}
        for start in range(0, len(rows), 500):  # under SQLite's limit on parameters
            chunk = [int(row) for row in rows[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            for row, *fields in self.query(f"SELECT {PARAGRAPH_COLUMNS} FROM paragraphs WHERE row IN ({marks})", chunk):
                found[row] = Paragraph(*fields)
        return found

    def all_paragraphs(self) -> Iterator[tuple[int, Paragraph]]:
        """(row, paragraph) for every stored paragraph, by document and position."""
        for row, *fields in self.query(f"SELECT {PARAGRAPH_COLUMNS} FROM paragraphs ORDER BY doc_id, paragraph"):
            yield row, Paragraph(*fields)

    def placed(self, doc_ids: Iterable[str]) -> list[tuple[str, int, str]]:
        """(segment, local id, text) of every stored paragraph of ``doc_ids``."""
        found = []
        for doc_id in doc_ids:
            found += self.query("SELECT segment, local, text FROM paragraphs WHERE doc_id = ?", (doc_id,))
        return found

    def commit(
        self,
        removed: Iterable[str] = (),
        added: Iterable[NewDocument] = (),
        segment: tuple[str, dict] | None = None,
        seen: dict[str, StoredDocument] | None = None,
        settings: dict[str, str] | None = None,
    ) -> str:
        """One transaction: drop the documents ``removed``, store ``added`` (their paragraphs, in order, are the
        rows of ``segment``), record new stats of unchanged files (``seen``), update ``settings``; returns the new
        version."""
        version = uuid.uuid4().hex
        with self._transaction() as cursor:
            for doc_id in removed:
                cursor.execute("INSERT INTO removed SELECT segment, local FROM paragraphs WHERE doc_id = ?", (doc_id,))
                cursor.execute("DELETE FROM paragraphs WHERE doc_id = ?", (doc_id,))
                cursor.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            next_row = int(self._setting(cursor, "next_row", "0"))
            local = 0
            for document in added:
                info, stored = document.info, document.stored
                cursor.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        info.name,
                        stored.sha256,
                        stored.size,
                        stored.mtime_ns,
                        info.title,
                        info.kind,
                        info.pages,
                        info.paragraphs,
                    ),
                )
                cursor.executemany(
                    "INSERT INTO paragraphs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            next_row + local + i,
                            p.doc_id,
                            p.paragraph,
                            p.text,
                            p.start,
                            p.end,
                            p.title,
                            p.page,
                            p.section,
                            segment[0],
                            local + i,
                        )
                        for i, p in enumerate(document.paragraphs)
                    ],
                )
                local += len(document.paragraphs)
            if segment is not None:
                cursor.execute("INSERT INTO segments VALUES (?, ?)", (segment[0], json.dumps(segment[1])))
            for doc_id, stored in (seen or {}).items():
                cursor.execute(
                    "UPDATE documents SET size = ?, mtime_ns = ? WHERE doc_id = ?",
                    (stored.size, stored.mtime_ns, doc_id),
                )
            updates = {**(settings or {}), "next_row": str(next_row + local), "version": version}
            cursor.executemany("INSERT OR REPLACE INTO settings VALUES (?, ?)", updates.items())
        return version

    def next_row(self) -> int:
        return int(self.settings().get("next_row", 0))

    def replace_segments(self, old: Iterable[str], new: tuple[str, dict] | None, placed: list[tuple[int, int]]) -> None:
        """Commit a merge: ``old`` segments give way to ``new`` (None: they held nothing alive), where ``placed``
        says each row's local id."""
        old = list(old)
        with self._transaction() as cursor:
            cursor.executemany("DELETE FROM removed WHERE segment = ?", [(name,) for name in old])
            cursor.executemany("DELETE FROM segments WHERE name = ?", [(name,) for name in old])
            if new is not None:
                cursor.executemany(
                    "UPDATE paragraphs SET segment = ?, local = ? WHERE row = ?",
                    [(new[0], local, row) for row, local in placed],
                )
                cursor.execute("INSERT INTO segments VALUES (?, ?)", (new[0], json.dumps(new[1])))
            cursor.execute("INSERT OR REPLACE INTO settings VALUES ('version', ?)", (uuid.uuid4().hex,))

    def rows_in(self, segment: str) -> list[tuple[int, int]]:
        """(row, local id) of the stored paragraphs of ``segment``."""
        return self.query("SELECT row, local FROM paragraphs WHERE segment = ? ORDER BY local", (segment,))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    @staticmethod
    def _setting(cursor: sqlite3.Cursor, key: str, default: str) -> str:
        found = cursor.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return found[0] if found else default
