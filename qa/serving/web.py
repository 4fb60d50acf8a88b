"""The Gradio chat page over a ``QA`` (used by ``app.py`` and ``qa serve``): the chat, and a "Documents"
panel to add files (several at once, the types ``qa/documents/converters.py`` reads), list them and remove one.

Safe defaults: the server listens on 127.0.0.1 unless told otherwise, warns when it listens beyond
the loopback interface without ``--auth``, sends no telemetry, exposes no monitoring page, and
refuses uploads over ``MAX_UPLOAD``. Uploaded files are checked by their converter before they are stored
under a safe name (``qa/documents/library.py``); a bad file gets a message and changes nothing. Questions are limited
to 4000 characters in the text box and to ``MAX_QUESTION_CHARS`` by the pipeline.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import Path

import gradio as gr

from qa.conversation.chat import escape, render_markdown, unescape
from qa.conversation.chat import turns as chat_turns
from qa.conversation.smalltalk import kind as small_talk_kind
from qa.conversation.smalltalk import reply as small_talk
from qa.documents.converters import SUFFIXES, DocumentError
from qa.documents.library import add_document, remove_document
from qa.documents.paragraphs import MAX_DOCUMENT_BYTES
from qa.models import resolve_reader
from qa.pipeline import MAX_QUESTION_CHARS, QA, QuestionError, Unavailable
from qa.reading.confidence import card_min_confidence
from qa.reading.reader import read_card
from qa.serving.access import exposure_warning, parse_auth

log = logging.getLogger(__name__)

EXAMPLES = [
    "Where did the meeting take place?",
    "How many civilians were evacuated since Monday?",
    "Where was a similar deal reached in May?",
    "How many militants remain in the city?",
]
CONCURRENCY = 2  # reader forwards use both cores; more in parallel only adds queueing inside torch
MAX_QUEUE = 256
MAX_UPLOAD = f"{MAX_DOCUMENT_BYTES // (1024 * 1024)}mb"  # what /gradio_api/upload accepts: one document's limit
MAX_FILES_PER_UPLOAD = 20
HISTORY_TURNS = 4  # earlier turns a follow-up's referents come from; older turns are dropped before any work
PLACEHOLDER = "Ask a question about the documents"
HISTORY_CHARS = MAX_QUESTION_CHARS  # per message; of an earlier answer only its first line is used


def respond(qa: QA, message: str, history: list) -> str | gr.ChatMessage:
    """One chat turn: a reply to small talk, the rendered answer (with the readings to choose from as buttons
    when a follow-up could mean two things), or a clear message for a question that cannot be asked."""
    try:
        chatter = small_talk(message, titles(qa)) if isinstance(message, str) else None
        if chatter:
            return chatter
        answer = qa.answer(message, history=safe_history(history))
        if answer.clarify:
            options = [{"label": reading, "value": reading} for reading in answer.clarify]
            return gr.ChatMessage(content=render_markdown(answer), options=options)
        return render_markdown(answer)
    except (QuestionError, Unavailable) as error:
        return f"**{escape(str(error))}**"
    except Exception as error:  # the page must keep serving; the log keeps the traceback
        log.exception("Answering failed")
        return f"**Sorry, something went wrong while answering: {escape(type(error).__name__)}.**"


def policy(qa: QA) -> str:
    """The answer policy in words (read from the reader card: the model is not loaded for it)."""
    needed = qa.min_confidence_override
    if needed is None:
        needed = card_min_confidence(read_card(resolve_reader(qa.reader_name)))
    return f"It answers when an answer is at least {round(100 * needed)}% likely right." if needed is not None else ""


def titles(qa: QA) -> list[str]:
    """The titles of the indexed documents, in library order (from the index's store: no document is converted)."""
    return list(dict.fromkeys(info.title or info.name for info in qa.index().infos()))


class Chat(gr.ChatInterface):
    """Gradio's chat with three changes a person expects: the user's own text is shown as typed (escaped, so
    ``<b>x</b>`` shows its tags), a choice clicked under a reply is shown the same way, and the question box
    keeps its placeholder after the first question. (Overrides of ``gr.ChatInterface`` internals of Gradio 6.)"""

    def _message_as_message_dict(self, message, role):
        if role == "user" and isinstance(message, str):
            message = escape(message)
        return super()._message_as_message_dict(message, role)

    def option_clicked(self, history, option: gr.SelectData):
        history, value = super().option_clicked(history, option)
        history[-1] = {"role": "user", "content": escape(str(value))}
        return history, value

    def _clear_and_save_textbox(self, message):
        return gr.Textbox("", interactive=False, placeholder=PLACEHOLDER), message


def safe_history(history, turns: int = HISTORY_TURNS, max_chars: int = HISTORY_CHARS) -> list[tuple[str, str]]:
    """The last ``turns`` (question, answer) pairs of a history sent by the browser (untrusted), as plain
    text without control characters or lone surrogates, each message cut to ``max_chars``; the user's messages
    as typed (the page shows them escaped); small talk ("hello", "thanks") is no turn a follow-up can lean on."""
    kept: list[tuple[str, str]] = []
    for question, answer in reversed(chat_turns(history if isinstance(history, list) else [])):
        question = unescape(question[: 4 * max_chars])  # the page shows the user's text escaped: read it as typed
        if small_talk_kind(question):
            continue
        kept.append((question, answer))
        if len(kept) == turns:
            break
    return [(_safe_text(question, max_chars), _safe_text(answer, max_chars)) for question, answer in reversed(kept)]


def _safe_text(text: str, max_chars: int) -> str:
    text = text[:max_chars]
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") and ch != "\n" else ch for ch in text)


def add_files(qa: QA, paths: list[str] | None, replace: bool) -> str:
    """Store uploaded files in the documents folder and index them; one line of news per file (escaped)."""
    if not paths:
        return "Choose one or more files first."
    if len(paths) > MAX_FILES_PER_UPLOAD:
        return f"At most {MAX_FILES_PER_UPLOAD} files at once, please."
    lines, added = [], 0
    for path in paths:
        name = Path(path).name
        try:
            info = add_document(qa.documents_dir, name, Path(path).read_bytes(), replace=replace)
        except FileExistsError:
            lines.append(f"- **{escape(name)}** is already in the library: tick *replace* to store the new one.")
            continue
        except (OSError, DocumentError) as error:
            lines.append(f"- **{escape(name)}** was not added: {escape(str(error))}.")
            continue
        lines.append(f"- **{escape(info.name)}** added ({escape(info.summary)}).")
        added += 1
    if added:
        qa.index(progress=True)
    return "\n".join(lines)


def remove_file(qa: QA, name: str | None) -> str:
    """Remove a document from the folder and the index."""
    if not name:
        return "Choose a document to remove."
    try:
        remove_document(qa.documents_dir, name)
    except FileNotFoundError as error:
        return escape(str(error))
    qa.index(progress=True)
    return f"**{escape(name)}** removed."


def library_rows(qa: QA) -> list[list]:
    """The documents panel's table: name, title, type, pages, paragraphs (from the index's store)."""
    return [[d.name, d.title, d.kind, d.pages or "", d.paragraphs] for d in qa.index().infos()]


def build_app(qa: QA | None = None, concurrency: int = CONCURRENCY, max_queue: int = MAX_QUEUE) -> gr.Blocks:
    """The chat page (answer in bold, citations with the answer highlighted, example questions) and the
    documents panel (add, list, remove)."""
    qa = qa or QA()
    with gr.Blocks(title="Ask your documents", analytics_enabled=False) as app:
        gr.Markdown(
            "## Ask your documents\nAnswers are copied word for word from the documents, "
            f"with the paragraph they come from and the answer highlighted. {policy(qa)}"
        )
        Chat(
            fn=lambda message, history: respond(qa, message, history),
            chatbot=gr.Chatbot(height=520, sanitize_html=True, render_markdown=True, label="Chat"),
            textbox=gr.Textbox(placeholder=PLACEHOLDER, max_length=4000, label="Question", submit_btn="Send"),
            examples=EXAMPLES,
            cache_examples=False,
            api_name="chat",
        )
        with gr.Accordion("Documents", open=False):
            table = gr.Dataframe(
                headers=["name", "title", "type", "pages", "paragraphs"],
                interactive=False,
                label="Indexed documents",
                elem_id="library-table",
            )
            with gr.Row():
                files = gr.File(
                    file_count="multiple",
                    file_types=list(SUFFIXES),
                    label=f"Add documents ({', '.join(SUFFIXES)}; up to {MAX_UPLOAD} each)",
                    elem_id="add-files",
                )
                with gr.Column():
                    replace = gr.Checkbox(label="replace documents of the same name", value=False)
                    add = gr.Button("Add to the library", variant="primary")
                    choice = gr.Dropdown(
                        choices=[], label="Document to remove", allow_custom_value=False, elem_id="remove-choice"
                    )
                    remove = gr.Button("Remove from the library", variant="stop")
            status = gr.Markdown(elem_id="library-status")

        def refreshed(message: str):
            rows = library_rows(qa)
            return message, rows, gr.Dropdown(choices=[row[0] for row in rows], value=None)

        add.click(
            lambda paths, again, progress=gr.Progress(track_tqdm=True): (*refreshed(add_files(qa, paths, again)), None),
            [files, replace],
            [status, table, choice, files],
            api_name="add_documents",
        )
        remove.click(
            lambda name: refreshed(remove_file(qa, name)), [choice], [status, table, choice], api_name="remove"
        )
        app.load(lambda: refreshed("")[1:], None, [table, choice], api_visibility="undocumented")
    app.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return app


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
