"""The Gradio chat page over a ``QA`` (used by ``app.py`` and ``qa serve``)."""

from __future__ import annotations

import logging

import gradio as gr

from qa.chat import escape, render_markdown
from qa.pipeline import QA, QuestionError

log = logging.getLogger(__name__)

EXAMPLES = [
    "Where did the meeting take place?",
    "How many civilians were evacuated since Monday?",
    "Where was a similar deal reached in May?",
    "How many militants remain in the city?",
]
CONCURRENCY = 2  # reader forwards use both cores; more in parallel only adds queueing inside torch
MAX_QUEUE = 256
LOCALHOST = {"127.0.0.1", "localhost", "::1"}


def respond(qa: QA, message: str, history: list) -> str:
    """One chat turn: the rendered answer, or a clear message for a question that cannot be asked."""
    try:
        return render_markdown(qa.answer(message, history=history))
    except QuestionError as error:
        return f"**{escape(str(error))}**"
    except Exception as error:  # the page must keep serving; the log keeps the traceback
        log.exception("Answering failed")
        return f"**Sorry, something went wrong while answering: {escape(type(error).__name__)}.**"


def build_app(qa: QA | None = None) -> gr.Blocks:
    """The chat page: answer in bold, citations with the answer span highlighted, example questions."""
    qa = qa or QA()
    with gr.Blocks(title="Ask your documents") as app:
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
    app.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    return app


def serve(qa: QA | None = None, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None) -> None:
    """Start the chat server (blocks). ``auth`` is "user:password"; warns when open beyond localhost."""
    credentials = None
    if auth:
        user, _, password = auth.partition(":")
        if not user or not password:
            raise ValueError("--auth takes user:password")
        credentials = (user, password)
    if host not in LOCALHOST and credentials is None:
        log.warning("Listening on %s without --auth: anyone who can reach this address can use the chat.", host)
    qa = qa or QA()
    qa.index(progress=True)  # build or check the index before the first visitor
    build_app(qa).launch(server_name=host, server_port=port, auth=credentials, show_error=False)
