"""Text from other processes, made safe for a terminal.

Process names, command lines and request paths are chosen by whoever runs the process or sends
the request, and the console draws them on root's terminal: an ESC in a process name
(prctl(PR_SET_NAME) is open to any user) would be an escape sequence there (a window title
set, the screen cleared). Every such string passes through printable() where it enters
obs-tui, so no sink has to remember.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def printable(text: str) -> str:
    """text with every non-printable character (controls, ESC, line breaks) as U+FFFD."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else REPLACEMENT for ch in text)
