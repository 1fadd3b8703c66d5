"""RAPL energy counters: the powercap sysfs tree and the amd_energy hwmon driver.

Both readers find their counters once, open every energy file once and then re-read them
with os.pread on the held descriptor: a later step drops root after start-up, and energy_uj
is root-only since Linux 5.10 (CVE-2020-8694, the Platypus attack), so the descriptors
opened as root are what keeps the readings coming.

A reader only reads. Which zones make up the host, and the deltas with wraparound, are the
pure analysis's job (obs_tui/analysis/attribution.py).

Powercap layout (drivers/powercap/intel_rapl_common.c; AMD uses it too since Linux 5.8):
  intel-rapl:N      name "package-N" (one per socket) or "psys" (the platform)
  intel-rapl:N:M    name "core", "uncore" or "dram", under package-N
Each has energy_uj (a counter in microjoules that wraps at max_energy_range_uj).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from obs_tui.model import Capability
from obs_tui.raw import Zone

HWMON_COUNTER_RANGE = 2**64  # amd_energy accumulates into 64 bits in the driver


class Unreadable(Exception):
    """The energy files exist but cannot be opened; the message says why and what to do."""


def _read_text(path: Path) -> str:
    return path.read_text().strip()


def _open_counter(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError as exc:
        raise Unreadable(
            f"{path}: permission denied (EACCES): energy counters are root-only "
            "since Linux 5.10 (CVE-2020-8694); run obs-tui as root"
        ) from exc
    except OSError as exc:
        raise Unreadable(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc


def read_counter(fd: int) -> int:
    """One counter's value, re-read through its held descriptor.

    A counter only counts up from 0; anything else is a broken driver or file, and raises
    ValueError so that the engine shows the power pane stale with the reason."""
    value = int(os.pread(fd, 32, 0))
    if value < 0:
        raise ValueError(f"energy counter reads {value}: negative")
    return value


class CounterSet:
    """Open energy files, read together. Subclasses find the zones under `root`."""

    kind = ""
    NONE_FOUND = ""  # the reason when discover() finds nothing, with {root}

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.zones: tuple[Zone, ...] = ()
        self._fds: list[int] = []

    def discover(self) -> list[Zone]:
        raise NotImplementedError

    def open(self) -> Capability:
        """Find the zones and open their counters; a Capability with the reason if none work."""
        zones = self.discover()
        if not zones:
            return Capability(False, self.NONE_FOUND.format(root=self.root))
        return self._open_all(zones)

    def _open_all(self, zones: list[Zone]) -> Capability:
        fds: list[int] = []
        try:
            for zone in zones:
                fds.append(_open_counter(Path(zone.path)))
                try:
                    read_counter(fds[-1])  # opened is not enough: a driver may refuse the read
                except (OSError, ValueError) as exc:
                    why = (
                        "not a number" if isinstance(exc, ValueError) else os.strerror(exc.errno or errno.EIO)
                    )
                    raise Unreadable(f"{zone.path}: cannot read: {why}") from exc
        except Unreadable as exc:
            for fd in fds:
                os.close(fd)
            return Capability(False, str(exc))
        self.close()
        self.zones, self._fds = tuple(zones), fds
        return Capability(True, f"{len(zones)} zones: {', '.join(z.name for z in zones)}")

    def read(self) -> tuple[int, ...]:
        """Every zone's counter in microjoules, in the order of `zones`."""
        return tuple(read_counter(fd) for fd in self._fds)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


_POWERCAP_DIR = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
_PACKAGE = re.compile(r"^package-(\d+)$")


class PowercapReader(CounterSet):
    """/sys/class/powercap/intel-rapl:* zones and their sub-zones, named by their `name` file."""

    kind = "powercap"
    NONE_FOUND = "no RAPL zones in {root}"

    def discover(self) -> list[Zone]:
        if not self.root.is_dir():
            return []
        entries = []
        for entry in self.root.iterdir():
            m = _POWERCAP_DIR.match(entry.name)
            if m and (entry / "energy_uj").exists():
                entries.append((int(m[1]), -1 if m[2] is None else int(m[2]), entry))
        entries.sort()
        zones: list[Zone] = []
        sockets: dict[int, int] = {}  # intel-rapl:N -> socket number of its package-N
        for top, sub, entry in entries:
            try:
                name = _read_text(entry / "name")
                max_uj = int(_read_text(entry / "max_energy_range_uj"))
            except (OSError, ValueError):
                continue  # a zone without its name or range cannot be read safely
            if sub < 0:
                m = _PACKAGE.match(name)
                if m:
                    sockets[top] = int(m[1])
                    zones.append(Zone(name, "package", int(m[1]), max_uj, str(entry / "energy_uj")))
                elif name == "psys":
                    zones.append(Zone("psys", "psys", None, max_uj, str(entry / "energy_uj")))
                elif name == "dram":  # some servers list dram as a top-level zone
                    zones.append(Zone(f"dram-{top}", "dram", top, max_uj, str(entry / "energy_uj")))
            elif name in ("core", "uncore", "dram") and top in sockets:
                socket = sockets[top]
                zones.append(Zone(f"{name}-{socket}", name, socket, max_uj, str(entry / "energy_uj")))
        return zones


_HWMON_SOCKET = re.compile(r"^Esocket(\d+)$")


class HwmonEnergyReader(CounterSet):
    """The amd_energy hwmon driver: energyN_input (µJ) labelled Esocket<N> and Ecore<NNN>.

    Sockets become package-N zones. The per-core counters (Ecore<NNN>) are left out: one row
    per core would swamp the pane, and the socket counter already holds their energy.
    """

    kind = "amd_energy"
    NONE_FOUND = "no amd_energy sockets in {root}"

    def discover(self) -> list[Zone]:
        if not self.root.is_dir():
            return []
        zones: list[Zone] = []
        for hwmon in sorted(self.root.iterdir()):
            try:
                if _read_text(hwmon / "name") != "amd_energy":
                    continue
            except OSError:
                continue
            for label_file in sorted(hwmon.glob("energy*_label")):
                try:
                    m = _HWMON_SOCKET.match(_read_text(label_file))
                except OSError:
                    continue
                if m:
                    path = str(label_file)[: -len("_label")] + "_input"
                    zones.append(Zone(f"package-{m[1]}", "package", int(m[1]), HWMON_COUNTER_RANGE - 1, path))
        return zones


def open_meter(powercap_root: str, hwmon_root: str) -> tuple[CounterSet | None, str]:
    """The first energy reader that works here, or (None, why not): a reader whose counters
    exist but cannot be read (EACCES) gives its own reason, since that one has a fix."""
    reasons = []
    for reader in (PowercapReader(powercap_root), HwmonEnergyReader(hwmon_root)):
        cap = reader.open()
        if cap.ok:
            return reader, cap.reason
        if reader.discover():
            return None, cap.reason
        reasons.append(cap.reason)
    return None, " and ".join(reasons)
