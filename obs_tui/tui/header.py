"""The console's header: the host, its uptime and interval, and a badge per source.

`header_markup` is the layout (pure: the frame and the state in, one line of markup out), the
widget only keeps what it was last given, so a resize lays the same line out again.
"""

from __future__ import annotations

from textual.content import Content
from textual.events import Resize

from obs_tui.model import Frame
from obs_tui.tui import fmt
from obs_tui.tui.fmt import escape
from obs_tui.tui.widgets import TextLine


def badge(name: str, mode: str, reason: str, with_reason: bool, abbrev: bool = False) -> str:
    colour = {"live": "$success", "estimate": "$warning", "stale": "$error"}.get(mode, "$text-muted")
    shown = {"estimate": "est", "prometheus": "prom"} if abbrev else {}
    text = f"[{colour}]{escape(shown.get(name, name))} {escape(shown.get(mode, mode))}"
    if with_reason and reason and mode != "live":  # the short form; the pane has it all
        text += f": {escape(fmt.short_reason(reason, mode))}"
    return text + "[/]"


def badge_line(found: list[tuple[str, str, str]], reasons: set[int], sep: str, abbrev: bool) -> str:
    """The badges of `found`, those at the indices in `reasons` with their short reason;
    abbreviated, the live ones share one badge ("procs red live")."""
    shown = [
        badge(n, m, r, i in reasons, abbrev)
        for i, (n, m, r) in enumerate(found)
        if not (abbrev and m == "live")
    ]
    live = [n for n, m, _ in found if m == "live"]
    if abbrev and live:
        shown.insert(0, badge(" ".join(live), "live", "", False))
    return sep.join(shown)


def badges(frame: Frame) -> list[tuple[str, str, str]]:
    """(name, mode, reason) for every source in the frame, plus the panes' sources not built yet."""
    out = []
    for s in frame.sources:
        if s.join and not s.stale:  # a join's mode repeats its inputs' badges; its failure does not
            continue
        out.append((s.name, "stale" if s.stale else s.mode, s.reason))
    names = {s.name for s in frame.sources}
    wanted = [("red", "ebpf"), ("power", "rapl")]
    if "slo" not in names:
        wanted.append(("prometheus", "prometheus"))
    for name, cap_name in wanted:
        if name in names:
            continue
        cap = frame.capability(cap_name)
        reason = cap.reason if cap is not None and not cap.ok else "not built yet"
        out.append((name, "off", reason))
    return out


def plain(markup: str) -> str:
    return Content.from_markup(markup).plain


def header_markup(
    frame: Frame | None,
    width: int,
    *,
    paused: bool = False,
    error: str = "",
    read_only: bool = False,
    recorded: str = "",
) -> str:
    """The header line for `width` cells; `recorded` is the replay badge ("" when live). In
    read-only mode the host named is the frame's (the fleet's host its numbers are of)."""
    right = ""
    if paused:
        right = "[reverse b] PAUSED [/]"
    elif error:
        right = f"[$error]{escape(fmt.truncate(error, 40))}[/]"
    if read_only:
        right = "[b]read-only[/] " + right
    if frame is None:
        left = "[b]obs-tui[/]  starting… (loading sources)"
        return f"{left}  {right}" if right else left
    up = fmt.uptime(frame.uptime_s)
    full = f"[b]obs-tui[/]  [b]{escape(frame.host)}[/]  up {up}  every {frame.interval_s:g}s"
    short = f"[b]{escape(frame.host)}[/] up {up} {frame.interval_s:g}s"
    if frame.instances:  # read-only mode: the host is the fleet's, chosen with i
        count = len(frame.instances)
        shown = escape(frame.instance) if frame.instance else f"all {count} host{'s' if count != 1 else ''}"
        full = f"[b]obs-tui[/]  [b]{shown}[/] [$text-muted](i: next host)[/]  every {frame.interval_s:g}s"
        short = f"[b]{shown}[/] {frame.interval_s:g}s"
    if recorded:
        full, short = f"{recorded} {full}", f"{recorded} {short}"
    tiny = short.rsplit(" up ", 1)[0] if not frame.instances else short
    found = badges(frame)
    failing = [i for i, (_, mode, reason) in enumerate(found) if mode in ("stale", "off") and reason]
    # Widest first; failing sources keep their short reasons as long as they fit, the first
    # one longest, even over the uptime (at 80 columns too); the panes and doctor have the
    # whole reason.
    layouts = [
        (full, "  ", set(range(len(found))), False),
        (full, "  ", set(failing), False),
        (short, " ", set(failing), False),
    ]
    layouts += [
        (base, " ", set(failing[:k]), True) for base in (short, tiny) for k in range(len(failing), 0, -1)
    ]
    layouts += [(short, " ", set(), False), (short, " ", set(), True), (tiny, " ", set(), True)]
    text = ""
    for base, sep, reasons, abbrev in layouts:
        text = base + "  " + badge_line(found, reasons, sep, abbrev)
        if len(plain(text)) + len(plain(right)) + 2 <= width:
            break
    pad = max(width - len(plain(text)) - len(plain(right)), 2)
    return text + " " * pad + right if right else text


class Header(TextLine):
    """The header line, laid out again for its width when it is resized."""

    DEFAULT_CSS = """
    Header { background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, *, read_only: bool = False, id: str | None = None) -> None:
        super().__init__(" obs-tui  starting…", id=id)
        self.read_only = read_only
        self._given: tuple[Frame | None, bool, str, str] | None = None

    def show(self, frame: Frame | None, *, paused: bool, error: str, recorded: str) -> None:
        """Lay out the header for this frame and state (repainted only when its text changed)."""
        self._given = (frame, paused, error, recorded)
        self._lay_out()

    def _lay_out(self) -> None:
        if self._given is None:  # "starting…" until the first show
            return
        frame, paused, error, recorded = self._given
        width = max(self.size.width, self.app.size.width - 2)
        self.set(
            header_markup(
                frame,
                width,
                paused=paused,
                error=error,
                read_only=self.read_only,
                recorded=recorded,
            )
        )

    def on_resize(self, event: Resize) -> None:
        self._lay_out()
