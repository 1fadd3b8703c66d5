"""Compact number formatting and text sparklines, shared by the panes and screens.

Every function returns short, fixed-shape text so a column keeps its width and a cell's text
only changes when the number a person would read changes (that is what keeps repaints rare).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence

from obs_tui.text import printable

BARS = "▁▂▃▄▅▆▇█"
DASH = "–"


def escape(text: str) -> str:
    """Text from the host as Textual markup: printable (obs_tui/text.py) and every "[" escaped.

    textual.markup.escape only escapes what looks like a tag, so "[2J" (left of an escape
    sequence), "x[" or "[$error]" in a process name would end a tag of ours early (the
    console stops with a MarkupError) or restyle the line."""
    return printable(text).replace("[", "\\[")


def escape_lines(text: str) -> str:
    """escape() for text of several lines: its newlines kept (printable() replaces them)."""
    return "\n".join(escape(line) for line in text.split("\n"))


def num(value: float | None, digits: int = 1) -> str:
    """1234 -> 1.2k, 0.5 -> 0.5, 12 -> 12.0; None -> –."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    v = float(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= limit:
            return f"{v / limit:.{digits}f}{suffix}"
    if v == int(v) and abs(v) >= 100:
        return f"{int(v)}"
    return f"{v:.{digits}f}"


def count(value: int | None) -> str:
    """Integer counts: 999 -> 999, 12345 -> 12.3k."""
    if value is None:
        return DASH
    return str(value) if abs(value) < 1000 else num(value)


def pct(value: float | None, digits: int = 1) -> str:
    """A percentage already in percent units: 12.34 -> 12.3 %; None -> –."""
    if value is None:
        return DASH
    if value >= 1000:
        return f"{value:.0f}%"
    return f"{value:.{digits}f}%"


def ratio_pct(value: float | None, digits: int = 1) -> str:
    """A ratio 0..1 shown as percent: 0.0123 -> 1.2 %."""
    return DASH if value is None else pct(100.0 * value, digits)


def ms(value: float | None) -> str:
    """Milliseconds: 0.42 -> 0.42ms, 45.3 -> 45.3ms, 1234 -> 1.23s."""
    if value is None:
        return DASH
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 100:
        return f"{value:.0f}ms"
    if value >= 10:
        return f"{value:.1f}ms"
    return f"{value:.2f}ms"


def size(nbytes: int | float | None) -> str:
    """Bytes in binary units, 3-4 significant characters: 1536 -> 1.5K, 3.2G."""
    if nbytes is None:
        return DASH
    v = float(nbytes)
    for suffix in ("B", "K", "M", "G", "T"):
        if abs(v) < 1024 or suffix == "T":
            if suffix == "B":
                return f"{int(v)}B"
            return f"{v:.1f}{suffix}" if abs(v) < 100 else f"{v:.0f}{suffix}"
        v /= 1024
    return f"{v:.0f}T"  # pragma: no cover


def cpu_time(seconds: float | None, fine: bool = True) -> str:
    """CPU time like top: 1:23.45 (fine) or 1:23 under an hour, 12h34m above.

    The table uses whole seconds: a process using 1 % of a core then changes its TIME text
    once in 100 s rather than every tick.
    """
    if seconds is None:
        return DASH
    s = max(seconds, 0.0)
    if s < 3600:
        m, sec = divmod(s, 60)
        return f"{int(m)}:{sec:05.2f}" if fine else f"{int(m)}:{int(sec):02d}"
    h, rem = divmod(int(s), 3600)
    if h < 100:
        return f"{h}h{rem // 60:02d}m"
    return f"{h // 24}d{h % 24:02d}h"


