"""Bad input from the two outside sources the other tests trust most: RAPL's sysfs files and
Prometheus's answers. Whatever they hold, obs-tui shows numbers that make sense (finite,
never negative) or a one-line reason, and never raises out of the engine or the SLO worker."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from obs_tui.analysis.attribution import counter_delta
from obs_tui.engine import Engine
from obs_tui.pipeline import stages
from obs_tui.sources import slo_specs
from obs_tui.sources.power import PowerSource
from obs_tui.sources.prometheus import PrometheusError

# What a sysfs file might hold when something is wrong: numbers out of range, text, bytes
# that are not UTF-8, nothing at all.
file_text = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: f"{n}\n".encode()),
    st.sampled_from(
        [
            b"",
            b"\n",
            b"package-0\n",
            b"psys\n",
            b"dram\n",
            b"core\n",
            b"nan\n",
            b"0x10\n",
            b"1e9\n",
            b"\xff\xfe\n",
            b"123abc\n",
        ]
    ),
    st.binary(max_size=24),
)


@settings(deadline=None)  # pure maths: a busy shared host is no reason to fail it
@given(st.integers(min_value=1, max_value=2**64), st.data())
def test_a_counter_delta_is_never_negative_nor_more_than_the_range(max_uj, data):
    before = data.draw(st.integers(min_value=0, max_value=max_uj))
    after = data.draw(st.integers(min_value=0, max_value=max_uj))
    elapsed = data.draw(st.floats(min_value=-1.0, max_value=1e6, allow_nan=False))
    assert 0 <= counter_delta(before, after, max_uj, elapsed) <= max_uj


@settings(max_examples=120, deadline=None)
@given(
    name=file_text,
    max_uj=file_text,
    first=file_text,
    second=file_text,
    sub_name=file_text,
    sub_energy=file_text,
)
def test_any_powercap_file_contents_give_sane_watts_or_a_reason(
    name, max_uj, first, second, sub_name, sub_energy
):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        top, sub = root / "intel-rapl:0", root / "intel-rapl:0:0"
        for d, n, e in ((top, name, first), (sub, sub_name, sub_energy)):
            d.mkdir()
            (d / "name").write_bytes(n)
            (d / "max_energy_range_uj").write_bytes(max_uj)
            (d / "energy_uj").write_bytes(e)
        source = PowerSource(str(root), str(root / "no-hwmon"), use_ebpf=False)
        engine = Engine(stages([source]), interval=1.0)
        try:
            engine.tick(1000.0)
            (top / "energy_uj").write_bytes(second)
            frame = engine.tick(1001.0)
        finally:
            engine.close()
    status = frame.source("power")
    assert status is not None and "\n" not in status.reason
    power = frame.power
    if power is None:
        assert status.reason  # off or stale: it says why
        return
    numbers = [
        power.host_watts,
        power.idle_watts,
        *dict(power.zones).values(),
        *(p.watts for p in power.processes),
        *(p.joules for p in power.processes),
    ]
    assert all(math.isfinite(x) and x >= 0 for x in numbers), power


# Prometheus /api/v1/query "result" arrays as a broken or hostile server might send them.
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["NaN", "+Inf", "-Inf", "1.5", "0"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["metric", "value", "obs_kind", "obs_window", "values"]) | st.text(max_size=5),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=12,
)
good_row = st.fixed_dictionaries(
    {
        "metric": st.fixed_dictionaries(
            {
                "obs_kind": st.sampled_from(["errors", "total", "ratio", "objective"]),
                "obs_window": st.sampled_from(["5m", "1h", "3d", ""]),
            }
        ),
        "value": st.tuples(
            st.floats(min_value=0, max_value=2e9), st.sampled_from(["0", "1.5", "NaN", "12"])
        ).map(list),
    }
)


@given(st.lists(st.one_of(good_row, json_value), max_size=5))
def test_any_query_answer_parses_or_says_it_is_malformed(rows):
    try:
        errors, totals, ratios, extra = slo_specs.parse_result(rows)
    except PrometheusError as exc:
        assert "malformed" in str(exc) and "\n" not in str(exc)
        return
    for part in (errors, totals, ratios, extra):
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in part.items())
