"""Keep an index in step with a documents folder: what changed is converted, embedded and written, nothing else.

A file whose size and modification time match the store is taken as unchanged (as rsync and git do); one whose
stat changed is hashed and converted only when its content did. A change writes one new segment with the added
documents' paragraphs (vectors of paragraphs a replaced document kept are copied, not embedded again) and commits
it with the removals in one store transaction. When segments pile up they are merged (``MAX_SEGMENTS``). A full
rebuild (forced, another embedder, a damaged index) is written beside the old store and renamed over it, so the old
index stays usable until the new one is whole. Everything runs under the folder's build lock; files that no commit
references (a killed build's) are removed afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qa.documents.library import DocumentInfo
from qa.documents.paragraphs import Converted, document_paths, read_converted
from qa.search.embedder import TextEncoder
from qa.search.files import build_lock, file_sha256, fsync_directory
from qa.search.index import SEGMENTS_DIR, Index, IndexDamaged, Lender, load_index
from qa.search.legacy import legacy_vectors, remove_legacy
from qa.search.lexical import Postings
from qa.search.segments import Segment, write_segment
from qa.search.store import FORMAT_VERSION, STORE_NAME, NewDocument, Store, StoredDocument

log = logging.getLogger(__name__)

# Segments searched per question before the smallest are merged into one. A small segment costs ~0.1 ms a question
# (one FAISS search ~0.02 ms, BM25 lookups ~0.09 ms for a 3-term question, the seed article's segment, measured
# while a benchmark loaded the machine), so 8 keep a library grown one document at a time within a millisecond of
# a merged one.
MAX_SEGMENTS = 8
# A segment whose removed paragraphs pass this share of it is merged (rewritten without them).
MAX_REMOVED_SHARE = 0.5
# Converts files: (doc id, path) pairs -> each one converted and split, or None (with a warning) when unreadable.
Converter = Callable[[list[tuple[str, Path]]], list[Converted | None]]


def open_index(
    documents_dir: str | Path,
    index_dir: str | Path,
    embedder: TextEncoder,
    progress: bool = False,
    force: bool = False,
    previous: Index | None = None,
    converter: Converter | None = None,
) -> Index:
    """The index of the documents as they are now: brought up to date with what changed in the folder; rebuilt
    when forced, when the embedder changed, or when it is damaged (with a warning saying why). ``previous``: an
    index of this folder already open, whose unchanged segments are reused. ``converter``: what converts the
    changed files (default ``convert_here``; ``qa.serving.conversion.RayConverter`` on a cluster)."""
    documents_dir, index_dir = Path(documents_dir), Path(index_dir)
    paths = {path.relative_to(documents_dir).as_posix(): path for path in document_paths(documents_dir)}
    with build_lock(index_dir):
        current = _sound_index(index_dir, previous)
        same_model = current is not None and current.settings.get("embedder_identity") == embedder.identity
        changed = True
        if same_model and not force:
            with _writable(index_dir) as store:
                changed = _update(store, _vectors_in(current), paths, converter or convert_here, embedder, progress)
        else:
            lender = _vectors_in(current) if same_model else legacy_vectors(index_dir, embedder)
            _rebuild(index_dir, lender, paths, converter or convert_here, embedder, progress)
            remove_legacy(index_dir)
        index = load_index(index_dir, previous or current) if changed else current  # nothing written: as opened
        chosen = _segments_to_merge(index)
        if chosen:
            with _writable(index_dir) as store:
                _merge_segments(store, index, chosen)
            index = load_index(index_dir, index)
        _remove_unreferenced(index_dir)
        return index


@contextmanager
def _writable(index_dir: Path) -> Iterator[Store]:
    """The store of ``index_dir`` opened for writing (under the build lock), closed afterwards."""
    store = Store(index_dir / STORE_NAME)
    try:
        yield store
    finally:
        store.close()


def _sound_index(index_dir: Path, previous: Index | None) -> Index | None:
    if not (index_dir / STORE_NAME).exists():
        return None
    try:
        return load_index(index_dir, previous)
    except IndexDamaged as error:
        log.warning("Rebuilding the index: %s", error)
        return None


def _update(
    store: Store, lender: Lender, paths: dict[str, Path], converter: Converter, embedder: TextEncoder, progress: bool
) -> None:
    """Bring ``store`` in step with the files ``paths`` (doc id -> path); ``lender`` gives stored vectors. True when
    it committed anything."""
    stored = store.documents()
    gone = [doc_id for doc_id in stored if doc_id not in paths]
    seen, changed = {}, []  # changed: (doc id, path, stat) of the files to convert
    for doc_id, path in paths.items():
        known = stored.get(doc_id)
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile
            continue
        if known is not None and (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            continue
        if known is not None and file_sha256(path) == known.sha256:  # touched, not changed
            seen[doc_id] = StoredDocument(known.sha256, stat.st_size, stat.st_mtime_ns)
            continue
        if known is not None:
            gone.append(doc_id)  # replaced, or now unreadable
        changed.append((doc_id, path, stat))
    if gone or changed or seen:
        converted = converter([(doc_id, path) for doc_id, path, _ in changed])
        added = [_new_document(c, stat) for c, (_, _, stat) in zip(converted, changed) if c is not None]
        segment = _write_added(store, lender, added, embedder, progress)
        store.commit(removed=gone, added=added, segment=segment, seen=seen)
        log.info("Index: %d documents added or replaced, %d removed.", len(added), len(gone))
    return bool(gone or changed or seen)


def _rebuild(
    index_dir: Path, lender: Lender, paths: dict[str, Path], converter: Converter, embedder: TextEncoder, progress: bool
) -> None:
    """A new store over all of ``paths``, written beside the current one and renamed over it when whole."""
    temp = index_dir / f".store-{uuid.uuid4().hex[:8]}.tmp"
    store = Store(temp)
    try:
        settings = {
            "format": str(FORMAT_VERSION),
            "embedder": embedder_label(embedder.name),
            "embedder_identity": embedder.identity,
            "dimension": str(embedder.dimension),
        }
        store.commit(settings=settings)
        _update(store, lender, paths, converter, embedder, progress)
        store.close()
        os.replace(temp, index_dir / STORE_NAME)
        fsync_directory(index_dir)
    finally:
        store.close()
        temp.unlink(missing_ok=True)


def convert_here(items: list[tuple[str, Path]]) -> list[Converted | None]:
    """The default ``Converter``: each file read, converted and split in this process (None, with a warning, for
    one that cannot be read)."""
    return [read_converted(doc_id, path) for doc_id, path in items]


def embedder_label(name: str) -> str:
    """The embedder as the index names it for people: a hub id as it is, a local folder by its last two parts (no
    path of the machine that built it; the identity, a digest, is what decides)."""
    path = Path(name)
    return "/".join(path.parts[-2:]) if path.is_absolute() else name


def _new_document(converted: Converted, stat: os.stat_result) -> NewDocument:
    document, paragraphs = converted.document, converted.paragraphs
    pages = len(document.page_starts) or None
    info = DocumentInfo(document.doc_id, document.title, document.kind, pages, len(paragraphs), stat.st_size)
    return NewDocument(info, StoredDocument(document.sha256, stat.st_size, stat.st_mtime_ns), paragraphs)


def _write_added(store: Store, lender: Lender, added: list[NewDocument], embedder: TextEncoder, progress: bool):
    """The segment of the ``added`` documents' paragraphs (None when they have none)."""
    paragraphs = [paragraph for document in added for paragraph in document.paragraphs]
    if not paragraphs:
        return None
    reusable = lender([document.info.name for document in added])
    vectors = np.zeros((len(paragraphs), embedder.dimension), dtype=np.float32)
    missing = []
    for i, paragraph in enumerate(paragraphs):
        stored = reusable.get(paragraph.text)
        if stored is None:
            missing.append(i)
        else:
            vectors[i] = stored
    if missing:
        vectors[missing] = embedder.encode([paragraphs[i].text for i in missing], progress=progress)
    first = store.next_row()
    rows = np.arange(first, first + len(paragraphs), dtype=np.int64)
    postings = Postings.of_texts([paragraph.text for paragraph in paragraphs])
    segments_dir = store.path.parent / SEGMENTS_DIR
    segments_dir.mkdir(exist_ok=True)
    return write_segment(segments_dir, rows, vectors, postings)


