"""A one-line prompt for a time (replay's g, compare's C): Enter answers, Esc cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input


class GotoScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    GotoScreen { align: center middle; }
    GotoScreen > Input { width: 60; border: round $border; background: $surface; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel", show=False)]

    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        box = Input(placeholder=self.prompt, id="goto")
        box.border_title = self.prompt
        yield box

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
