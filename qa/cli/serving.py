"""``qa serve``: the chat page, on this machine or answered by Ray Serve replicas (``--ray``)."""

from __future__ import annotations

import argparse
import logging
import threading

from qa.cli.options import add_ray, add_top_k, make_qa, new_command, qa_options


def add_parsers(commands) -> None:
    sub = new_command(commands, "serve", run_serve, "start the chat web page")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    sub.add_argument("--port", type=int, default=7860)
    sub.add_argument(
        "--auth", metavar="USER:PASSWORD", help="require this login (the page, and with --ray POST /answer too)"
    )
    add_top_k(sub)
    add_ray(sub, "answer with replicas on the Ray cluster at ADDRESS, also over HTTP: POST /answer")
    sub.add_argument("--replicas", type=int, default=1, help="with --ray: answering replicas (default: %(default)s)")
    sub.add_argument(
        "--api-port", type=int, default=8000, help="with --ray: port of POST /answer (default: %(default)s)"
    )


def run_serve(args: argparse.Namespace) -> None:
    from qa.serving.web import serve

    if args.ray is None:
        serve(make_qa(args), host=args.host, port=args.port, auth=args.auth)
        return
    from qa.serving.access import exposure_warning, parse_auth
    from qa.serving.cluster import ServedQA, deploy, undeploy
    from qa.serving.publish import follow
    from qa.serving.web import CONCURRENCY

    options = qa_options(args)
    credentials = parse_auth(args.auth)  # the page's login, also for POST /answer
    served = ServedQA(None, **options)
    served.index(progress=True)  # built here, with a progress bar; the replicas get it from the object store
    served.handle = deploy(
        options, args.replicas, args.host, args.api_port, args.ray or None, credentials=credentials, source=served
    )
    stop = threading.Event()
    follow(served, stop)  # document changes (the page, qa add) reach the replicas
    warning = exposure_warning(args.host, credentials)
    if warning:
        logging.getLogger(__name__).warning("POST /answer: %s", warning)
    print(f"{args.replicas} answering replicas; JSON answers at http://{args.host}:{args.api_port}/answer")
    try:
        # the page's workers only wait on the replicas: enough of them to keep every replica busy
        workers = max(CONCURRENCY, 2 * args.replicas)
        serve(served, args.host, args.port, args.auth, concurrency=workers)
    finally:
        stop.set()
        undeploy()
