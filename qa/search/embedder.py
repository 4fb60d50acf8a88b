"""Turn texts into sentence vectors: the embedder the index and the retriever share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.models import model_identity, resolve_embedder
from qa.models.runtime import choose_backend, load_encoder


class TextEncoder(Protocol):
    """What the index needs of an embedder: its name, its identity (``model_identity``: what the index records and
    matches), vector size and ``encode``.
    ``Embedder`` runs in this process; ``qa.serving.cluster.RayEmbedder`` spreads the work over a Ray cluster."""

    name: str
    identity: str
    dimension: int

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


class Embedder:
    """A sentence-transformers model that turns texts into normalised float32 vectors.

    A plain mean-pooling model in a local folder (``modules.json`` = Transformer, mean Pooling and optionally
    Normalize, no lower-casing: all-MiniLM-L6-v2, the default, is one) runs straight on transformers with the
    same steps as ``SentenceTransformer.encode``: texts sorted by length, batches tokenised with padding and
    truncation to ``max_seq_length``, mean of the token vectors under the attention mask, L2 normalisation.
    That skips importing sentence_transformers (scikit-learn, scipy.stats: about 3 s of a cold start) and its
    per-call overhead (see benchmarks/bench_answer.py). Any other model goes through ``SentenceTransformer``.

    Runtimes (``backend="onnx"``, the default on CPU): a few texts (a question) go through ONNX Runtime
    (``qa/models/runtime.py``), 2-3x faster than PyTorch there; bulk encoding (indexing) goes through PyTorch, loaded
    on first need, about 25% faster than ONNX Runtime on batches of long paragraphs. Both give the same
    vectors (differences ~1e-7). ``backend="torch"`` uses PyTorch for everything.
    """

    def __init__(
        self,
        name_or_path: str | None = None,
        device: str | None = None,
        batch_size: int = 16,
        backend: str | None = None,
    ):
        self.name = resolve_embedder(name_or_path)
        self.identity = model_identity(self.name)
        self.batch_size = batch_size
        self.max_seq_length = plain_mean_pooling_length(self.name)
        if self.max_seq_length is None:
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(self.name, device=device or "cpu")
            self.tokenizer = self.encoder = None
            self.backend = "torch"
            self.dimension = self.model.get_embedding_dimension()
            return
        import torch
        from transformers import AutoConfig, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        config = AutoConfig.from_pretrained(self.name)
        self.max_seq_length = min(self.max_seq_length, config.max_position_embeddings)
        self.dimension = config.hidden_size
        self.device = torch.device(device or "cpu")
        self.backend = choose_backend(backend, self.name, self.device)
        self.model = self.encoder = None
        if self.backend == "onnx":
            self.encoder = load_encoder(
                self.name, "embedder", self._load_torch_model, self.tokenizer.model_input_names, ["last_hidden_state"]
            )
        else:
            self.model = self._load_torch_model().to(self.device)

    def _load_torch_model(self):
        import torch
        from transformers import AutoModel

        return AutoModel.from_pretrained(self.name, dtype=torch.float32).eval()

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """``[len(texts), dimension]`` float32, L2-normalised."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.tokenizer is None:
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        return self._encode_plain(texts, progress)

    def _encode_plain(self, texts: list[str], progress: bool) -> np.ndarray:
        from tqdm.auto import tqdm

        order = np.argsort([-len(text) for text in texts])  # as SentenceTransformer.encode: longest first
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in tqdm(range(0, len(texts), self.batch_size), desc="Batches", disable=not progress):
            batch = order[start : start + self.batch_size]
            features = self.tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            tokens = self._token_vectors(features, bulk=len(texts) > self.batch_size)
            mask = features["attention_mask"][:, :, None].astype(np.float32)
            mean = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            vectors[batch] = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return vectors

    def _token_vectors(self, features, bulk: bool) -> np.ndarray:
        """``[B, T, dimension]`` float32 token vectors of a padded numpy batch (``bulk``: one of many)."""
        if self.encoder is not None and not bulk:
            return self.encoder(features)[0]
        import torch

        if self.model is None:
            self.model = self._load_torch_model().to(self.device)

        with torch.inference_mode():
            inputs = {key: torch.from_numpy(value).to(self.device) for key, value in features.items()}
            return self.model(**inputs).last_hidden_state.float().cpu().numpy()


def plain_mean_pooling_length(name_or_path: str) -> int | None:
    """``max_seq_length`` of a local sentence-transformers folder that is only Transformer -> mean Pooling
    (-> Normalize) without lower-casing, else None (then ``SentenceTransformer`` must load it)."""
    folder = Path(name_or_path)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or modules[0]["path"]:
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        prompts = folder / "config_sentence_transformers.json"
        if prompts.is_file() and json.loads(prompts.read_text(encoding="utf-8")).get("default_prompt_name"):
            return None  # encode() would prepend a prompt
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    mean_only = pooling.get("pooling_mode_mean_tokens") is True and not any(
        value for key, value in pooling.items() if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    )
    if not mean_only and pooling.get("pooling_mode") != "mean":
        return None
    if config.get("do_lower_case") or not isinstance(config.get("max_seq_length"), int):
        return None
    if set(config) - {"max_seq_length", "do_lower_case"}:  # prompts, other processing: leave to sentence_transformers
        return None
    return config["max_seq_length"]
