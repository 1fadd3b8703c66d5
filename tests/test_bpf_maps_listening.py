"""The chunked BPF map reader and the listening-socket finder, against the real kernel."""

from __future__ import annotations

import ctypes
import os
import socket

import pytest

from obs_tui.sources import listening
from obs_tui.sources.bpf_maps import MapReader

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loads a BPF map: needs root")


@pytest.fixture(scope="module")
def bpf():
    from obs_tui.bcc_setup import import_bcc

    loaded = import_bcc().BPF(
        text=b"""
        struct big { u64 count; u64 words[40]; };
        BPF_HASH(small, u32, u64, 1024);
        BPF_HASH(wide, struct big, struct big, 1024);
    """
    )
    yield loaded
    loaded.cleanup()


@needs_root
@pytest.mark.parametrize("entries,chunk", [(0, 8), (1, 8), (300, 7), (1000, 64)])
def test_every_entry_is_read_once_whatever_the_chunk(bpf, entries, chunk):
    table = bpf[b"small"]
    table.clear()
    for i in range(entries):
        table[ctypes.c_uint32(i)] = ctypes.c_uint64(i * 3)
    got = MapReader(table, chunk=chunk).raw()
    decoded = sorted((int.from_bytes(k, "little"), int.from_bytes(v, "little")) for k, v in got)
    assert decoded == [(i, i * 3) for i in range(entries)]


@needs_root
def test_each_entry_keeps_its_bytes_when_later_chunks_reuse_the_buffers(bpf):
    table = bpf[b"wide"]
    table.clear()
    for i in range(200):
        key, value = table.Key(), table.Leaf()
        key.count, value.count = i, i + 1
        value.words[39] = i * 7
        table[key] = value
    reader = MapReader(table, chunk=16)
    for _ in range(2):  # the buffers are reused: the second read gives the same
        got = [(table.Key.from_buffer_copy(k), table.Leaf.from_buffer_copy(v)) for k, v in reader.raw()]
        assert sorted((k.count, v.count, v.words[39]) for k, v in got) == [
            (i, i + 1, i * 7) for i in range(200)
        ]


def test_a_listening_socket_is_found_by_netlink_and_proc_alike():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as six, socket.socket() as four:
        six.bind(("::1", 0))
        four.bind(("127.0.0.1", 0))
        six.listen()
        four.listen()
        ports = {six.getsockname()[1], four.getsockname()[1]}
        from_netlink, from_proc = listening._from_netlink(), listening._from_proc()
        assert from_netlink == from_proc
        assert ports <= set(from_netlink.values())
        assert set(listening.ports_of(os.getpid(), from_netlink)) == ports
        assert listening.listening_pids()[os.getpid()] == tuple(sorted(ports))
    assert not ports & set(listening.listening_inodes().values())  # closed: gone
