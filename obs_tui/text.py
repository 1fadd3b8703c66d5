"""Text from other processes, made safe for a terminal: the one sanitiser.

Process names, command lines, request paths, Prometheus label values, error texts and config
values are chosen by whoever runs a process, sends a request, answers a query or wrote a file,
and obs-tui draws them on root's terminal: an ESC in a process name (prctl(PR_SET_NAME) is
open to any user) would be an escape sequence there (a window title set, the screen cleared).

printable() is the only function that makes such text safe. Sources call it where they read
host strings, so a Frame holds printable text; and every place that writes to a terminal calls
it again on what it draws, so a source that forgets cannot reach the screen: the console's
table cells (KeyedTable), lines (TextLine) and blocks (TextBlock), pane titles, the exporter's
label values, and the command line's own text (doctor, one-line errors).
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def printable(text: str, keep_newlines: bool = False) -> str:
    """text with every non-printable character (controls, ESC, C1 codes, line breaks) as
    U+FFFD, one for one; with keep_newlines, "\\n" stays (a block of several lines)."""
    if text.isprintable():
        return text
    if keep_newlines:
        return "\n".join(printable(line) for line in text.split("\n"))
    return "".join(ch if ch.isprintable() else REPLACEMENT for ch in text)
