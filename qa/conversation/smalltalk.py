"""What a chat answers that is not a question about the documents: greetings, thanks, goodbyes, "help" / "what
can you do?", and "which documents do you have?" (the library's titles).

A message is small talk only when all of it is: "hello", "thanks!", "what can you do?"; "Hi, who leads the
SDF?" is a question and goes to the documents. The replies are fixed text (the titles come from the index).
"""

from __future__ import annotations

import re

from qa.conversation.chat import escape

GREETING = r"(?:hi|hello|hey|hiya|howdy|greetings|good\s+(?:morning|afternoon|evening|day))(?:\s+there)?"
THANKS = r"(?:thanks|thank\s+you|thank\s+u|thx|ty|cheers|many\s+thanks|great|perfect|nice|ok|okay|cool)"
THANKS_TAIL = r"(?:\s+(?:a\s+lot|so\s+much|very\s+much|for\s+(?:that|the\s+(?:answer|help))))?"
GOODBYE = r"(?:bye|goodbye|bye\s+bye|see\s+you|see\s+ya|good\s*night)"
HELP = (
    r"(?:help|what\s+can\s+you\s+do|what\s+do\s+you\s+do|how\s+does\s+this\s+work|how\s+do\s+i\s+use\s+(?:this|you)"
    r"|who\s+are\s+you|what\s+are\s+you|what\s+is\s+this)"
)
DOCUMENTS = (
    r"(?:(?:which|what)\s+(?:documents|docs|files|sources)\s+(?:do\s+you\s+have|are\s+there|can\s+you\s+(?:read|see)"
    r"|have\s+you\s+got|do\s+you\s+know)|(?:list|show)(?:\s+me)?\s+(?:the|your|all)?\s*(?:documents|docs|files)"
    r"|what\s+do\s+you\s+know\s+about|what\s+(?:can|do)\s+you\s+know)"
)
POLITE = r"(?:\s*(?:please|pls))?"
END = r"[\s!.?,:;)(]*"


def _whole(pattern: str) -> re.Pattern:
    return re.compile(rf"^\s*(?:{pattern}){POLITE}{END}$", re.IGNORECASE)


KINDS = {
    "greeting": _whole(GREETING),
    "thanks": _whole(rf"{THANKS}{THANKS_TAIL}"),
    "goodbye": _whole(GOODBYE),
    "help": _whole(rf"(?:{GREETING}[\s,!.]*)?{HELP}"),
    "documents": _whole(rf"(?:{GREETING}[\s,!.]*)?{DOCUMENTS}"),
}
HELP_TEXT = (
    "Ask me a question about the documents, e.g. *Where did the meeting take place?* I answer with words copied "
    "from the documents and show where they are written (document, page, section, paragraph), highlighted. You "
    "can follow up (*Who attended it?*); when a follow-up could mean two things I ask which one you mean. Add "
    "your own PDF, Word, web page, Markdown or text files under **Documents**; ask *which documents do you "
    "have?* to see them."
)
REPLIES = {
    "greeting": "Hello! Ask me a question about the documents, or ask *what can you do?*",
    "thanks": "You're welcome. Ask me anything else about the documents.",
    "goodbye": "Goodbye!",
    "help": HELP_TEXT,
}
MAX_TITLES = 20  # listed by name; the rest counted


def kind(message: str) -> str | None:
    """ "greeting", "thanks", "goodbye", "help" or "documents" when the whole message is small talk, else None."""
    if len(message) > 120:
        return None
    return next((name for name, pattern in KINDS.items() if pattern.match(message)), None)


def reply(message: str, titles: list[str]) -> str | None:
    """The markdown reply to small talk (``titles``: the library's document titles, for "which documents",
    escaped here: they are document text), None for anything else."""
    found = kind(message)
    if found != "documents":
        return REPLIES.get(found or "")
    if not titles:
        return "The library is empty: add documents under **Documents**."

    shown = [f"- {escape(title)}" for title in titles[:MAX_TITLES]]
    more = [f"- and {len(titles) - MAX_TITLES} more"] if len(titles) > MAX_TITLES else []
    count = f"{len(titles)} document{'s' if len(titles) != 1 else ''}"
    return "\n".join([f"I can answer from {count}:", *shown, *more])
