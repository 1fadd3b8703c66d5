"""Host power where nothing measures it: Cloud Carbon Footprint's per-vCPU model.

    cpu watts    = vCPUs x (min + utilisation x (max - min))   per-vCPU min/max by microarchitecture
    memory watts = memory GB x watts per GB                    (0.392 W/GB)

The coefficients for this host (PowerEstimate) come from obs_tui/ccf.py and the table in
obs_tui/data/ccf_coefficients.toml.
"""

from __future__ import annotations

from obs_tui.model import PowerEstimate


def estimated_watts(est: PowerEstimate, utilisation: float) -> tuple[float, float]:
    """(cpu watts, memory watts) at a node utilisation between 0 and 1."""
    u = min(max(utilisation, 0.0), 1.0)
    cpu = est.vcpus * (est.min_watts_per_vcpu + u * (est.max_watts_per_vcpu - est.min_watts_per_vcpu))
    return cpu, est.memory_gb * est.memory_watts_per_gb
