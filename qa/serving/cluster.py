"""The product on a Ray cluster: bulk embedding as a Ray Data job, answering as a Ray Serve deployment.

Ray is an optional extra (``pip install -e ".[ray]"``); nothing else in ``qa`` imports it.

- ``RayEmbedder`` has the ``TextEncoder`` interface of ``qa.search.embedder.Embedder``: give it to
  ``QA(bulk_encoder=...)`` (or ``qa index --ray``) and the index is built as always (same files, atomic writes,
  unchanged paragraphs keep their vectors) while the paragraphs are embedded by a pool of actors, one model load each,
  in batches. Ray retries the batches of an actor that dies and restarts it, so the vectors still come back complete.
- ``deploy`` starts ``AnswerService``: N replicas of ``QA`` (each loads the models once) behind Ray Serve's
  HTTP proxy (``POST /answer`` -> ``answer_record``) with Serve's own queueing and back-pressure;
  ``ServedQA`` is a ``QA`` whose answers come from that deployment, so the Gradio page works unchanged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from qa.conversation.chat import History
from qa.documents.library import DEFAULT_LIBRARY
from qa.pipeline import QA, QuestionError, Unavailable
from qa.reading.answers import Answer, answer_record
from qa.search.embedder import Embedder
from qa.serving.access import basic_auth_allows
from qa.serving.publish import PublishedQA, forget_registry, publish, registry

log = logging.getLogger(__name__)

RAY_MISSING = 'Ray is not installed: pip install -e ".[ray]" (or pip install "ray[data,serve]").'
APP_NAME = "qa"
# Paragraphs per actor call: large enough that Ray's per-task cost (~ms) vanishes next to ~60 ms of embedding
# per paragraph on one core, small enough that a killed actor loses little work.
EMBED_BATCH = 64
# One request at a time per replica: answering is CPU-bound and a replica has one CPU; the rest wait in
# Serve's queue, which refuses (HTTP 503, ``Unavailable`` in Python) past MAX_QUEUED_REQUESTS.
MAX_ONGOING_REQUESTS = 1
MAX_QUEUED_REQUESTS = 64
# How long indexing waits for free CPUs for its embedding actors (actors of an earlier run may still be ending)
# before it gives up with a message, instead of waiting forever for CPUs that serving replicas hold.
WAIT_FOR_WORKERS_S = 120


def require_ray():
    """The ``ray`` module, or a RuntimeError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    return ray


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one started on this machine with ``ray start``), or
    start a private one on this machine when ``address`` is None. Does nothing when already connected."""
    ray = require_ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, logging_level=logging.WARNING, **({} if address else {"include_dashboard": False}))
    except ConnectionError as error:
        raise RuntimeError(f"Cannot reach a Ray cluster at {address}: {error}") from error


def wait_for_free_cpus(needed: int, wait_s: float, who: str) -> None:
    """Wait until the cluster has ``needed`` free CPUs; after ``wait_s``, a RuntimeError that says how many are free."""
    ray = require_ray()
    deadline = time.monotonic() + wait_s
    while (free := int(ray.available_resources().get("CPU", 0))) < needed:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{who} need {needed} free CPUs; the Ray cluster had {free} free for {wait_s:g} s. Ask for fewer "
                "(--workers), free CPUs, or add a node."
            )
        time.sleep(0.5)


class EmbedBatches:
    """A Ray Data actor: loads the embedder once, then embeds batches of {"row", "text"}."""

    def __init__(self, name: str):
        import torch

        torch.set_num_threads(1)  # one CPU per actor: the pool, not the threads, gives the parallelism
        self.embedder = Embedder(name, backend="torch")

    def __call__(self, batch: dict) -> dict:
        return {"row": batch["row"], "vector": self.embedder.encode([str(text) for text in batch["text"]])}


class RayEmbedder:
    """Embeds on a Ray cluster with ``workers`` actors (default: one per free CPU of the cluster, so that indexing
    shares a cluster with serving replicas). ``embedder``: a loaded ``Embedder`` (its model is not loaded again
    here), or a model name or folder (default: the packaged one). ``wait_s``: how long to wait for the actors to
    start before giving up with a RuntimeError that says what was missing.

    The vectors equal ``Embedder``'s (same model, same steps; differences ~1e-7 from batch padding)."""

    def __init__(
        self,
        embedder: str | Embedder | None = None,
        workers: int | None = None,
        address: str | None = None,
        batch_size: int = EMBED_BATCH,
        wait_s: float = WAIT_FOR_WORKERS_S,
    ):
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        connect(address)
        ray = require_ray()
        if not isinstance(embedder, Embedder):  # a name or folder: load it here for its name and vector size
            embedder = Embedder(embedder, backend="torch")
        self.name, self.identity, self.dimension = embedder.name, embedder.identity, embedder.dimension
        total, free = int(ray.cluster_resources().get("CPU", 0)), int(ray.available_resources().get("CPU", 0))
        if workers is None and free < 1:
            raise RuntimeError(
                f"All {total} CPUs of the Ray cluster are in use (serving replicas hold theirs): add a node, "
                "stop a deployment, or wait, then index again."
            )
        self.workers = workers or free
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.plan = f"{self.workers} embedding actors, 1 CPU each (the cluster has {free} of {total} CPUs free)"

    def wait_for_cpus(self) -> None:
        """Wait until the cluster has a free CPU for each actor (Ray Data would wait for them forever)."""
        wait_for_free_cpus(self.workers, self.wait_s, f"{self.workers} embedding actors")

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """``[len(texts), dimension]`` float32, L2-normalised; raises RuntimeError when rows are missing."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ray = require_ray()
        self.wait_for_cpus()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        rows = ray.data.from_items([{"row": i, "text": text} for i, text in enumerate(texts)])
        embedded = rows.map_batches(
            EmbedBatches,
            fn_constructor_args=(self.name,),
            batch_size=self.batch_size,
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=1,
        )
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        seen = np.zeros(len(texts), dtype=bool)
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            vectors[batch["row"]] = batch["vector"]
            seen[batch["row"]] = True
        if not seen.all():
            raise RuntimeError(f"The cluster returned {seen.sum()} of {len(texts)} vectors.")
        return vectors


class AnswerService:
    """One Serve replica: answers from the published index (``PublishedQA``), models loaded once, before the
    first request. ``credentials``: the login ``POST /answer`` requires (HTTP basic auth), as the page's ``--auth``."""

    def __init__(self, options: dict, credentials: tuple[str, str] | None = None):
        self.credentials = credentials
        self.qa = PublishedQA(**options)
        self.qa.reader  # noqa: B018 (loads the reader now rather than on the first question)

    def answer(self, question: str, history: History | None = None, top_k: int | None = None) -> Answer:
        return self.qa.answer(question, history=history, top_k=top_k)

    async def __call__(self, request):
        """``POST /answer`` with ``{"question": str, "history": [[question, answer], ...], "top_k": int}``."""
        from starlette.responses import JSONResponse

        if request.url.path.rstrip("/") != "/answer":
            return JSONResponse({"error": "not found: POST /answer"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405)
        if not basic_auth_allows(request.headers.get("authorization"), self.credentials):
            challenge = {"WWW-Authenticate": 'Basic realm="qa"'}
            return JSONResponse({"error": "login required"}, status_code=401, headers=challenge)
        try:
            body = await request.json()
            question, history, top_k = parse_request(body)
            return JSONResponse(answer_record(self.qa.answer(question, history=history, top_k=top_k)))
        except (ValueError, QuestionError) as error:  # includes malformed JSON
            return JSONResponse({"error": str(error)}, status_code=400)


def parse_request(body) -> tuple[str, History | None, int | None]:
    """(question, history, top_k) from a ``POST /answer`` body; ValueError says what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("question"), str):
        raise ValueError('the body must be a JSON object with a "question" string')
    history = body.get("history")
    if history is not None and not (
        isinstance(history, list)
        and all(isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn) for turn in history)
    ):
        raise ValueError('"history" must be a list of [question, answer] string pairs')
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 20):
        raise ValueError('"top_k" must be an integer from 1 to 20')
    return body["question"], [tuple(turn) for turn in history] if history else None, top_k


def deploy(
    qa_options: dict,
    replicas: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    address: str | None = None,
    max_queued: int = MAX_QUEUED_REQUESTS,
    credentials: tuple[str, str] | None = None,
    source: QA | None = None,
):
    """Publish the index of ``source`` (default: a ``QA`` of ``qa_options``; built here when needed, never in a
    replica), then start (or replace) the ``AnswerService`` deployment with ``replicas`` replicas and its HTTP
    endpoint at ``http://host:port/answer``; past ``max_queued`` waiting requests Serve refuses more (HTTP 503).
    Keep later document changes flowing to the replicas with ``qa.serving.publish.follow``. Returns the handle."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    connect(address)
    from ray import serve

    publish(source or QA(**qa_options))
    # replicas never read these folders (they answer from the published index); given so none starts a library
    options = {**qa_options, "documents_dir": str(Path(qa_options["documents_dir"] or DEFAULT_LIBRARY).resolve())}
    options["index_dir"] = str(Path(qa_options["index_dir"]).resolve())
    serve.start(http_options={"host": host, "port": port})
    running = serve.context._get_global_client().http_config  # a cluster's Serve keeps the address it started with
    if (running.host, running.port) != (host, port):
        raise RuntimeError(
            f"Ray Serve already runs on this cluster with its HTTP endpoint at {running.host}:{running.port}: "
            f"use that address (--host {running.host} --api-port {running.port}) or stop it first (serve shutdown)."
        )
    service = serve.deployment(
        AnswerService,
        name="AnswerService",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": 1},  # Ray then sets OMP_NUM_THREADS=1: torch and ONNX Runtime use 1 thread
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
        max_queued_requests=max_queued,
    )
    return serve.run(service.bind(options, credentials), name=APP_NAME, route_prefix="/", blocking=False)


def undeploy() -> None:
    """Remove the deployment and its published index (the cluster keeps running)."""
    import ray
    from ray import serve

    serve.delete(APP_NAME)
    try:
        ray.kill(registry())
    except ValueError:  # none published
        pass
    forget_registry()


class ServedQA(QA):
    """A ``QA`` that answers through the Serve deployment (``handle``); the documents folder and indexing stay in
    this process, which publishes each new index version to the replicas (``qa.serving.publish``)."""

    def __init__(self, handle, **options):
        super().__init__(**options)
        self.handle = handle

    def answer(self, question: str, history: History | None = None, top_k: int | None = None) -> Answer:
        from ray.serve.exceptions import BackPressureError

        try:
            return self.handle.answer.remote(question, history, top_k).result()
        except BackPressureError:
            raise Unavailable("Too many questions are waiting; please ask again in a moment.") from None
        except Exception as error:  # a replica's own error comes wrapped: give the question's back
            cause = getattr(error, "cause", None)
            if isinstance(cause, QuestionError):
                raise cause from None
            raise
