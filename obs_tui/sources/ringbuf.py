"""A BPF ring buffer read straight from its mapped pages, a batch of records at a time.

bcc's reader (libbpf's ring_buffer__consume) calls back into Python through ctypes once per
record; at tens of thousands of records a second that callback is most of the drain's cost.
The ring's memory is mapped here instead, as libbpf's ringbuf.c maps it: the consumer
position's page read-write at offset 0; the producer position's page, then the data pages
twice in a row (so a record that wraps reads contiguously), read-only from one page on. Each
record is an 8-byte header (its length, whose top bits say busy: still being written, and
discarded) and the record, padded to 8 bytes. A drain hands the records between the consumer
and producer positions (up to a record still being written) to its caller in place, in the
mapped memory, then hands the consumer position back to the kernel: the kernel writes no
record where the consumer has not passed, so they stay as they are while read, and nothing
is copied (a record's unused bytes are never touched).

x86-64 orders these loads and stores as the kernel's acquire/release pairs need, so plain
reads of the mapped words are enough here.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable

BUSY = 1 << 31
DISCARD = 1 << 30
FLAGS = BUSY | DISCARD
HEADER = 8
POSITION = struct.Struct("<Q")


class RingReader:
    def __init__(self, map_fd: int, size: int) -> None:
        """size: the ring's data bytes (the map's max_entries, a power of two of pages)."""
        self.page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        # MAP_POPULATE: the ring's pages (the kernel's, already there) mapped now, not faulted
        # in one at a time on the drain thread's first lap round the ring
        shared = mmap.MAP_SHARED | mmap.MAP_POPULATE
        self._consumer = mmap.mmap(map_fd, self.page, shared, mmap.PROT_READ | mmap.PROT_WRITE)
        self._producer = mmap.mmap(map_fd, self.page + 2 * size, shared, mmap.PROT_READ, offset=self.page)
        self._words = memoryview(self._producer).cast("I")  # where the record headers are read

    def drain(self, consume: Callable[[mmap.mmap, list[int]], object]) -> int:
        """Calls consume(buffer, offsets) with the records committed since the last drain:
        the ring's mapped memory and each record's offset in it (its length is the event's own
        business), in the order they were reserved; then gives their room back to the kernel.
        A record still being written ends the batch; it and those after it come with the next
        drain. The number of records."""
        consumer = POSITION.unpack_from(self._consumer, 0)[0]
        producer = POSITION.unpack_from(self._producer, 0)[0]
        if consumer >= producer:
            return 0
        start = self.page + (consumer & self.mask)
        stop = start + producer - consumer
        words = self._words
        # Headers first: a record whose header says committed was written whole before (the
        # kernel clears the busy bit last), so reading it after finds it whole.
        offsets: list[int] = []
        append = offsets.append
        at = start
        while at < stop:
            length = words[at >> 2]  # (records are 8-byte aligned)
            if length & FLAGS:
                if length & BUSY:
                    break
                length &= ~DISCARD
            else:
                append(at + HEADER)
            at += (length + HEADER + 7) & ~7
        try:
            if offsets:
                consume(self._producer, offsets)
        finally:  # (a record that made consume fail is not handed over again)
            POSITION.pack_into(self._consumer, 0, consumer + at - start)
        return len(offsets)

    def close(self) -> None:
        self._words.release()
        self._consumer.close()
        self._producer.close()
