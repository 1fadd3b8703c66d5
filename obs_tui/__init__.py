"""obs-tui: a terminal observability console for Linux servers."""

__version__ = "0.1.0"
