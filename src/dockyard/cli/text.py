"""Text from the store made safe for a terminal: never read as rich markup, no control characters.

What the CLI prints was mostly written by someone else — a status reason by whoever cancelled the
job, a description by whoever created the rule, a log by the program itself — and a terminal
obeys what it is sent: an escape sequence can set the window title, write the clipboard
(OSC 52), move the cursor over earlier lines or hide text, and rich would read ``[/oops]`` as
markup and fail. So every stored string goes through :func:`safe_text` before it is shown:

- escape sequences (CSI, OSC, DCS and the other ``ESC`` forms) are removed whole;
- every other control character is removed — C0 but tab and newline, DEL, C1 — and so are
  the bidirectional overrides and isolates, which can make text read differently than it is;
- table cells are :class:`rich.text.Text`, which rich never parses for markup or emoji codes.

A job's log is the program's own output. Written to a terminal it is cleaned the same way
(colours are lost with the other sequences); piped or redirected, it is written byte for byte,
so that ``dockyard jobs logs ID > out.log`` keeps exactly what the program printed.
"""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["LogPrinter", "safe_text", "table_cell"]

_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?            # CSI: colours, cursor moves, erasing
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC: titles, hyperlinks, the clipboard
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?       # DCS, SOS, PM and APC strings
    | \x1b[ -/]*[0-~]?                    # every other escape (ESC c resets the terminal)
    """,
    re.VERBOSE,
)
#: C0 but tab and newline, DEL, C1, and the bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_text(text: str) -> str:
    """``text`` without escape sequences and control characters (tab and newline stay)."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def table_cell(value: object) -> Text:
    """A table cell showing ``value`` as plain, safe text (None shows as nothing)."""
    from rich.text import Text  # rich takes 20 ms to import: only commands that print tables pay

    return Text("" if value is None else safe_text(str(value)))


class LogPrinter:
    """Writes a log to ``stream``: cleaned by :func:`safe_text` on a terminal, byte for byte
    otherwise. UTF-8 characters split across chunks are decoded whole."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._terminal = stream.isatty()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, data: bytes | str) -> None:
        if not self._terminal:
            if isinstance(data, str):
                self._stream.write(data)
            else:
                self._stream.buffer.write(data)
            self._stream.flush()
            return
        text = data if isinstance(data, str) else self._decoder.decode(data)
        self._stream.write(safe_text(text))
        self._stream.flush()
