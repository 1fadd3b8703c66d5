"""Which Cloud Carbon Footprint coefficients apply to this host (analysis/estimate.py turns
them into watts): its CPU, as /proc/cpuinfo names it, looked up in the table.

    cpu watts    = vCPUs x (min + utilisation x (max - min))   per-vCPU min/max by microarchitecture
    memory watts = memory GB x watts per GB                    (0.392 W/GB)

The coefficient table and its sources live in obs_tui/data/ccf_coefficients.toml. CCF applies
the memory coefficient only to memory beyond what SPECpower's machines carried per chip; on a
single host we cannot know that split, so all of MemTotal counts (an upper bound; set
[power] memory_watts_per_gb to change it).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from obs_tui.model import PowerEstimate

TABLE_FILE = "ccf_coefficients.toml"


@dataclass(frozen=True)
class CpuInfo:
    model_name: str
    vendor: str
    family: int | None
    model: int | None
    vcpus: int


@lru_cache(maxsize=1)
def load_table() -> dict[str, Any]:
    return tomllib.loads(resources.files("obs_tui").joinpath("data", TABLE_FILE).read_text())


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's identity and the number of processors (vCPUs) in /proc/cpuinfo."""
    first: dict[str, str] = {}
    vcpus = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            vcpus += 1
        elif vcpus == 1 and key not in first:
            first[key] = value.strip()

    def number(key: str) -> int | None:
        try:
            return int(first[key])
        except (KeyError, ValueError):
            return None

    return CpuInfo(
        first.get("model name", "unknown"),
        first.get("vendor_id", ""),
        number("cpu family"),
        number("model"),
        max(vcpus, 1),
    )


def microarchitecture(cpu: CpuInfo, table: dict[str, Any]) -> dict[str, Any] | None:
    """The table row for this CPU, by model name, then (AMD) by family/model; None if unknown."""
    rows: list[dict[str, Any]] = table["microarchitecture"]
    for row in rows:
        if re.search(row["model_name"], cpu.model_name):
            return row
    if cpu.vendor == "AuthenticAMD" and cpu.family is not None:
        for row in rows:
            if [cpu.family, cpu.model] in row.get("amd_family_models", []):
                return row
    return None


def host_estimate(
    cpu: CpuInfo, memory_gb: float, overrides: dict[str, float], table: dict[str, Any]
) -> PowerEstimate:
    """The coefficients for this host: config overrides, else its row, else CCF's average.

    overrides: [power] min_watts_per_vcpu / max_watts_per_vcpu (0 = from the table) and
    memory_watts_per_gb.
    """
    row = microarchitecture(cpu, table)
    base = row if row is not None else table["average"]
    min_w, max_w = base["min_watts_per_vcpu"], base["max_watts_per_vcpu"]
    origin = "table" if row is not None else "average"
    if overrides.get("min_watts_per_vcpu") or overrides.get("max_watts_per_vcpu"):
        min_w = overrides.get("min_watts_per_vcpu") or min_w
        max_w = overrides.get("max_watts_per_vcpu") or max_w
        origin = "config"
    memory_w = overrides.get("memory_watts_per_gb", table["memory"]["watts_per_gb"])
    return PowerEstimate(
        cpu_model=cpu.model_name,
        microarchitecture=base["name"],
        vcpus=cpu.vcpus,
        min_watts_per_vcpu=float(min_w),
        max_watts_per_vcpu=float(max_w),
        memory_gb=memory_gb,
        memory_watts_per_gb=float(memory_w),
        coefficients_from=origin,
        source_url=table["source_url"] if row is not None else table["average"]["source_url"],
    )
