"""Converting documents on a Ray cluster: each changed file read, converted and split in a Ray task.

``RayConverter`` is a ``qa.search.sync.Converter``: give it to ``QA(bulk_converter=...)`` (``qa index --ray`` does)
and indexing converts the changed documents on the cluster's free CPUs, one task per document (PDF parsing is the
CPU work of indexing besides embedding), while the driver only reads the files' bytes and assembles the index. The
tasks need neither the documents folder nor the index: the bytes travel with them. A file that cannot be read is
left out with the same warning as in one process; a task that dies is retried by Ray.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qa.documents.converters import DocumentError
from qa.documents.paragraphs import Converted, convert_file, read_file, warn_skipped
from qa.serving.cluster import WAIT_FOR_WORKERS_S, connect, require_ray, wait_for_free_cpus

log = logging.getLogger(__name__)


def convert_task(doc_id: str, name: str, raw: bytes) -> Converted | str:
    """A Ray task's work: the file converted and split, or why it cannot be read."""
    try:
        return convert_file(doc_id, Path(name), raw)
    except DocumentError as error:
        return str(error)


class RayConverter:
    """Converts documents in Ray tasks of one CPU each, as many at a time as the cluster has free CPUs.
    ``wait_s``: how long to wait for one free CPU before giving up with a RuntimeError that says so."""

    def __init__(self, address: str | None = None, wait_s: float = WAIT_FOR_WORKERS_S):
        connect(address)
        self.wait_s = wait_s
        self._task = require_ray().remote(num_cpus=1, max_retries=3)(convert_task)

    def __call__(self, items: list[tuple[str, Path]]) -> list[Converted | None]:
        ray = require_ray()
        pending: dict[int, object] = {}
        for position, (doc_id, path) in enumerate(items):
            try:
                raw = read_file(path)
            except (DocumentError, OSError) as error:
                warn_skipped(doc_id, error)
                continue
            if not pending:
                wait_for_free_cpus(1, self.wait_s, "Converting documents")
            pending[position] = self._task.remote(doc_id, path.name, raw)
        converted: list[Converted | None] = [None] * len(items)
        for position, result in zip(pending, ray.get(list(pending.values()))):
            if isinstance(result, str):
                warn_skipped(items[position][0], result)
            else:
                converted[position] = result
        log.info("Converted %d documents on the Ray cluster.", sum(c is not None for c in converted))
        return converted
