"""The probe (bpf/red.c, compiled for real) and Python agree on the constants they share.

obs_tui/probe_constants.py is their one source: the loader passes it to the C compiler as -D
flags. Here the compiled program is read back through bcc (map sizes, struct layouts), and
its own decoding functions (bucket_of, parse_method) run in the kernel on the same inputs as
the Python that reads their results (BPF_PROG_TEST_RUN on a socket-filter program added to
the probe's source), so a change on one side only fails here.
"""

from __future__ import annotations

import ctypes
import os

import pytest

from obs_tui import probe_constants as probe
from obs_tui.analysis import histogram
from obs_tui.analysis.red import LOST_REASONS
from obs_tui.sources import cputime, red

pytestmark = [
    pytest.mark.root,
    pytest.mark.ebpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loads eBPF programs: needs root"),
]

# A socket filter that calls the probe's own static functions on an input from a map: socket
# filters can be run on demand with BPF_PROG_TEST_RUN, tracepoint programs cannot.
AGREEMENT = b"""
BPF_ARRAY(agree_in, u64, 2);   // [0]: 0 = bucket_of, 1 = parse_method; [1]: its input
BPF_ARRAY(agree_out, u64, 2);  // [0]: the result; [1]: parse_method's path offset
int agreement(struct __sk_buff *skb) {
    int k0 = 0, k1 = 1;
    u64 *what = agree_in.lookup(&k0), *in = agree_in.lookup(&k1);
    if (!what || !in)
        return 0;
    u32 off = 0;
    u64 result = *what == 0 ? bucket_of(*in) : parse_method(*in, &off);
    u64 offset = off;
    agree_out.update(&k0, &result);
    agree_out.update(&k1, &offset);
    return 0;
}
"""

BPF_PROG_TEST_RUN = 10
NR_BPF = 321  # x86_64


class ProgTestRunAttr(ctypes.Structure):
    """The BPF_PROG_TEST_RUN part of union bpf_attr (linux/bpf.h), padded to the union's size."""

    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("rest", ctypes.c_uint8 * 96),
    ]


@pytest.fixture(scope="module")
def compiled():
    from obs_tui.bcc_setup import import_bcc

    bcc = import_bcc(notice=lambda line: None)
    bpf = bcc.BPF(text=red.BPF_SOURCE.read_bytes() + AGREEMENT, cflags=probe.cflags())
    try:
        yield bcc, bpf
    finally:
        bpf.cleanup()


def _run(bpf, fd: int, what: int, value: int) -> tuple[int, int]:
    bpf[b"agree_in"][ctypes.c_int(0)] = ctypes.c_uint64(what)
    bpf[b"agree_in"][ctypes.c_int(1)] = ctypes.c_uint64(value)
    packet = ctypes.create_string_buffer(64)  # a socket filter needs at least an Ethernet header
    attr = ProgTestRunAttr(prog_fd=fd, data_size_in=len(packet), data_in=ctypes.addressof(packet), repeat=1)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(NR_BPF, BPF_PROG_TEST_RUN, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        raise OSError(ctypes.get_errno(), "BPF_PROG_TEST_RUN")
    out = bpf[b"agree_out"]
    return out[ctypes.c_int(0)].value, out[ctypes.c_int(1)].value


def test_maps_and_structs_have_the_python_sizes(compiled):
    _, bpf = compiled
    stats, paths, lost = bpf[b"stats"], bpf[b"paths"], bpf[b"lost"]
    assert stats.max_entries == probe.STATS_MAX
    assert paths.max_entries == probe.PATHS_MAX
    assert lost.max_entries == probe.LOST_SLOTS == len(LOST_REASONS)
    hist = dict(stats.Leaf._fields_)["hist"]
    assert hist._length_ == probe.HIST_BUCKETS == histogram.BUCKETS
    path = dict(paths.Leaf._fields_)["path"]
    assert path._length_ == probe.PATH_LEN
    assert probe.PATH_LEN % 8 == 0  # the probe scans the path a word at a time


DURATIONS_NS = sorted(
    {
        0,
        1,
        1023,
        1024,
        2047,
        16 * 1024 - 1,
        16 * 1024,
        17 * 1024,
        31 * 1024,
        32 * 1024,
        10**6,
        5 * 10**6,
        123_456_789,
        10**9,
        (1 << 36) - 1,
        1 << 36,
        1 << 37,
        10**11,
        10**15,
    }
    | {(n * 7919) ** 2 % 10**10 for n in range(200)}
)


def test_the_probe_buckets_durations_as_python_reads_them(compiled):
    bcc, bpf = compiled
    fd = bpf.load_func(b"agreement", bcc.BPF.SOCKET_FILTER).fd
    for ns in DURATIONS_NS:
        assert _run(bpf, fd, 0, ns)[0] == histogram.bucket_of(ns), ns


def test_the_probe_codes_methods_as_python_names_them(compiled):
    bcc, bpf = compiled
    fd = bpf.load_func(b"agreement", bcc.BPF.SOCKET_FILTER).fd
    for code, method in enumerate(probe.METHODS):
        if not method:
            continue
        line = f"{method} /x HTTP/1.1".encode()
        word = int.from_bytes(line[:8], "little")
        assert _run(bpf, fd, 1, word) == (code, len(method) + 1), method
        assert probe.defines()[f"METHOD_{method}"] == code
    for other in (b"get / HT", b"PRI * HT", b"CONNECT ", b"\0" * 8):
        assert _run(bpf, fd, 1, int.from_bytes(other, "little"))[0] == 0, other


def test_the_probes_refuse_to_compile_without_the_constants(compiled):
    bcc, _ = compiled
    with pytest.raises(Exception, match="Failed to compile"):
        bcc.BPF(text=red.BPF_SOURCE.read_bytes())


def test_the_cputime_probe_compiles_with_the_same_flags(compiled):
    bcc, _ = compiled
    bpf = bcc.BPF(text=cputime.BPF_SOURCE.read_bytes(), cflags=probe.cflags())
    bpf.cleanup()
