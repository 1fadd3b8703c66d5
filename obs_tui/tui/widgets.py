"""TextLine: one line of markup that repaints only when its text changes (no layout refresh)."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget


class TextLine(Widget):
    DEFAULT_CSS = """
    TextLine { height: 1; width: 1fr; }
    """

    def __init__(self, markup: str = "", *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._markup = markup

    @property
    def markup(self) -> str:
        return self._markup

    def set(self, markup: str) -> bool:
        """Show `markup`; True when it changed (and so was repainted)."""
        if markup == self._markup:
            return False
        self._markup = markup
        self.refresh()
        return True

    def render(self) -> Content:
        return Content.from_markup(self._markup).expand_tabs().truncate(
            self.size.width, ellipsis=True) if self.size.width else Content("")
