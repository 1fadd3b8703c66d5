"""Latency histograms as bpf/red.c fills them, and quantiles read from them.

Buckets are log-linear over units of 1.024 us (ns >> 10, a shift in the probe): unit values
0-15 get a bucket each, then every power of two is split into 16 equal sub-buckets, up to
2^26 units (about 69 s). A bucket's width is at most 1/16 of its lower bound, so a quantile
interpolated inside its bucket is within 6.25 % of the true value (below 16 us: within
1.024 us). The mapping here must stay the inverse of bucket_of() in bpf/red.c
(tests/test_probe_constants.py runs both on the same durations).
"""

from __future__ import annotations

from collections.abc import Mapping

from obs_tui import probe_constants as probe
from obs_tui.raw import merge as merge  # the raw counters' own addition, read here too

# The probe's layout (obs_tui/probe_constants.py, passed to the C compiler), by short names.
SUB_BITS = probe.HIST_SUB_BITS
SUB = probe.HIST_SUB
MAX_LOG = probe.HIST_MAX_LOG
BUCKETS = probe.HIST_BUCKETS
UNIT_SHIFT = probe.HIST_UNIT_SHIFT
UNIT_NS = 1 << UNIT_SHIFT


def bucket_of(ns: int) -> int:
    """The bucket of a duration in ns (the probe's mapping, for tests and fakes)."""
    units = max(0, int(ns)) >> UNIT_SHIFT
    if units < SUB:
        return units
    exp = units.bit_length() - 1
    if exp > MAX_LOG:
        return BUCKETS - 1
    sub = (units >> (exp - SUB_BITS)) & (SUB - 1)
    return (exp - SUB_BITS + 1) * SUB + sub


def bucket_bounds_ns(index: int) -> tuple[float, float]:
    """[lower, upper) of a bucket in ns."""
    if index < SUB:
        return index * UNIT_NS, (index + 1) * UNIT_NS
    shift = index // SUB - 1
    sub = index % SUB
    return ((SUB + sub) << shift) * UNIT_NS, ((SUB + sub + 1) << shift) * UNIT_NS


Hist = Mapping[int, int]  # bucket index -> count (sparse)


def subtract(cur: Hist, prev: Hist | None) -> dict[int, int]:
    """cur - prev per bucket; a bucket that went down means the counters were reset: use cur."""
    if not prev:
        return {i: c for i, c in cur.items() if c > 0}
    out = {}
    for index, count in cur.items():
        delta = count - prev.get(index, 0)
        if delta < 0:
            return {i: c for i, c in cur.items() if c > 0}
        if delta:
            out[index] = delta
    return out


def quantile_ms(hist: Hist, q: float) -> float:
    """The q-quantile in ms, interpolated linearly inside its bucket; 0.0 for no data."""
    total = sum(c for c in hist.values() if c > 0)
    if total <= 0:
        return 0.0
    rank = min(max(q, 0.0), 1.0) * total
    seen = 0
    for index in sorted(hist):
        count = hist[index]
        if count <= 0:
            continue
        if seen + count >= rank:
            lower, upper = bucket_bounds_ns(index)
            fraction = (rank - seen) / count
            return (lower + (upper - lower) * fraction) / 1e6
        seen += count
    lower, upper = bucket_bounds_ns(max(hist))
    return upper / 1e6


# OpenTelemetry semantic conventions' explicit buckets for http.server.request.duration (s).
SEMCONV_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def cumulative_le(
    hist: tuple[tuple[int, int], ...], bounds_s: tuple[float, ...] = SEMCONV_BOUNDS_S
) -> tuple[int, ...]:
    """Cumulative counts of requests <= each bound (Prometheus `le` buckets) from probe buckets.

    A probe bucket wholly below a bound counts in full. The one bucket that straddles a bound
    (no semconv bound falls on a probe edge: 5 ms is 4882.8 units of 1.024 us) is split in
    proportion to the part below the bound, rounded down, as if its requests were spread
    evenly inside it. So each `le` count is exact but for requests inside that one straddling
    bucket, whose width is at most 1/16 of the bound: a request within 6.25 % below a bound
    may be counted in the next bucket up. Counts stay monotone in the bound and, for a
    cumulative probe histogram, in time. (analysis/red.py memoises it per unchanged entry.)
    """
    spans = sorted((bucket_bounds_ns(index), count) for index, count in hist if count > 0)
    out = []
    for bound in bounds_s:
        limit = bound * 1e9
        below = 0
        for (lower, upper), count in spans:
            if upper <= limit:
                below += count
            else:
                if lower < limit:
                    below += int(count * (limit - lower) / (upper - lower))
                break
        out.append(below)
    return tuple(out)
