"""Text hygiene: what text a patient may send, and how odd characters are shown to staff.

At the door (every text field of a public request body, through the annotated types in
``api/schemas.py``):

- Refused (422), naming the character's code point, never echoing the text:
  unpaired surrogates (U+D800-U+DFFF: JSON's ``\\ud800`` escape decodes to one, and no UTF-8
  database, driver or HTTP client can encode it), NUL and the other C0 controls except tab
  and newline, DEL, and the C1 controls (U+0080-U+009F).
- Carriage returns: CRLF and a lone CR become LF (what a browser's text box gives anyway).
- A text with no visible character (only whitespace, zero-width spaces and joiners, the
  BOM, bidirectional controls, other format and default-ignorable characters) is empty.

Everything else is kept as the patient sent it, bidirectional controls included: the
stored transcript is the patient's own words.

The body itself (:class:`Utf8JsonBody`): a JSON body to ``/api/`` must be UTF-8, or 422.
``json.loads`` decodes bytes with ``surrogatepass`` (so ``ED A0 80`` becomes an unpaired
surrogate too) and guesses UTF-16 and UTF-32. Either way an unpaired surrogate passed
pydantic and failed only when encoded (the database driver, or the webhook call to Rasa):
a 500, which is why it is refused here, before any handler.

Where staff see text (the console's pages through a Jinja ``finalize`` hook, the exports
through :func:`shown_value`), bidirectional embeddings, overrides, isolates and marks, and
any control character but tab, newline and CR, are shown as a visible marker such as
``[U+202E]``, so a right-to-left override cannot reorder what staff read and staff can see
that something odd was there. Stored data is never changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from pydantic_core import PydanticCustomError
from starlette.responses import JSONResponse
from starlette.status import HTTP_422_UNPROCESSABLE_CONTENT
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EMPTY_ERROR = "text_empty"
"""The pydantic error type of a text with no visible character (its message is the sentence
the API answers with, as it is)."""
REFUSED_ERROR = "text_character"
"""The pydantic error type of a text holding a character that is refused."""

_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""Refused after CR normalisation: C0 controls but tab and newline (CR is gone by then),
DEL, C1 controls, surrogates (only unpaired ones can exist in a Python string)."""

_SHOWN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)
"""Shown as markers to staff: the controls refused at the door (older rows may hold them),
the bidirectional embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and
marks (LRM, RLM, ALM)."""

_IGNORABLE = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),  # zero-width space, joiners, LRM, RLM
    (0x202A, 0x202E),
    (0x2060, 0x206F),  # word joiner, invisible operators, isolates
    (0x2800, 0x2800),  # braille pattern blank (shows as nothing)
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # BOM, zero-width no-break space
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement
)
"""Unicode's Default_Ignorable_Code_Point ranges, and the braille blank: drawn as nothing."""

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def code_point(character: str) -> str:
    """``U+202E``."""
    return f"U+{ord(character):04X}"


def marker(character: str) -> str:
    """The visible stand-in staff see for ``character``: ``[U+202E]``."""
    return f"[{code_point(character)}]"


def is_visible(character: str) -> bool:
    """Whether ``character`` draws something (not whitespace, control, format or ignorable)."""
    if character.isspace() or unicodedata.category(character) in _INVISIBLE_CATEGORIES:
        return False
    value = ord(character)
    return not any(low <= value <= high for low, high in _IGNORABLE)


def has_visible(text: str) -> bool:
    """Whether ``text`` has at least one visible character."""
    return any(is_visible(character) for character in text)


def normalise_newlines(text: str) -> str:
    """CRLF and a lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def refused_character(text: str) -> str | None:
    """The first character of ``text`` (newlines normalised) that is refused, or None."""
    match = _REFUSED.search(text)
    return match.group() if match else None


def without_refused(text: str) -> str:
    """``text`` with every refused character dropped: for values the API keeps from request
    headers (a browser's User-Agent, say), which nobody is asked to correct."""
    return _REFUSED.sub("", text)


def _problem(character: str) -> str:
    if "\ud800" <= character <= "\udfff":
        return f"an unpaired surrogate ({code_point(character)}), which is not valid Unicode"
    if character == "\x00":
        return "a NUL character (U+0000), which is not allowed"
    return f"a control character ({code_point(character)}), which is not allowed"


def clean(text: str) -> str:
    """``text`` with newlines normalised; raises :class:`PydanticCustomError`
    (:data:`REFUSED_ERROR`) when it holds a refused character."""
    text = normalise_newlines(text)
    character = refused_character(text)
    if character is not None:
        raise PydanticCustomError(
            REFUSED_ERROR,
            "it contains {problem}. Remove it and send the text again",
            {"problem": _problem(character), "code_point": code_point(character)},
        )
    return text


def patient_text(empty_message: str) -> Callable[[str], str]:
    """A pydantic ``AfterValidator`` for free text: :func:`clean`, then refused as empty
    (:data:`EMPTY_ERROR`, with ``empty_message`` as the API's whole answer) when it has no
    visible character."""

    def validate(text: str) -> str:
        text = clean(text)
        if not has_visible(text):
            raise PydanticCustomError(EMPTY_ERROR, empty_message)
        return text

    return validate


def shown(text: str) -> str:
    """``text`` as staff see it: each control of :data:`_SHOWN` replaced by its marker."""
    return _SHOWN.sub(lambda match: marker(match.group()), text)


def shown_value(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, tuples, strings, other scalars) with :func:`shown`
    applied to every string, keys included. A ``str`` subclass keeps its class (the YAML
    writers choose a style by it)."""
    if isinstance(value, str):
        text = shown(value)
        return value if text == value else type(value)(text)
    if isinstance(value, dict):
        return {shown_value(key): shown_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shown_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(shown_value(item) for item in value)
    return value


# The request body ---------------------------------------------------------------------------

NOT_UTF8_DETAIL = "The request body is not valid JSON: it must be UTF-8 text."


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class Utf8JsonBody:
    """Pure ASGI middleware: a JSON request body to ``/api/`` must be UTF-8 (RFC 8259), or it
    gets a 422 like any malformed JSON.

    Without it FastAPI answers undecodable bytes with a 400 ("There was an error parsing the
    body", not a sentence of this API) and accepts UTF-16 and UTF-32 bodies, which
    ``json.loads`` guesses. Placed inside ``BodySizeLimit``, so the body it reads is bounded.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith("/api/")
            or scope["method"] not in {"POST", "PUT", "PATCH"}  # the bodies BodySizeLimit bounds
        ):
            await self.app(scope, receive, send)
            return
        content_type = next(
            (value.decode("latin-1") for name, value in scope["headers"]
             if name == b"content-type"),
            "",
        )
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            response = JSONResponse(
                {"detail": NOT_UTF8_DETAIL}, status_code=HTTP_422_UNPROCESSABLE_CONTENT
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
