"""User text made safe to show, and credentials kept out of what is stored or shown.

Notes, prompts sent by API clients and values read from files reach the terminal through Rich.
Two things can go wrong there: Rich reads ``[bold]`` or ``[/x]`` as markup (and a stray closing
tag raises), and a terminal obeys escape sequences (ESC, CSI, OSC, other C0/C1 controls) that can
move the cursor, rewrite the title or hide text. :func:`shown` deals with both; every place that
prints user text through a markup-enabled console goes through it (or prints with markup off and
:func:`terminal_safe`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.text import Text

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and newline, DEL, C1 controls (the 8-bit CSI, OSC … included)."""

SECRET_PARAMS = frozenset(
    {"key", "api_key", "apikey", "api-key", "token", "access_token", "auth", "secret", "password"}
)
"""Query parameters whose value is a credential."""
REDACTED = "***"

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PAIR = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(SECRET_PARAMS)) + r")=[^&\s'\"<>]+",
    re.IGNORECASE,
)


def terminal_safe(text: str) -> str:
    """``text`` with every control character a terminal would act on shown as ``\\xNN``
    (line breaks and tabs kept; a lone CR, which overwrites the line, is shown too)."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON for a terminal: non-ASCII text kept readable, but DEL and the C1
    controls (which ``ensure_ascii=False`` leaves raw) written as ``\\u00XX`` escapes, the
    same JSON value."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def shown(text: object) -> str:
    """User text ready for a markup-enabled Rich print: controls neutralised, markup escaped."""
    return escape(terminal_safe(str(text)))


class SafeConsole(Console):
    """A console that shows control characters in every string it renders as ``\\xNN``, so
    that text from a file, a note or a model cannot drive the terminal, wherever it is printed
    (Rich's own cursor and colour codes are not strings and pass as they should)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        # Before layout, so that widths are measured on what is shown.
        return super().render_str(terminal_safe(text), **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Iterable[Segment]:
        # After layout, for Text built directly (a table cell, a syntax block): the last gate.
        for segment in super().render(renderable, options):
            if segment.control or not _CONTROLS.search(segment.text):
                yield segment
            else:
                yield Segment(terminal_safe(segment.text), segment.style)


def one_line(text: str) -> str:
    """Whitespace runs (newlines too) as single spaces, controls neutralised."""
    return " ".join(terminal_safe(text).split())


def fit(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` terminal cells with an ellipsis; wide (CJK)
    characters count as two cells."""
    line = one_line(text)
    if cell_len(line) <= width:
        return line
    out, used = [], 0
    for char in line:
        size = cell_len(char)
        if used + size > width - 1:
            break
        out.append(char)
        used += size
    return "".join(out).rstrip() + "…"


def redact_url(url: str | None) -> str | None:
    """``url`` without credentials: ``user:key@`` and secret query values become ``***``."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_secrets(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it redacted, and any
    ``key=…``-style secret parameter outside one too."""

    def redact(match: re.Match[str]) -> str:
        url = match.group()
        core = url.rstrip(".,:;)]}!?")  # punctuation after a URL is the sentence's
        return (redact_url(core) or "") + url[len(core) :]

    # Then any secret parameter left (a server quoting the path it was sent, query and all).
    return _SECRET_PAIR.sub(_redact_pair, _URL.sub(redact, text))


def _redact_pair(match: re.Match[str]) -> str:
    name, _, value = match.group().partition("=")
    core = value.rstrip(".,:;)]}!?")
    return f"{name}={REDACTED}{value[len(core) :]}"
