"""The Gradio chat page over a ``QA`` (used by ``app.py`` and ``qa serve``).

Safe defaults: the server listens on 127.0.0.1 unless told otherwise, warns when it listens beyond
the loopback interface without ``--auth``, sends no telemetry, exposes no monitoring page, and
refuses uploads over ``MAX_UPLOAD`` (the page takes none). Questions are limited to 4000 characters in
the text box and to ``MAX_QUESTION_CHARS`` by the pipeline, which refuses longer ones before any work.
"""

from __future__ import annotations

import ipaddress
import logging
import unicodedata

import gradio as gr

from qa.chat import escape, render_markdown
from qa.chat import turns as chat_turns
from qa.pipeline import MAX_QUESTION_CHARS, QA, QuestionError

log = logging.getLogger(__name__)

EXAMPLES = [
    "Where did the meeting take place?",
    "How many civilians were evacuated since Monday?",
    "Where was a similar deal reached in May?",
    "How many militants remain in the city?",
]
CONCURRENCY = 2  # reader forwards use both cores; more in parallel only adds queueing inside torch
MAX_QUEUE = 256
MAX_UPLOAD = "1mb"  # the page has no file inputs; this bounds what /gradio_api/upload accepts
LOCALHOST = {"127.0.0.1", "localhost", "::1"}
HISTORY_TURNS = 2  # follow-ups use the last turn only; older turns are dropped before any work
HISTORY_CHARS = MAX_QUESTION_CHARS  # per message; of an earlier answer only its first line is used


def respond(qa: QA, message: str, history: list) -> str:
    """One chat turn: the rendered answer, or a clear message for a question that cannot be asked."""
    try:
        return render_markdown(qa.answer(message, history=safe_history(history)))
    except QuestionError as error:
        return f"**{escape(str(error))}**"
    except Exception as error:  # the page must keep serving; the log keeps the traceback
        log.exception("Answering failed")
        return f"**Sorry, something went wrong while answering: {escape(type(error).__name__)}.**"


def safe_history(history, turns: int = HISTORY_TURNS, max_chars: int = HISTORY_CHARS) -> list[tuple[str, str]]:
    """The last ``turns`` (question, answer) pairs of a history sent by the browser (untrusted), as plain
    text without control characters or lone surrogates, each message cut to ``max_chars``."""
    pairs = chat_turns(history if isinstance(history, list) else [])[-turns:]
    return [(_safe_text(question, max_chars), _safe_text(answer, max_chars)) for question, answer in pairs]


def _safe_text(text: str, max_chars: int) -> str:
    text = text[:max_chars]
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") and ch != "\n" else ch for ch in text)


def build_app(qa: QA | None = None, concurrency: int = CONCURRENCY, max_queue: int = MAX_QUEUE) -> gr.Blocks:
    """The chat page: answer in bold, citations with the answer span highlighted, example questions."""
    qa = qa or QA()
    with gr.Blocks(title="Ask your documents", analytics_enabled=False) as app:
        gr.Markdown(
            "## Ask your documents\nAnswers are copied word for word from the documents, "
            "with the paragraph they come from and the answer highlighted."
        )
        gr.ChatInterface(
            fn=lambda message, history: respond(qa, message, history),
            chatbot=gr.Chatbot(height=520, sanitize_html=True, render_markdown=True, label="Chat"),
            textbox=gr.Textbox(placeholder="Ask a question about the documents", max_length=4000, label="Question"),
            examples=EXAMPLES,
            cache_examples=False,
            api_name="chat",
        )
    app.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return app


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``"user:password"`` -> ``(user, password)``; None when no login is wanted."""
    if not auth:
        return None
    user, _, password = auth.partition(":")
    if not user or not password:
        raise ValueError("--auth takes user:password")
    return user, password


def is_local(host: str) -> bool:
    """True when ``host`` is a loopback name or address (reachable from this machine only)."""
    if host in LOCALHOST:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, credentials: tuple[str, str] | None) -> str | None:
    """The warning to give when the server would listen beyond localhost without a login, else None."""
    if is_local(host) or credentials is not None:
        return None
    where = host or "all interfaces"
    return f"Listening on {where} without --auth: anyone who can reach this address can use the chat."


def launch_options(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None) -> dict:
    """Keyword arguments for ``Blocks.launch`` with the safe defaults described in the module docstring.
    Logs a warning when they would open the chat beyond this machine without a login."""
    credentials = parse_auth(auth)
    warning = exposure_warning(host, credentials)
    if warning:
        log.warning(warning)
    return {
        "server_name": host,
        "server_port": port,
        "auth": credentials,
        "show_error": False,
        "max_file_size": MAX_UPLOAD,
        "enable_monitoring": False,
        "share": False,
        "mcp_server": False,
    }


def serve(
    qa: QA | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    concurrency: int = CONCURRENCY,
    max_queue: int = MAX_QUEUE,
) -> None:
    """Start the chat server (blocks). ``auth`` is "user:password"; warns when open beyond localhost."""
    options = launch_options(host, port, auth)
    qa = qa or QA()
    qa.index(progress=True)  # build or check the index before the first visitor
    build_app(qa, concurrency, max_queue).launch(**options)
