"""printable(): what a process or a client chose never drives the terminal."""

from hypothesis import given
from hypothesis import strategies as st

from obs_tui.sources.procs import parse_stat
from obs_tui.text import REPLACEMENT, printable


@given(st.text())
def test_always_printable_same_length_and_printable_text_unchanged(text):
    out = printable(text)
    assert out.isprintable() and len(out) == len(text)
    assert all(a == b or (not a.isprintable() and b == REPLACEMENT) for a, b in zip(text, out))


@given(st.binary(max_size=15))
def test_any_process_name_from_proc_stat_is_printable(name):
    line = b"42 (" + name + b") S 1 42 42 0 -1 4194560 100 0 0 0 700 300 0 0 20 0 1 0 555 1000 77 rest"
    comm, ticks, start, rss = parse_stat(line)
    assert comm.isprintable() and (ticks, start, rss) == (1000, 555, 77)


@given(st.text())
def test_host_text_in_markup_never_breaks_or_restyles_it(text):
    """fmt.escape: whatever a process is named, the markup around it parses and shows it as
    printable text (textual.markup.escape lets "[2J", "x[" or "[$error]" through)."""
    from textual.content import Content

    from obs_tui.tui.fmt import escape

    content = Content.from_markup(f"[b]name[/] {escape(text)}\n[$text-muted]pid[/] 1")
    assert content.plain == f"name {printable(text)}\npid 1"


def test_newlines_kept_for_blocks_of_lines():
    assert printable("a\x1b[2J\nb\x07", keep_newlines=True) == f"a{REPLACEMENT}[2J\nb{REPLACEMENT}"