def _vectors_in(index: Index | None) -> Lender:
    """What ``index`` lends: text -> stored vector, for its paragraphs of the doc ids asked."""

    def lend(doc_ids: list[str]) -> dict[str, np.ndarray]:
        segments = {segment.name: segment for segment in index.segments} if index is not None else {}
        by_segment: dict[str, list[tuple]] = {}
        for segment, local, text in index.store.placed(doc_ids) if index is not None else []:
            by_segment.setdefault(segment, []).append((local, text))
        found = {}
        for name, entries in by_segment.items():
            if name in segments:
                vectors = segments[name].vectors_of(np.array([local for local, _ in entries]))
                found.update({key: vector for (_, key), vector in zip(entries, vectors)})
        return found

    return lend


def _segments_to_merge(index: Index) -> list[Segment]:
    """Segments mostly removed, and, when there are more than ``MAX_SEGMENTS``, the smallest ones, so that half as
    many are left: each paragraph is copied a few times over the library's life, and a big segment (the first
    build) is rewritten only when most of it was removed."""
    chosen = [s for s in index.segments if len(s) and len(s.removed) > MAX_REMOVED_SHARE * len(s)]
    if len(index.segments) > MAX_SEGMENTS:
        smallest = sorted(index.segments, key=lambda segment: segment.alive)
        names = {segment.name for segment in chosen}
        chosen += [s for s in smallest[: len(smallest) - MAX_SEGMENTS // 2 + 1] if s.name not in names]
    return chosen


def _merge_segments(store: Store, index: Index, chosen: list[Segment]) -> None:
    """Rewrite the ``chosen`` segments' live paragraphs as one segment (none when nothing of them is alive)."""
    placed_rows, parts, vectors = [], [], []
    for segment in chosen:
        rows_and_locals = store.rows_in(segment.name)
        kept = np.array([local for _, local in rows_and_locals], dtype=np.int64)
        placed_rows += [row for row, _ in rows_and_locals]
        parts.append((segment.postings, kept))
        vectors.append(segment.vectors_of(kept))
    new = None
    if placed_rows:
        rows = np.array(placed_rows, dtype=np.int64)
        new = write_segment(index.folder / SEGMENTS_DIR, rows, np.concatenate(vectors), Postings.merged(parts))
    store.replace_segments([segment.name for segment in chosen], new, list(zip(placed_rows, range(len(placed_rows)))))
    log.info("Index: %d segments merged into one of %d paragraphs.", len(chosen), len(placed_rows))


def _remove_unreferenced(index_dir: Path) -> None:
    """Delete what no commit references: killed builds' temp files and segments, merged-away segments."""
    for path in index_dir.glob(".store-*.tmp*"):
        path.unlink(missing_ok=True)
    segments_dir = index_dir / SEGMENTS_DIR
    if not segments_dir.is_dir():
        return
    store = Store(index_dir / STORE_NAME, read_only=True)
    try:
        referenced = set(store.segments())
    finally:
        store.close()
    for path in segments_dir.iterdir():
        if path.name not in referenced:
            log.debug("Removing %s.", path)
            shutil.rmtree(path, ignore_errors=True)
