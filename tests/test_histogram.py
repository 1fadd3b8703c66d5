"""Latency histogram buckets (the inverse of bpf/red.c's bucket_of) and quantiles."""

from hypothesis import given
from hypothesis import strategies as st

from obs_tui.analysis import histogram as h


@given(st.integers(min_value=0, max_value=60 * 10**9))
def test_a_duration_lies_in_its_bucket(ns):
    lower, upper = h.bucket_bounds_ns(h.bucket_of(ns))
    assert lower <= ns < upper or (ns < h.UNIT_NS and lower == 0)


@given(st.integers(min_value=16 * h.UNIT_NS, max_value=60 * 10**9))
def test_bucket_width_bounds_the_relative_error(ns):
    lower, upper = h.bucket_bounds_ns(h.bucket_of(ns))
    assert (upper - lower) / lower <= 1 / 16


def test_buckets_are_contiguous_and_increasing():
    for index in range(h.BUCKETS - 1):
        assert h.bucket_bounds_ns(index)[1] == h.bucket_bounds_ns(index + 1)[0]
    assert h.bucket_of(10**15) == h.BUCKETS - 1


@given(st.floats(min_value=0.05, max_value=5000), st.integers(min_value=1, max_value=500))
def test_a_point_mass_quantile_is_within_one_bucket(ms, n):
    hist = {h.bucket_of(int(ms * 1e6)): n}
    for q in (0.5, 0.95, 0.99):
        assert abs(h.quantile_ms(hist, q) - ms) <= ms / 16 + 0.0011


def test_quantiles_of_two_groups():
    hist = h.merge([{h.bucket_of(1_000_000): 90}, {h.bucket_of(100_000_000): 10}])
    assert 0.9 < h.quantile_ms(hist, 0.5) < 1.1
    assert 93 < h.quantile_ms(hist, 0.99) < 107


def test_empty_and_odd_inputs_give_zero():
    assert h.quantile_ms({}, 0.5) == 0.0
    assert h.quantile_ms({3: 0}, 0.99) == 0.0
    assert h.quantile_ms({5: 2}, 7.0) > 0  # q clamped to 1


def test_subtract_windows_and_resets():
    assert h.subtract({1: 5, 2: 3}, {1: 2}) == {1: 3, 2: 3}
    assert h.subtract({1: 5}, {1: 9}) == {1: 5}  # counters reset: the current ones are the window
    assert h.subtract({1: 5}, None) == {1: 5}
