"""Reading a whole BPF hash map from user space, a chunk of entries per system call.

bcc's `items()` costs two system calls and a few ctypes objects per entry (next key, then
lookup): the largest part of a RED sample's CPU with a few dozen routes. bcc's own
`items_lookup_batch()` makes one call, but into buffers sized for the map's max_entries:
~50 MB for the RED stats map (16,384 entries of ~3 KB), allocated and zeroed on every read.
This reads BPF_MAP_LOOKUP_BATCH (Linux 5.6+) in chunks, so a map of a few entries costs
one call and a few kilobytes.
"""

from __future__ import annotations

import ctypes
import errno

CHUNK = 64  # entries per call: a few dozen routes in one call, and 64 x 3 KB buffers at most


def lookup_all(table, chunk: int = CHUNK) -> list[tuple[object, object]]:
    """(key, value) of every entry of a bcc hash table. Structures come as ctypes objects of
    its Key and Leaf; plain integer types as Python ints (what indexing a ctypes array gives).

    Entries added or removed while the map is read may be missed or seen, as with any walk
    of a live map. Kernels without batch operations get bcc's key-by-key walk."""
    from bcc import lib

    out: list[tuple[object, object]] = []
    cursor = ctypes.c_uint32(0)  # a hash map's batch cursor is a bucket index
    count = ctypes.c_uint32(0)
    first = True
    while True:
        # fresh buffers per call: the entries returned keep them alive, no copies made
        keys, values = (table.Key * chunk)(), (table.Leaf * chunk)()
        count.value = chunk
        res = lib.bpf_lookup_batch(table.map_fd, None if first else ctypes.byref(cursor),
                                   ctypes.byref(cursor), keys, values, ctypes.byref(count))
        err = ctypes.get_errno() if res != 0 else 0
        if err == errno.ENOSPC and count.value == 0:
            chunk *= 2  # one bucket holds more entries than a chunk: retry it, larger
            continue
        if err not in (0, errno.ENOENT):
            if first:  # no batch operations on this kernel (EINVAL) or for this map
                return [(_plain(k), _plain(v)) for k, v in table.items()]
            raise OSError(err, f"BPF_MAP_LOOKUP_BATCH: {errno.errorcode.get(err, err)}")
        out.extend(zip(keys[:count.value], values[:count.value]))
        if err == errno.ENOENT:  # the last bucket was read
            return out
        first = False


def _plain(value):
    return value.value if isinstance(value, ctypes._SimpleCData) else value
