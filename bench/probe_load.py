"""The RED probe's load time, split into compiling (clang, in bcc) and loading (the kernel's
verifier), for bpf/red.c beside an earlier commit's red.c, in one run.

    sudo .venv/bin/python bench/probe_load.py [--rounds 3] [--against REV] [--extra FILE]

Each round compiles every source once (bcc.BPF with its automatic attach switched off: clang
only), then loads each of its programs into the kernel without attaching any (bcc's
load_func: the verifier), and prints both times, the programs' instruction counts the
verifier walked (fdinfo's verified_insns) and the sum, and the instructions clang generated. Wall
and CPU time both: clang runs in this process and the verifier in its syscalls, so their CPU
time is steadier than wall time on a shared host. --against names the git revision whose
red.c is measured beside the working tree's (default: the commit before the last one that
changed bpf/red.c); --extra adds a variant file (experiments). Rounds alternate the sources'
order, so a drift of the host weighs on both; the medians are printed last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from obs_tui.bcc_setup import import_bcc, probe_cflags  # noqa: E402

SOURCE = REPO / "bpf" / "red.c"


def prog_type(bcc, name: bytes) -> int:
    """The program type red.py or bcc's autoload gives each function of red.c."""
    if name.startswith(b"raw_tracepoint__") or name == b"h2_walk_tp":
        return bcc.BPF.RAW_TRACEPOINT
    if name.startswith(b"tracepoint__"):
        return bcc.BPF.TRACEPOINT
    return bcc.BPF.KPROBE


def verified_insns(fd: int) -> int:
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("verified_insns:"):
            return int(line.split()[1])
    return 0


def measure(bcc, src: Path) -> tuple[float, float, float, float, int, int, dict[str, int]]:
    """(compile s, compile CPU s, load s, load CPU s, instructions, verified instructions, per
    program) for one source. CPU time is the process's own (clang runs in it, the verifier in
    its syscalls): steadier than wall time on a shared host."""
    autoload = bcc.BPF._trace_autoload
    bcc.BPF._trace_autoload = lambda self: None  # compile only: no load, no attach
    try:
        started, cpu_started = time.monotonic(), time.process_time()
        bpf = bcc.BPF(src_file=str(src).encode(), cflags=probe_cflags())
        compiled, cpu_compiled = time.monotonic(), time.process_time()
    finally:
        bcc.BPF._trace_autoload = autoload
    per_prog = {}
    try:
        names = [
            bcc.lib.bpf_function_name(bpf.module, i) for i in range(bcc.lib.bpf_num_functions(bpf.module))
        ]
        insns = sum(bcc.lib.bpf_function_size(bpf.module, name) // 8 for name in names)
        for name in names:
            fn = bpf.load_func(name, prog_type(bcc, name))
            per_prog[name.decode()] = verified_insns(fn.fd)
        loaded, cpu_loaded = time.monotonic(), time.process_time()
    finally:
        bpf.cleanup()
    return (
        compiled - started,
        cpu_compiled - cpu_started,
        loaded - compiled,
        cpu_loaded - cpu_compiled,
        insns,
        sum(per_prog.values()),
        per_prog,
    )


def git_source(rev: str, dest: Path) -> Path:
    if rev == "auto":
        last = subprocess.run(
            ["git", "log", "-n1", "--format=%H", "--", "bpf/red.c"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rev = f"{last}~1"
    text = subprocess.run(
        ["git", "show", f"{rev}:bpf/red.c"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    out = dest / f"red-{rev.replace('/', '_')}.c"
    out.write_text(text)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", default="auto", help="git revision of the red.c to compare")
    parser.add_argument("--extra", type=Path, action="append", default=[], help="a variant source")
    parser.add_argument("--programs", action="store_true", help="print each program's verified_insns")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("probe_load: needs root (loading eBPF programs)")
    bcc = import_bcc()
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"working tree": SOURCE}
        if args.against != "none":
            old = git_source(args.against, Path(tmp))
            sources[f"{args.against} ({old.name})"] = old
        for extra in args.extra:
            sources[str(extra)] = extra
        times: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label in sources}
        for round_ in range(args.rounds):
            order = list(sources.items())
            if round_ % 2:
                order.reverse()
            for label, path in order:
                try:
                    cc, cc_cpu, load, load_cpu, insns, verified, per_prog = measure(bcc, path)
                except Exception as exc:  # bcc raises bare Exception with the compiler's words
                    print(f"{label}: failed: {str(exc).splitlines()[0]}")
                    continue
                times[label].append((cc, cc_cpu, load, load_cpu))
                print(
                    f"{label:32s} compile {cc:5.2f} s (CPU {cc_cpu:5.2f})  load {load:5.2f} s "
                    f"(CPU {load_cpu:5.2f})  insns {insns:6d}  verified insns {verified:8d}"
                )
                if args.programs and round_ == 0:
                    for name, n in sorted(per_prog.items(), key=lambda kv: -kv[1]):
                        print(f"    {name:40s} {n:8d}")
        for label, runs in times.items():
            if runs:
                cc, cc_cpu, load, load_cpu = (statistics.median(r[i] for r in runs) for i in range(4))
                print(
                    f"median {label:25s} compile {cc:5.2f} s (CPU {cc_cpu:5.2f})  load {load:5.2f} s "
                    f"(CPU {load_cpu:5.2f})  total {cc + load:5.2f} s"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