def uptime(seconds: float | None) -> str:
    """Host uptime to the minute: 3d 04:12, 04:12."""
    if seconds is None:
        return DASH
    minutes = int(seconds // 60)
    d, rem = divmod(minutes, 1440)
    h, m = divmod(rem, 60)
    return f"{d}d {h:02d}:{m:02d}" if d else f"{h:02d}:{m:02d}"


def watts(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.2f}W" if value < 10 else f"{value:.1f}W"


def joules(value: float | None) -> str:
    """Energy: 615.9J, 1.2kJ; a request's share in mJ or µJ: 2.2mJ, 123.5µJ."""
    if value is None:
        return DASH
    if 0 < value < 0.1:
        scaled, unit = (value * 1000, "mJ") if value >= 0.001 else (value * 1e6, "µJ")
        return f"{scaled:.1f}{unit}" if scaled < 9.95 else f"{scaled:.0f}{unit}"
    return f"{num(value)}J"


def grams(value: float | None) -> str:
    """CO2e mass: 6.14g, 1.20kg; small amounts (per request) in mg and µg."""
    if value is None:
        return DASH
    if value == 0:
        return "0g"
    if 0 < value < 0.0001:
        return f"{value * 1e6:.1f}µg"
    if value < 0.01:
        return f"{value * 1000:.1f}mg"
    if value < 1000:
        return f"{value:.2f}g" if value < 10 else f"{value:.1f}g"
    return f"{value / 1000:.2f}kg"


def burn(value: float | None) -> str:
    """A burn rate (1.0 = spending the budget exactly over the period): 14.4x."""
    if value is None:
        return DASH
    return f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def spark(values: Iterable[float | None], width: int, floor: float = 0.0, low: float = 0.0) -> str:
    """The last `width` values as a block sparkline, right-aligned, scaled from `low` to
    max(values, floor). A `low` above zero shows the swings of a series that never nears zero
    (host watts); values at or below it get the lowest bar.

    Zero and missing values are blank, so an idle row is quiet (and its text never changes).
    """
    tail: Sequence = list(values)[-width:] if width > 0 else []
    if not tail:
        return " " * width
    top = max([floor] + [v for v in tail if v is not None])
    out = []
    for v in tail:
        if v is None or v <= 0 or top <= 0:
            out.append(" ")
        else:
            level = (max(v - low, 0.0) / (top - low)) if top > low else 1.0
            out.append(BARS[min(len(BARS) - 1, int(level * (len(BARS) - 1) + 0.5))])
    return " " * (width - len(out)) + "".join(out)


def first_clause(text: str) -> str:
    """The part of a reason before its first ';' (the rest is for doctor)."""
    return text.split(";", 1)[0].strip()


def short_reason(reason: str, mode: str = "", width: int = 26) -> str:
    """A reason cut for a badge, saying each thing once and never cut mid-word: the first
    clause without the mode the badge already shows ("estimate: ..."), then, while too long,
    without its parenthesis, its path ("... in /sys/..."), and one side of its first ': '
    (the cause when it fits: "Connection refused", else the kind: "HTTP 503")."""
    text = first_clause(reason)
    if mode and text.lower().startswith(f"{mode.lower()}: "):
        text = text[len(mode) + 2 :]
    if len(text) > width and " (" in text:
        text = text.split(" (", 1)[0]
    for cut in (" in /", " at /"):
        if len(text) > width and cut in text:
            text = text.split(cut, 1)[0]
    if len(text) > width and ": " in text:  # "cannot connect: Connection refused"
        head, tail = text.split(": ", 1)
        text = tail if len(tail) <= width else head
    if len(text) <= width:
        return text
    words = text[:width].rsplit(" ", 1)[0] if " " in text[:width] else text[: width - 1]
    return words.rstrip(" ,;:") + "…"


def truncate(text: str, width: int) -> str:
    """Cut to `width` cells with an ellipsis (text here is ASCII-ish process names)."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…" if width > 0 else ""


def duration(seconds: float | None) -> str:
    """A span in its largest unit, for ages and times to exhaustion: 42s, 12m, 5.2h, 3.4d."""
    if seconds is None:
        return DASH
    s = max(seconds, 0.0)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def clock(epoch: float) -> str:
    """A moment as the local wall-clock time, HH:MM:SS."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def bar(fraction: float | None, width: int) -> str:
    """A left-to-right bar of `width` cells filled to `fraction` (0..1, clamped) in eighths."""
    if fraction is None:
        return " " * width
    eighths = int(round(max(0.0, min(fraction, 1.0)) * width * 8))
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return text.ljust(width, "·")
