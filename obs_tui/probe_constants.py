"""The numbers the eBPF probes (bpf/*.c) and their Python readers share, written once, here.

The loader (bcc_setup.load_program) hands them to the C compiler as `-D NAME=value`; the C
programs use them without defining them, and refuse to compile without them. So a histogram
layout, a path length or a lost-event slot cannot differ between kernel and user space.
tests/test_probe_constants.py compiles the probe and checks, through bcc, that its maps,
structs and decoding functions agree with what is written here.
"""

from __future__ import annotations

# The request path the probe keeps: a multiple of 8, as it scans the path a word at a time.
PATH_LEN = 96

# Latency histogram: log-linear buckets over units of 2**HIST_UNIT_SHIFT ns (1.024 us, a
# shift in the probe): 2**HIST_SUB_BITS sub-buckets per power of two, up to 2**HIST_MAX_LOG
# units. analysis/histogram.py reads these buckets back.
HIST_UNIT_SHIFT = 10
HIST_SUB_BITS = 4
HIST_SUB = 1 << HIST_SUB_BITS
HIST_MAX_LOG = 26
HIST_BUCKETS = (HIST_MAX_LOG - HIST_SUB_BITS + 1) * HIST_SUB + HIST_SUB

# Request methods by the probe's method code (its position here); 0 means "no request".
METHODS = ("", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# The code of a request answered whose request line the probe could not parse (split across
# reads, pipelined behind another in one read, an unknown method): counted with its status and
# latency, under this code and the path hash UNPARSED_HASH (an empty path).
METHOD_UNPARSED = len(METHODS)
UNPARSED_HASH = 1

# The probe's `lost` counters by slot: what it could not record, and why
# (analysis/red.py words each one for the user, in this order).
LOST_CONNS = 0  # conns map full at a connection's first request: its requests are not seen
LOST_STATS = 1  # stats map full: a finished request could not be counted
LOST_SSL_ARGS = 2  # per-thread SSL argument stash full: one SSL call not seen
LOST_UNMATCHED = 3  # a request began while the previous one had no response seen
LOST_PATHS = 4  # paths map full: a new path's requests could not be counted
LOST_UNPARSED = 5  # a response to a request the probe saw no start of: no request was parsed
# on the connection, nor a read that could begin one
LOST_UNDECODED = 6  # undecoded map full: a TLS or HTTP/2 connection not counted
LOST_H2_EVENTS = 7  # HTTP/2 ring buffer full: a frame's header block never reached user space
LOST_H2_CONNS = 8  # HTTP/2 connections table full: a connection's streams are not seen
LOST_H2_SYNC = 9  # more frames in one call than the probe walks: the connection's rest is lost
LOST_SLOTS = 10

# Connections whose bytes the probe sees but cannot decode, counted per server, by kind code
# (its position here): a TLS ClientHello read from the socket itself (a TLS library other than
# the traced libssl: Node's bundled OpenSSL, Go, Java, static), or the HTTP/2 preface.
UNDECODED_KINDS = ("", "tls", "http2")

# HTTP/2 (bpf/red.c, sources/h2_streams.py): the frame header blocks the probe copies out to
# user space, at most H2_BLOCK_MAX bytes of one frame's payload per read (a larger block is
# cut, and user space then stops trusting that connection's HPACK table); at most
# H2_FRAMES * H2_TAILS steps (a frame, the rest of a frame, an iovec) per call, more than h2load
# -m 100 and grpcio write or read in one (a call with more loses the connection: LOST_H2_SYNC).
# H2_FRAMES: the verifier's work on a walk program grows with its square (every step can leave
# the walk in a different state for the next); 16 verifies within its 1M-instruction budget
# with room left, 32 does not, and it is most of the probe's load time (bench/probe_load.py).
# H2_EV_* are the pseudo frame types of the probe's own events.
H2_BLOCK_MAX = 1024  # a power of two: the probe masks copy lengths with 2 * H2_BLOCK_MAX - 1
H2_FRAMES = 16  # steps (frames, rests of frames, iovecs) one walk program takes
# TLS calls reach the walk through one tail call more (tls_io): 1 + H2_TAILS must stay <= 33.
H2_TAILS = 32  # walk programs per call, each tail-calling the next (the kernel allows 33 calls)
H2_EV_OPEN = 0xF0  # a connection becomes HTTP/2 (flags: 1 when adopted mid-stream, no preface)
H2_EV_CLOSE = 0xF1  # it ended
H2_EV_DESYNC = 0xF2  # the probe lost its frame boundaries: its open streams are gone
H2_EV_UPGRADE = 0xF3  # an HTTP/1.1 request upgraded to h2c: stream 1's request (flags: method code)

# Sizes of the probe's maps that user space words or sizes its caches by.
STATS_MAX = 16384  # (service, method, status, path) counters
PATHS_MAX = 16384  # distinct paths


def defines() -> dict[str, int]:
    """Every constant the C programs take, by its C name."""
    out = {
        "PATH_LEN": PATH_LEN,
        "HIST_UNIT_SHIFT": HIST_UNIT_SHIFT,
        "HIST_SUB_BITS": HIST_SUB_BITS,
        "HIST_SUB": HIST_SUB,
        "HIST_MAX_LOG": HIST_MAX_LOG,
        "HIST_BUCKETS": HIST_BUCKETS,
        "LOST_CONNS": LOST_CONNS,
        "LOST_STATS": LOST_STATS,
        "LOST_SSL_ARGS": LOST_SSL_ARGS,
        "LOST_UNMATCHED": LOST_UNMATCHED,
        "LOST_PATHS": LOST_PATHS,
        "LOST_UNPARSED": LOST_UNPARSED,
        "LOST_UNDECODED": LOST_UNDECODED,
        "LOST_H2_EVENTS": LOST_H2_EVENTS,
        "LOST_H2_CONNS": LOST_H2_CONNS,
        "LOST_H2_SYNC": LOST_H2_SYNC,
        "LOST_SLOTS": LOST_SLOTS,
        "H2_BLOCK_MAX": H2_BLOCK_MAX,
        "H2_FRAMES": H2_FRAMES,
        "H2_TAILS": H2_TAILS,
        "H2_MASK_VALUE": 2 * H2_BLOCK_MAX - 1,
        "H2_EV_OPEN": H2_EV_OPEN,
        "H2_EV_CLOSE": H2_EV_CLOSE,
        "H2_EV_DESYNC": H2_EV_DESYNC,
        "H2_EV_UPGRADE": H2_EV_UPGRADE,
        "METHOD_UNPARSED": METHOD_UNPARSED,
        "UNPARSED_HASH": UNPARSED_HASH,
        "STATS_MAX": STATS_MAX,
        "PATHS_MAX": PATHS_MAX,
    }
    out.update({f"METHOD_{name}": code for code, name in enumerate(METHODS) if name})
    out.update({f"UNDECODED_{kind.upper()}": code for code, kind in enumerate(UNDECODED_KINDS) if kind})
    return out


def cflags() -> list[str]:
    """The constants as compiler flags, for bcc.BPF(cflags=...)."""
    return [f"-D{name}={value}" for name, value in defines().items()]
