"""The console's text widgets. Everything they draw passes through text.printable, so text from
the host (a process name, a reason, a label value) never reaches the terminal as a control
sequence, whichever pane or screen built the markup.

TextLine: one line of markup that repaints only when its text changes (no layout refresh).
TextBlock: a Static of several lines (a notice, a detail screen's fields).
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from obs_tui.text import printable


class TextLine(Widget):
    DEFAULT_CSS = """
    TextLine { height: 1; width: 1fr; }
    """

    def __init__(self, markup: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        markup = printable(markup)
        self._markup = markup
        self._content = Content.from_markup(markup)  # parsed once, drawn at every repaint
        self._plain = self._content.plain

    @property
    def markup(self) -> str:
        return self._markup

    def set(self, markup: str) -> bool:
        """Show `markup`; True when it changed (and so was repainted)."""
        markup = printable(markup)
        if markup == self._markup:
            return False
        old = len(self._plain)
        self._markup = markup
        self._content = Content.from_markup(markup)
        self._plain = self._content.plain
        # Repaint only as far as the longer of the old and new text: Textual writes a partial
        # update from the widget's left edge to the end of the dirty span, so this keeps the
        # trailing blanks of a one-line widget off the wire.
        width = self.size.width
        if width:
            span = min(max(old, len(self._plain)) + 1, width)
            self.refresh(Region(0, 0, span, 1))
        else:
            self.refresh()
        return True

    def render(self) -> Content:
        return (
            self._content.expand_tabs().truncate(self.size.width, ellipsis=True)
            if self.size.width
            else Content("")
        )


class TextBlock(Static):
    """Lines of markup; the text is made printable (its newlines kept) before Static parses it."""

    def __init__(self, markup: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(printable(markup, keep_newlines=True), id=id, classes=classes)

    def update(self, markup: str = "", *, layout: bool = True) -> None:  # type: ignore[override]
        super().update(printable(markup, keep_newlines=True), layout=layout)
