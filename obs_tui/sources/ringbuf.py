"""A BPF ring buffer read straight from its mapped pages, a batch of records at a time.

bcc's reader (libbpf's ring_buffer__consume) calls back into Python through ctypes once per
record; at tens of thousands of records a second that callback is most of the drain's cost.
The ring's memory is mapped here instead, as libbpf's ringbuf.c maps it: the consumer
position's page read-write at offset 0; the producer position's page, then the data pages
twice in a row (so a record that wraps reads contiguously), read-only from one page on. Each
record is an 8-byte header (its length, whose top bits say busy: still being written, and
discarded) and the record, padded to 8 bytes. A drain hands the bytes between the consumer
and producer positions to its caller in place, in the mapped memory; the caller walks the
records itself (one loop that reads each record's header and then the record: records(),
below, is that walk on its own), up to a record still being written, and says where it
stopped; then the consumer position is handed back to the kernel there: the kernel writes
no record where the consumer has not passed, so they stay as they are while read, and
nothing is copied (a record's unused bytes are never touched). A record whose header says
committed was written whole before (the kernel clears the busy bit last), so reading it
after its header finds it whole.

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

    def drain(self, consume: Callable[[mmap.mmap, memoryview, int, int], int]) -> int:
        """Calls consume(buffer, words, start, stop) with what was written since the last
        drain: the ring's mapped memory, the same as 32-bit words (for the record headers), and
        the offsets where the records begin and the written bytes end. consume walks the
        records as records() does, up to a record still being written (it and those after it
        come with the next drain), and returns the offset where it stopped; their room is
        then given back to the kernel. The bytes handed over (0: none came)."""
        consumer = POSITION.unpack_from(self._consumer, 0)[0]
        producer = POSITION.unpack_from(self._producer, 0)[0]
        if consumer >= producer:
            return 0
        start = self.page + (consumer & self.mask)
        stop = start + producer - consumer
        try:
            end = consume(self._producer, self._words, start, stop)
        except BaseException:
            # the records that made consume fail are not handed over again
            end = records(self._words, start, stop)[1]
            raise
        finally:
            POSITION.pack_into(self._consumer, 0, consumer + end - start)
        return end - start

    def close(self) -> None:
        self._words.release()
        self._consumer.close()
        self._producer.close()


def records(words: memoryview, start: int, stop: int) -> tuple[list[int], int]:
    """The walk of a drain's records (RingReader.drain) on its own: the offsets of the
    committed records' bytes between start and stop (discarded ones skipped), and the offset
    where the walk stopped (stop, or a record still being written)."""
    offsets: list[int] = []
    at = start
    while at < stop:
        length = words[at >> 2]  # (records are 8-byte aligned)
        if length & FLAGS:
            if length & BUSY:
                break
            length &= ~DISCARD
        else:
            offsets.append(at + HEADER)
        at += (length + HEADER + 7) & ~7
    return offsets, at


def record(event: bytes) -> bytes:
    """One event as the ring holds it (its header, the event, padding to 8 bytes)."""
    return struct.pack("<II", len(event), 0) + event + bytes(-len(event) % 8)
