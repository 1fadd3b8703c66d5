"""Reading a whole BPF hash map from user space, a chunk of entries per system call.

bcc's `items()` costs two system calls and a few ctypes objects per entry (next key, then
lookup): the largest part of a RED sample's CPU with a few dozen routes. bcc's own
`items_lookup_batch()` makes one call, but into buffers sized for the map's max_entries:
tens of MB for the RED stats map (every entry's histogram), allocated and zeroed on every read.
MapReader reads BPF_MAP_LOOKUP_BATCH (Linux 5.6+) in chunks, into buffers allocated once,
and hands out each entry's bytes: callers decode only what they need.
"""

from __future__ import annotations

import ctypes
import errno

CHUNK = 64  # entries per call: a few dozen routes in one call, 64 x 3 KB of buffer at most


class MapReader:
    def __init__(self, table, chunk: int = CHUNK) -> None:
        self.table = table
        self.key_size, self.value_size = ctypes.sizeof(table.Key), ctypes.sizeof(table.Leaf)
        self._allocate(chunk)

    def _allocate(self, chunk: int) -> None:
        self.chunk = chunk
        self._keys, self._values = (self.table.Key * chunk)(), (self.table.Leaf * chunk)()
        self._key_bytes = memoryview((ctypes.c_ubyte * ctypes.sizeof(self._keys)).from_buffer(self._keys))
        self._value_bytes = memoryview(
            (ctypes.c_ubyte * ctypes.sizeof(self._values)).from_buffer(self._values)
        )

    def raw(self) -> list[tuple[bytes, bytes]]:
        """(key bytes, value bytes) of every entry. Entries added or removed while the map is
        read may be missed or seen, as with any walk of a live map. Kernels without batch
        operations get bcc's key-by-key walk."""
        from bcc import lib

        out: list[tuple[bytes, bytes]] = []
        cursor = ctypes.c_uint32(0)  # a hash map's batch cursor is a bucket index
        count = ctypes.c_uint32(0)
        ks, vs = self.key_size, self.value_size
        first = True
        while True:
            count.value = self.chunk
            res = lib.bpf_lookup_batch(
                self.table.map_fd,
                None if first else ctypes.byref(cursor),
                ctypes.byref(cursor),
                self._keys,
                self._values,
                ctypes.byref(count),
            )
            err = ctypes.get_errno() if res != 0 else 0
            if err == errno.ENOSPC and count.value == 0:
                self._allocate(self.chunk * 2)  # one bucket holds more entries than a chunk
                continue
            if err not in (0, errno.ENOENT):
                if first:  # no batch operations on this kernel (EINVAL) or for this map
                    return [(bytes(k), bytes(v)) for k, v in self.table.items()]
                raise OSError(err, f"BPF_MAP_LOOKUP_BATCH: {errno.errorcode.get(err, err)}")
            keys, values = self._key_bytes, self._value_bytes
            out.extend(
                (keys[i * ks : (i + 1) * ks].tobytes(), values[i * vs : (i + 1) * vs].tobytes())
                for i in range(count.value)
            )
            if err == errno.ENOENT:  # the last bucket was read
                return out
            first = False
