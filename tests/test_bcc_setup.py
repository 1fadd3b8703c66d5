"""The kernel-headers fallback, on real header trees when installed and on small temp trees."""

from pathlib import Path

import pytest

from obs_tui import bcc_setup


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_merge_trees_lays_arch_over_common(tmp_path):
    common = make_tree(
        tmp_path / "linux-headers-6.1.0-9-common",
        {
            "Makefile": "common",
            "include/linux/a.h": "a",
            "arch/x86/include/asm/b.h": "b",
            "arch/arm/x.h": "arm",
        },
    )
    arch = make_tree(
        tmp_path / "linux-headers-6.1.0-9-amd64",
        {
            "include/generated/autoconf.h": "gen",
            "include/config/auto.conf": "cfg",
            "arch/x86/include/generated/asm/c.h": "c",
            ".config": "dotconfig",
        },
    )
    dest = tmp_path / "cache" / "merged"
    bcc_setup.merge_trees(dest, [common, arch])
    assert (dest / "include/linux/a.h").read_text() == "a"
    assert (dest / "include/generated/autoconf.h").read_text() == "gen"
    assert (dest / "arch/x86/include/asm/b.h").read_text() == "b"
    assert (dest / "arch/x86/include/generated/asm/c.h").read_text() == "c"
    assert (dest / ".config").read_text() == "dotconfig"
    # untouched subtrees are single symlinks, not copies
    assert (dest / "arch/arm").is_symlink() and (dest / "include/linux").is_symlink()
    assert not any(p.is_file() and not p.is_symlink() for p in dest.rglob("*"))
    # idempotent
    bcc_setup.merge_trees(dest, [common, arch])


def test_assembled_headers_picks_newest_pair(tmp_path):
    for version in ("6.1.0-9", "6.1.0-12"):
        make_tree(tmp_path / f"linux-headers-{version}-common", {"include/linux/a.h": version})
        make_tree(tmp_path / f"linux-headers-{version}-amd64", {"include/generated/g.h": version})
    headers = bcc_setup.assembled_headers(tmp_path, cache=tmp_path / "cache")
    assert headers.kind == "assembled"
    assert (headers.path / "include/linux/a.h").read_text() == "6.1.0-12"


def test_no_headers_is_a_reason(tmp_path):
    headers = bcc_setup.assembled_headers(tmp_path, cache=tmp_path / "cache")
    assert headers.kind == "missing" and "linux-headers" in headers.detail


@pytest.mark.skipif(not bcc_setup.distro_header_pairs(), reason="no linux-headers package installed")
def test_real_probe_compiles_against_the_assembled_tree(tmp_path, monkeypatch):
    import os

    if os.geteuid() != 0:
        pytest.skip("loading a probe needs root")
    if bcc_setup.running_kernel_headers() is None:
        monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.setattr(bcc_setup, "_prepared", False)
    notices = []
    bcc = bcc_setup.import_bcc(notice=notices.append)
    probe = bcc.BPF(text=b"TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }")
    probe.cleanup()
    if bcc_setup.running_kernel_headers() is None:
        assert len(notices) == 1 and "assembled" in notices[0]
        assert str(tmp_path) in os.environ["BCC_KERNEL_SOURCE"]


def test_tracefs_mounted_reads_the_mount_table(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n")
    assert not bcc_setup.tracefs_mounted(str(mounts))
    mounts.write_text("tracefs /sys/kernel/tracing tracefs rw,nosuid 0 0\n")
    assert bcc_setup.tracefs_mounted(str(mounts))
    assert not bcc_setup.tracefs_mounted(str(tmp_path / "missing"))
