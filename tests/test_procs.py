"""The process source reads the real /proc; CPU % comes from the pure analysis."""

import os
import time

from obs_tui.analysis.processes import process_samples
from obs_tui.sources.procs import ProcInfo, ProcRaw, ProcsSource, parse_stat


def test_parse_stat_handles_spaces_and_parens_in_comm():
    line = b"42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 700 300 0 0 20 0 1 0 555 1000 77 rest"
    comm, ticks, start, rss = parse_stat(line)
    assert comm == "a (b) c" and ticks == 1000 and start == 555 and rss == 77


def test_sample_sees_this_process_with_real_fields():
    source = ProcsSource()
    raw = source.sample(time.time())
    me = raw[os.getpid()]
    assert me.info.user and "python" in me.info.cmdline
    assert me.rss_bytes > 1_000_000 and me.cpu_seconds > 0


def test_cpu_percent_of_a_busy_loop():
    source = ProcsSource()
    before = source.sample(0.0)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        pass
    dt = time.monotonic() - t0
    after = source.sample(dt)
    mine = next(p for p in process_samples(before, after, dt) if p.pid == os.getpid())
    # kernel ticks are 10 ms; a 0.5 s busy loop is ~100 % of one core
    assert 70 <= mine.cpu_percent <= 130


def test_pid_reuse_is_a_new_process():
    old = {7: ProcRaw(ProcInfo(100, "old", "old", "root"), 50.0, 0)}
    new = {7: ProcRaw(ProcInfo(900, "new", "new", "root"), 0.5, 0)}
    (sample,) = process_samples(old, new, 1.0)
    assert sample.comm == "new" and sample.cpu_percent == 50.0


def test_exited_processes_leave_the_cache():
    source = ProcsSource()
    source.sample(0.0)
    source._info[999_999_999] = ProcInfo(1, "ghost", "ghost", "root")
    source.sample(1.0)
    assert 999_999_999 not in source._info


def test_unchanged_stat_line_reuses_the_sample(tmp_path):
    """An idle process's stat line does not change: no parse, the same sample object."""
    (tmp_path / "self").mkdir()
    proc = tmp_path / "999999"
    proc.mkdir()
    line = b"999999 (idle) S 1 1 1 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 4242 1000 10 rest"
    (proc / "stat").write_bytes(line % 5)
    source = ProcsSource(proc_root=str(tmp_path))
    first = source.sample(0.0)[999999]
    assert source.sample(1.0)[999999] is first
    (proc / "stat").write_bytes(line % 105)
    busy = source.sample(2.0)[999999]
    assert busy is not first and busy.cpu_seconds - first.cpu_seconds == 100 / os.sysconf("SC_CLK_TCK")
    assert busy.rss_bytes == 10 * os.sysconf("SC_PAGE_SIZE") and busy.info.comm == "idle"


def test_stat_files_stay_open_for_live_processes_only():
    """The stat file of a live process is kept open and re-read; it is closed once the
    process is gone, and a kept file never reads another process's line."""
    import subprocess

    source = ProcsSource()
    child = subprocess.Popen(["sleep", "30"])
    try:
        first = source.sample(0.0)
        fd = source._fds[child.pid]
        assert first[child.pid].info.comm == "sleep"
        again = source.sample(1.0)
        assert source._fds[child.pid] == fd and again[child.pid] is first[child.pid]
    finally:
        child.kill()
        child.wait()
    after = source.sample(2.0)
    assert child.pid not in after and child.pid not in source._fds
    try:
        os.fstat(fd)
        still_open = True
    except OSError:
        still_open = False
    # the number may be reused by another open file of this process, never left leaking
    assert not still_open or os.readlink(f"/proc/self/fd/{fd}") != f"/proc/{child.pid}/stat"
    source.close()
    assert not source._fds


def test_past_the_keep_limit_processes_are_read_by_open():
    source = ProcsSource()
    source._keep = 3
    raw = source.sample(0.0)
    assert len(source._fds) == 3 and len(raw) > 3 and os.getpid() in raw
    assert source.sample(1.0).keys() >= {os.getpid(), 1}
    source.close()
