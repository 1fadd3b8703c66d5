"""The CCF estimator against hand-computed values, CPU detection, config overrides."""

from __future__ import annotations

import os

import pytest

from obs_tui.analysis.attribution import power_section
from obs_tui.analysis.estimate import estimated_watts
from obs_tui.ccf import host_estimate, load_table, microarchitecture, parse_cpuinfo
from obs_tui.config import ConfigError, parse
from obs_tui.raw import CpuStat, PowerRaw
from obs_tui.sources.power import PowerSource, memory_gb

TABLE = load_table()


def cpuinfo(model: str, vendor: str = "GenuineIntel", family: int = 6, model_no: int = 85, n: int = 4) -> str:
    block = (
        f"processor\t: {{i}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\n"
        f"model\t\t: {model_no}\nmodel name\t: {model}\n\n"
    )
    return "".join(block.format(i=i) for i in range(n))


@pytest.mark.parametrize(
    "model,vendor,family,model_no,expected",
    [
        ("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", "GenuineIntel", 6, 85, "Cascade Lake"),
        ("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "GenuineIntel", 6, 85, "Skylake"),
        ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", "GenuineIntel", 6, 79, "Broadwell"),
        ("Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz", "GenuineIntel", 6, 63, "Haswell"),
        ("AMD EPYC 7R32", "AuthenticAMD", 23, 49, "AMD EPYC 2nd Gen"),
        ("AMD EPYC 7571", "AuthenticAMD", 23, 1, "AMD EPYC 1st Gen"),
        ("AMD EPYC 7R13 Processor", "AuthenticAMD", 25, 1, "AMD EPYC 3rd Gen"),
        ("AMD EPYC", "AuthenticAMD", 23, 49, "AMD EPYC 2nd Gen"),  # a VM hiding the number
        ("AMD EPYC", "AuthenticAMD", 26, 2, "CCF average"),  # Zen 5: not in CCF's table
        ("QEMU Virtual CPU version 2.5+", "GenuineIntel", 6, 6, "CCF average"),
    ],
)
def test_microarchitecture_detection(model, vendor, family, model_no, expected):
    cpu = parse_cpuinfo(cpuinfo(model, vendor, family, model_no))
    assert cpu.vcpus == 4 and cpu.model_name == model
    assert host_estimate(cpu, 8.0, {}, TABLE).microarchitecture == expected


def test_watts_by_hand_cascade_lake():
    cpu = parse_cpuinfo(cpuinfo("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"))
    est = host_estimate(cpu, 16.0, {"memory_watts_per_gb": 0.392}, TABLE)
    assert (est.min_watts_per_vcpu, est.max_watts_per_vcpu) == (0.64, 3.97)
    cpu_w, mem_w = estimated_watts(est, 0.5)
    assert cpu_w == pytest.approx(4 * (0.64 + 0.5 * (3.97 - 0.64)))  # 9.22 W
    assert mem_w == pytest.approx(16 * 0.392)  # 6.272 W
    assert estimated_watts(est, 0.0)[0] == pytest.approx(2.56)
    assert estimated_watts(est, 1.7)[0] == pytest.approx(15.88)  # clamped to 100 %


def test_epyc_2nd_gen_and_the_average_by_hand():
    rome = host_estimate(parse_cpuinfo(cpuinfo("AMD EPYC 7R32", "AuthenticAMD", 23, 49, n=2)), 0.0, {}, TABLE)
    assert estimated_watts(rome, 0.25) == pytest.approx((2 * (0.47 + 0.25 * 1.22), 0.0))
    unknown = host_estimate(parse_cpuinfo(cpuinfo("Mystery CPU")), 1.0, {}, TABLE)
    assert unknown.coefficients_from == "average"
    assert (unknown.min_watts_per_vcpu, unknown.max_watts_per_vcpu) == (0.74, 3.5)
    assert "cloud-carbon-footprint" in unknown.source_url


def test_config_overrides_the_table():
    cpu = parse_cpuinfo(cpuinfo("AMD EPYC 7R32", "AuthenticAMD", 23, 49, n=2))
    est = host_estimate(
        cpu, 4.0, {"min_watts_per_vcpu": 1.0, "max_watts_per_vcpu": 5.0, "memory_watts_per_gb": 0.0}, TABLE
    )
    assert est.coefficients_from == "config"
    assert estimated_watts(est, 0.5) == pytest.approx((2 * 3.0, 0.0))


def test_estimated_section_by_hand():
    cpu = parse_cpuinfo(cpuinfo("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", n=2))
    est = host_estimate(cpu, 10.0, {}, TABLE)

    def raw(busy, total, ns):
        return PowerRaw("estimate", (), (), CpuStat(busy, total), {7: ns}, {7: "x"}, "proc", est)

    s = power_section(raw(0, 1000, 0), raw(250, 2000, 10**9), 2.0)  # 25 % busy for 2 s
    cpu_w = 2 * (0.64 + 0.25 * 3.33)
    mem_w = 10 * 0.392
    assert s.source == "estimate" and s.estimate is est
    assert dict(s.zones) == pytest.approx({"cpu": cpu_w, "memory": mem_w})
    assert s.host_watts == pytest.approx(cpu_w + mem_w)
    assert s.processes[0].watts == pytest.approx((cpu_w + mem_w) * 0.25)  # the only process
    assert s.idle_watts == pytest.approx((cpu_w + mem_w) * 0.75)


def test_this_host_is_estimated(tmp_path):
    source = PowerSource(str(tmp_path), str(tmp_path), use_ebpf=False)
    assert source.available().ok and source.mode == "estimate"
    est = source.estimate
    assert est.vcpus == os.cpu_count()
    with open("/proc/meminfo") as f:
        assert est.memory_gb == pytest.approx(memory_gb(f.read()))
    with open("/proc/cpuinfo") as f:
        row = microarchitecture(parse_cpuinfo(f.read()), TABLE)
    assert est.microarchitecture == (row["name"] if row else "CCF average")
    source.close()


def test_power_config_keys():
    c = parse('[power]\nmin_watts_per_vcpu = 0.5\nmax_watts_per_vcpu = 2\nhwmon_root = "/x"\n')
    assert c.power["min_watts_per_vcpu"] == 0.5 and c.power["hwmon_root"] == "/x"
    assert c.power["memory_watts_per_gb"] == 0.392
    with pytest.raises(ConfigError, match="power.memory_watts_per_gb"):
        parse("[power]\nmemory_watts_per_gb = -1\n")
    with pytest.raises(ConfigError, match="must not exceed"):
        parse("[power]\nmin_watts_per_vcpu = 4\nmax_watts_per_vcpu = 2\n")
