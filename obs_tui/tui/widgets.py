"""TextLine: one line of markup that repaints only when its text changes (no layout refresh)."""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Region
from textual.widget import Widget


class TextLine(Widget):
    DEFAULT_CSS = """
    TextLine { height: 1; width: 1fr; }
    """

    def __init__(self, markup: str = "", *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._markup = markup
        self._plain = Content.from_markup(markup).plain

    @property
    def markup(self) -> str:
        return self._markup

    def set(self, markup: str) -> bool:
        """Show `markup`; True when it changed (and so was repainted)."""
        if markup == self._markup:
            return False
        old = len(self._plain)
        self._markup = markup
        self._plain = Content.from_markup(markup).plain
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
        return Content.from_markup(self._markup).expand_tabs().truncate(
            self.size.width, ellipsis=True) if self.size.width else Content("")
