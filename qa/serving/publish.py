"""The index published to Ray's object store: replicas answer from it without a shared file system.

The process that serves (``qa serve --ray``) keeps the library and builds the index, as on one machine; then it
publishes the index files (the store and its segments, ``qa/search/index.py``) to the object store under the
store's version, through one small actor (``IndexRegistry``). Segments never change once written, so each is put
once and a new version adds only the store and the new segments. Each replica (``PublishedQA``) copies the files it
lacks into a private temp folder of its node, verifies and opens it, and checks the registry for a newer version
every ``FOLLOW_S`` in a background thread: a document added (page, ``qa add``) reaches every replica
without a restart. A question never touches the file system: replicas need neither the documents folder nor
the index folder, and never build an index.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from qa.pipeline import QA
from qa.search.files import build_lock
from qa.search.index import SEGMENTS_DIR, Index, load_index
from qa.search.retriever import Retriever
from qa.search.store import STORE_NAME, Store

log = logging.getLogger(__name__)

REGISTRY_NAME = "qa-index"
REGISTRY_NAMESPACE = "qa"
# How often the serving process looks for changed documents, and each replica for a newer published version:
# a check is one folder scan in the serving process and one tiny actor call in a replica.
FOLLOW_S = 1.0


class IndexRegistry:
    """A Ray actor holding the latest published index version: its name and its files' object refs."""

    def __init__(self):
        self.version, self.files = "", {}

    def publish(self, version: str, files: dict) -> None:
        self.version, self.files = version, files

    def latest_version(self) -> str:
        return self.version

    def latest(self) -> tuple[str, dict]:
        return self.version, self.files


_created: list = []  # the publishing process holds the registry's handle: Ray ends an actor nobody holds
_published: list[str] = []  # the version this process last published (no read, lock or actor call while unchanged)
_segment_refs: dict[str, object] = {}  # segment file ("segments/<name>/<file>") -> its object ref, put once


def registry(create: bool = False):
    """The cluster's index registry actor (created when ``create``; ValueError when there is none). It lives as
    long as the process that created it (``qa serve --ray``), which ``undeploy`` ends it in."""
    import ray

    if create and not _created:  # keep the creating handle: the actor lives while its creator holds it
        actor = ray.remote(num_cpus=0)(IndexRegistry)
        _created.append(actor.options(name=REGISTRY_NAME, namespace=REGISTRY_NAMESPACE, get_if_exists=True).remote())
    if create:
        return _created[0]
    return ray.get_actor(REGISTRY_NAME, namespace=REGISTRY_NAMESPACE)


def forget_registry() -> None:
    """Drop this process's handle of the registry (after ``undeploy`` ended it)."""
    _created.clear()
    _published.clear()
    _segment_refs.clear()


def publish(qa: QA) -> str:
    """Bring ``qa``'s index up to date with its documents and publish it when it is not the latest version;
    returns the published version."""
    import ray

    current = qa.index().version
    if _published == [current]:
        return current
    with build_lock(qa.index_dir):  # no builder replaces the files while they are read
        store = Store(qa.index_dir / STORE_NAME, read_only=True)
        try:
            version, segments = store.settings()["version"], store.segments()
        finally:
            store.close()
        files = {STORE_NAME: ray.put((qa.index_dir / STORE_NAME).read_bytes())}
        for name, segment_files in segments.items():
            for file in segment_files:
                path = f"{SEGMENTS_DIR}/{name}/{file}"
                if path not in _segment_refs:
                    _segment_refs[path] = ray.put((qa.index_dir / path).read_bytes())
                files[path] = _segment_refs[path]
    ray.get(registry(create=True).publish.remote(version, files))
    _published[:] = [version]
    for path in set(_segment_refs) - set(files):  # merged away: let the object store free them
        del _segment_refs[path]
    log.info("Published index version %s to the Ray object store.", version)
    return version


def follow(qa: QA, stop: threading.Event, every: float = FOLLOW_S) -> threading.Thread:
    """Publish ``qa``'s index again whenever its documents change, until ``stop`` is set (a daemon thread)."""

    def loop() -> None:
        while not stop.wait(every):
            try:
                publish(qa)
            except Exception as error:  # keep following; say why this round failed
                log.warning("Could not publish the index: %s", error)

    thread = threading.Thread(target=loop, name="qa-publish", daemon=True)
    thread.start()
    return thread


class PublishedQA(QA):
    """A replica's ``QA``: answers from the latest published index version (see the module docstring); the
    documents and index folders of ``options`` are never read."""

    def __init__(self, every: float = FOLLOW_S, **options):
        super().__init__(**options)
        self._registry = registry()
        self._version = ""
        self._copies = Path(tempfile.mkdtemp(prefix="qa-published-"))
        self.refresh()
        threading.Thread(target=self._follow, args=(every,), name="qa-follow", daemon=True).start()

    def index(self, force: bool = False, progress: bool = False) -> Index:
        """The published index this replica answers from (no documents folder to check)."""
        with self._lock:
            return self._retriever.index

    def refresh(self) -> bool:
        """Open the latest published version when it is newer than the one in use; True when it changed."""
        import ray

        latest = ray.get(self._registry.latest_version.remote())  # a name, not the files' refs
        if not latest:
            raise RuntimeError("No index is published on this Ray cluster yet (qa.serving.publish.publish).")
        if latest == self._version:
            return False
        version, refs = ray.get(self._registry.latest.remote())
        folder = self._copies / version
        (folder / SEGMENTS_DIR).mkdir(parents=True, exist_ok=True)
        (self._copies / SEGMENTS_DIR).mkdir(exist_ok=True)
        wanted = {path: ref for path, ref in refs.items() if path == STORE_NAME or not (self._copies / path).exists()}
        for path, data in zip(wanted, ray.get(list(wanted.values()))):
            target = folder / path if path == STORE_NAME else self._copies / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for segment in {Path(path).parent.name for path in refs if path != STORE_NAME}:  # segments are shared
            (folder / SEGMENTS_DIR / segment).symlink_to(self._copies / SEGMENTS_DIR / segment)
        previous_index = self._retriever.index if self._retriever is not None else None
        retriever = Retriever(load_index(folder, previous_index), self.embedder)  # new files verified on the way in
        with self._lock:
            self._retriever, previous, self._version = retriever, self._version, version
        if previous:
            shutil.rmtree(self._copies / previous, ignore_errors=True)
        in_use = {Path(path).parent.name for path in refs}
        for segment in (self._copies / SEGMENTS_DIR).iterdir():  # merged away (open files stay readable)
            if segment.name not in in_use:
                shutil.rmtree(segment, ignore_errors=True)
        log.info("Answering from index version %s.", version)
        return True

    def _follow(self, every: float) -> None:
        while True:
            time.sleep(every)
            try:
                self.refresh()
            except Exception as error:  # keep answering from the version in use
                log.warning("Could not open the published index: %s", error)
