"""Make Debian's bcc usable on kernels without a matching headers package.

bcc compiles probes against kernel headers. This machine's kernel has none packaged, so,
as Pixie does, we assemble the nearest installed distro headers (the -common tree with the
arch-specific generated files laid over it) into one tree in our cache dir, and point
BCC_KERNEL_SOURCE at it. We never write under /lib/modules.
"""

from __future__ import annotations

import importlib.resources
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obs_tui import probe_constants
from obs_tui.model import Capability

USR_SRC = Path("/usr/src")
TRACEFS = Path("/sys/kernel/tracing")


@dataclass(frozen=True)
class Headers:
    path: Path | None
    kind: str  # "running" (the kernel's own), "assembled" (fallback tree), "missing"
    detail: str


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "obs-tui"


def running_kernel_headers(release: str | None = None) -> Path | None:
    release = release or platform.release()
    for name in ("build", "source"):
        candidate = Path("/lib/modules") / release / name
        if (candidate / "include").is_dir():
            return candidate
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name))


def distro_header_pairs(usr_src: Path = USR_SRC) -> list[tuple[Path, Path]]:
    """(common, arch) header trees installed by linux-headers-* packages, newest first."""
    pairs = []
    for common in usr_src.glob("linux-headers-*-common"):
        stem = common.name[: -len("-common")]
        for arch in sorted(usr_src.glob(stem + "-*")):
            if arch != common and (arch / "include" / "generated").is_dir():
                pairs.append((common, arch))
                break
    return sorted(pairs, key=lambda pair: _version_key(pair[1].name), reverse=True)


def merge_trees(dest: Path, layers: list[Path]) -> None:
    """Lay `layers` over each other as a tree of symlinks in `dest`.

    A name present in one layer only becomes one symlink (whole directories included); a
    directory present in several layers becomes a real directory merged recursively. Later
    layers win for files. So the tree costs a few hundred symlinks, not a copy.
    """
    dest.mkdir(parents=True, exist_ok=True)
    names: dict[str, list[Path]] = {}
    for layer in layers:
        for entry in layer.iterdir():
            names.setdefault(entry.name, []).append(entry)
    for name, entries in names.items():
        target = dest / name
        dirs = [e for e in entries if e.is_dir()]
        if len(dirs) > 1:
            merge_trees(target, dirs)
        else:
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(entries[-1].resolve() if not dirs else dirs[0].resolve())


def assembled_headers(usr_src: Path = USR_SRC, cache: Path | None = None) -> Headers:
    pairs = distro_header_pairs(usr_src)
    if not pairs:
        return Headers(
            None, "missing", "no linux-headers-* trees in /usr/src (apt install linux-headers-amd64)"
        )
    common, arch = pairs[0]
    dest = (cache or cache_dir()) / "kernel-headers" / arch.name
    stamp = dest / ".obs-tui-assembled"
    if not stamp.exists():
        merge_trees(dest, [common, arch])
        stamp.write_text(f"{common}\n{arch}\n")
    return Headers(dest, "assembled", f"{arch.name} assembled in {dest}")


def find_headers() -> Headers:
    own = running_kernel_headers()
    if own is not None:
        return Headers(own, "running", str(own))
    return assembled_headers()


def tracefs_mounted(mounts: str = "/proc/self/mounts") -> bool:
    """From the mount table: stat'ing tracefs itself is refused to non-root users."""
    try:
        with open(mounts) as f:
            return any(line.split()[2:3] == ["tracefs"] for line in f)
    except OSError:
        return False


def ensure_tracefs() -> None:
    """Mount tracefs if it is missing; bcc's tracepoints read their formats from it."""
    if tracefs_mounted() or os.geteuid() != 0:
        return
    import ctypes

    # mount(2) itself, not the mount binary: the console gives up its capability bounding set
    # before loading the probes (obs_tui/privileges.py), so a child it ran would have none.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount(b"tracefs", str(TRACEFS).encode(), b"tracefs", ctypes.c_ulong(0), None)


_prepared = False


def import_bcc(notice=lambda line: print(line, file=sys.stderr)):
    """Return the `bcc` module, ready to compile probes for the running kernel.

    Raises ImportError/RuntimeError with a reason a user can act on.
    """
    global _prepared
    if not _prepared:
        if "BCC_KERNEL_SOURCE" not in os.environ:
            headers = find_headers()
            if headers.kind == "missing":
                raise RuntimeError(f"no kernel headers: {headers.detail}")
            if headers.kind == "assembled":
                os.environ["BCC_KERNEL_SOURCE"] = str(headers.path)
                notice(f"obs-tui: no headers for kernel {platform.release()}; using {headers.detail}")
        ensure_tracefs()
        _prepared = True
    try:
        import bcc  # Debian's python3-bpfcc, found through the venv's system site-packages
    except ImportError as exc:
        raise ImportError(f"bcc not importable ({exc}); apt install python3-bpfcc") from exc
    return bcc


def probe_source(name: str) -> Path:
    """A probe's C source as installed with the package (bpf/ in the repository, obs_tui.bpf
    in a wheel): bcc compiles it from a path."""
    return Path(str(importlib.resources.files("obs_tui.bpf").joinpath(name)))


# bcc compiles with -g, for the program's BTF: its line info (source lines in a verifier log,
# in bpftool's dumps) and its maps' types. obs-tui uses neither, and clang's debug info is a
# fifth of the probe's compile time: -g0, after bcc's own flags, leaves it out. Take it out of
# this list to see source lines in a verifier log.
COMPILE_FLAGS = ["-g0"]


def probe_cflags() -> list[str]:
    """The flags every probe is compiled with: the shared constants (obs_tui/probe_constants.py)
    and COMPILE_FLAGS."""
    return probe_constants.cflags() + COMPILE_FLAGS


def load_program(src_file: Path, notice=lambda line: None) -> tuple[Any, Capability]:
    """(bcc.BPF, Capability) for a probe source, after the same privilege and BTF checks as
    `obs-tui doctor`. Tracepoint programs attach themselves on load (TRACEPOINT_PROBE, RAW_TRACEPOINT_PROBE).
    The constants shared with Python (obs_tui/probe_constants.py) are passed as -D flags."""
    from obs_tui import doctor

    for check in (doctor.check_privileges(), doctor.check_btf()):
        if not check.ok:
            return None, Capability(False, check.reason)
    if not src_file.is_file():
        return None, Capability(False, f"probe source {src_file} not found (broken install)")
    try:
        bcc = import_bcc(notice=notice)
    except (ImportError, RuntimeError, OSError) as exc:
        return None, Capability(False, str(exc))
    try:
        return bcc.BPF(src_file=str(src_file).encode(), cflags=probe_cflags()), Capability(True)
    except Exception as exc:  # bcc raises bare Exception with the compiler/verifier's words
        return None, Capability(
            False, f"probe failed to compile or load: {exc} (run `obs-tui doctor` for headers and tracefs)"
        )
