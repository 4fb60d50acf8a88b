"""ONNX Runtime for the two encoders (embedder, reader): export a transformers model once, cache it, run it.

PyTorch eager pays a fixed cost of about 15 ms per forward pass of a MiniLM on these CPUs (per-op dispatch,
unfused attention / LayerNorm / GELU, weights streamed op by op): as much as embedding the question itself,
and a third of reading a short passage. ONNX Runtime runs the same float32 graph with fused kernels: the same
logits (differences ~1e-5) in about half the time at our sizes (benchmarks/bench_reader.py).

The exported graph is cached in ``$QA_CACHE_DIR`` (default ``~/.cache/qa-docs``), keyed by the model folder's
files (names, sizes, modification times), the quantisation and the library versions, and written atomically
(temp file, then rename), so the export (a few seconds) happens once per model. ``QA_BACKEND=torch`` runs
PyTorch instead; hub ids (not local folders) and GPUs always run PyTorch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from qa.models import MODEL_FILE_SUFFIXES, cache_dir

log = logging.getLogger(__name__)

BACKEND_ENV = "QA_BACKEND"
BACKENDS = ("onnx", "torch")
QUANTIZATIONS = (None, "int8")


def choose_backend(backend: str | None, name_or_path: str | Path, device: torch.device) -> str:
    """``"onnx"`` or ``"torch"``: the one asked for (argument, else ``$QA_BACKEND``, else onnx), except that
    a hub id or a GPU runs on torch."""
    choice = (backend or os.environ.get(BACKEND_ENV) or "onnx").strip().lower()
    if choice not in BACKENDS:
        raise ValueError(f"Unknown backend {choice!r}; choose one of {', '.join(BACKENDS)} (or set {BACKEND_ENV}).")
    if choice == "onnx" and (device.type != "cpu" or not Path(name_or_path).is_dir()):
        return "torch"
    return choice


def fingerprint(folder: Path, kind: str, quantize: str | None) -> str:
    """A digest that changes when the model's files, the quantisation or the exporting libraries change."""
    import onnxruntime
    import transformers

    digest = hashlib.sha256(
        f"{kind}|{quantize}|torch {torch.__version__}|transformers {transformers.__version__}|"
        f"onnxruntime {onnxruntime.__version__}".encode()
    )
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in MODEL_FILE_SUFFIXES:
            stat = path.stat()
            digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


class OnnxEncoder:
    """An exported encoder run by ONNX Runtime on the CPU: ``encoder(features) -> [outputs as numpy]``."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]

    def __call__(self, features: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {name: np.asarray(features[name], dtype=np.int64) for name in self.input_names})


class _NamedOutputs(torch.nn.Module):
    """Positional inputs in, the chosen outputs as a tuple out: the shape ``torch.onnx.export`` traces."""

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str], output_names: Sequence[str]):
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(**dict(zip(self.input_names, inputs)))
        return tuple(outputs[name] for name in self.output_names)


class _DropMessage(logging.Filter):
    """Drops log records whose message contains ``text``."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def export(
    model: torch.nn.Module, target: Path, input_names: Sequence[str], output_names: Sequence[str], quantize: str | None
) -> None:
    """Export ``model`` (float32, eval mode) to ONNX at ``target`` with dynamic batch and length axes;
    ``quantize="int8"`` adds dynamic int8 quantisation of the weights (per channel)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _NamedOutputs(model.float().eval(), input_names, output_names)
    example = tuple(torch.ones((2, 16), dtype=torch.long) for _ in input_names)
    axes = {name: {0: "batch", 1: "tokens"} for name in input_names} | {
        name: {0: "batch", 1: "tokens"} for name in output_names
    }
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as work:
        graph = Path(work) / "model.onnx"
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes about Python-side shape checks
            torch.onnx.export(
                wrapper,
                example,
                str(graph),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = Path(work) / "model-int8.onnx"
            hint = _DropMessage("pre-processing before quantization")  # advice for static image models
            logging.getLogger().addFilter(hint)
            try:
                quantize_dynamic(graph, quantized, per_channel=True, weight_type=QuantType.QInt8)
            finally:
                logging.getLogger().removeFilter(hint)
            graph = quantized
        os.replace(graph, target)


def load_encoder(
    folder: str | Path,
    kind: str,
    load_model: Callable[[], torch.nn.Module],
    input_names: Sequence[str],
    output_names: Sequence[str],
    quantize: str | None = None,
    threads: int | None = None,
) -> OnnxEncoder:
    """The ONNX Runtime encoder for the model in ``folder``: from the cache, else exported now (once); it runs on
    ``threads`` intra-op threads (default: torch's thread count)."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantisation {quantize!r}; choose int8 or none.")
    folder = Path(folder)
    target = cache_dir() / f"{kind}-{fingerprint(folder, kind, quantize)}.onnx"
    if not target.is_file():
        log.info("exporting %s %s to ONNX (once): %s", kind, folder, target)
        export(load_model(), target, input_names, output_names, quantize)
    return OnnxEncoder(target, threads=threads or torch.get_num_threads())
