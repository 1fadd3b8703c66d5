"""Where a server's TLS can be decrypted beyond the system libssl: which of the ELF objects it
maps (its executable, its libraries) hold TLS code the RED probe can put uprobes on, and where.

- OpenSSL or BoringSSL exported by any object (Node's binary bundles its own OpenSSL; a server
  may ship its own libssl): the dynamic symbols SSL_read, SSL_write (and the _ex forms) and
  SSL_free, probed as in the system libssl, by the same programs.
- Go's crypto/tls: `crypto/tls.(*Conn).Read`, `Write` and `Close` from the binary's symbol
  table; Read and Write probed at their entry and at each RET instruction, found by
  disassembling them, because uretprobes crash Go programs (bpf/red.c says why). Only the Go
  1.17+ register ABI (amd64) is understood. A binary built without symbols (`-ldflags=-s`)
  cannot be probed: it is reported with that reason, and its connections stay undecoded.

File reading only (no bcc, no kernel): sources/tls_uprobes.py decides when to look and
attaches. Symbol tables are scanned as arrays with `struct` rather than through pyelftools'
per-symbol objects, which cost seconds on Node's 75,000 dynamic symbols.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

# Entry programs of bpf/red.c by OpenSSL symbol; the return side goes through uretprobes,
# which are safe in C code.
OPENSSL_ENTRY = {
    "SSL_read": "ssl_read_enter",
    "SSL_read_ex": "ssl_read_ex_enter",
    "SSL_write": "ssl_write_enter",
    "SSL_write_ex": "ssl_write_ex_enter",
    "SSL_free": "ssl_free_enter",
}
OPENSSL_RETURN = {
    "SSL_read": "ssl_read_exit",
    "SSL_read_ex": "ssl_read_exit",
    "SSL_write": "ssl_write_exit",
    "SSL_write_ex": "ssl_write_exit",
}
OPENSSL_NEEDED = ("SSL_read", "SSL_write")

GO_READ, GO_WRITE, GO_CLOSE = (
    "crypto/tls.(*Conn).Read",
    "crypto/tls.(*Conn).Write",
    "crypto/tls.(*Conn).Close",
)
GO_REGISTER_ABI = (1, 17)  # the first Go whose amd64 functions take arguments in registers
GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
RET = {"ret"}  # Go returns with a plain RET; no `ret imm16` in Go code, but both are returns
ELF_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size
STT_FUNC = 2
SHN_UNDEF = 0
MAPS_LINE = re.compile(r"^\S+ ..(.). \S+ ([0-9a-f]+):([0-9a-f]+) (\d+)\s+(/.*)$")


@dataclass(frozen=True)
class Probe:
    address: int  # the instruction's virtual address in the object (bcc's attach_uprobe addr)
    fn: str  # the program of bpf/red.c it runs
    symbol: str  # the function it is in, for messages
    uretprobe: bool = False  # at the function's return through the return address (C only)


@dataclass(frozen=True)
class Target:
    """An object whose TLS code can be probed (probes), or whose TLS can be seen and cannot be
    probed (no probes, and why: reason)."""

    path: str
    library: str  # "openssl" or "go"
    probes: tuple[Probe, ...] = ()
    reason: str = ""


ObjectId = tuple[int, int, int]  # (device major, device minor, inode): a file, whatever its path


def mapped_objects(pid: int) -> dict[ObjectId, str]:
    """The files a process maps as code (executable and libraries), by identity, each with a path that
    opens it from here: through /proc/PID/root for a process in another mount namespace, so a
    container's files are its own. Raises
    OSError when the maps cannot be read (the process is gone, or is another user's)."""
    out: dict[ObjectId, str] = {}
    # A process in our own mount namespace: its files by their own paths, which stay valid
    # (for the attach a tick later) when the process has exited meanwhile
    root = "" if os.stat(f"/proc/{pid}/root") == os.stat("/") else f"/proc/{pid}/root"
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            m = MAPS_LINE.match(line.rstrip("\n"))
            # code only: data files (databases, fonts) mapped by a server hold no TLS to probe
            if not m or m.group(1) != "x" or m.group(4) == "0" or m.group(5).endswith(" (deleted)"):
                continue
            ident = (int(m.group(2), 16), int(m.group(3), 16), int(m.group(4)))
            out.setdefault(ident, f"{root}{m.group(5)}")
    return out


def object_id(path: str) -> ObjectId:
    """A file's identity as /proc/PID/maps writes it."""
    st = os.stat(path)
    return (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)


def inspect(path: str) -> Target | None:
    """The TLS code in one ELF object, or None when it holds none obs-tui knows (most
    objects). Raises OSError or ValueError for an object that cannot be read or parsed."""
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
        f.seek(0)
        try:
            elf = ELFFile(f)
        except ELFError as exc:
            raise ValueError(f"{path}: not a readable ELF object ({exc})") from None
        if elf["e_machine"] != "EM_X86_64":
            return None
        found = _symbols(elf, ".dynsym", (*OPENSSL_ENTRY,))
        if all(name in found for name in OPENSSL_NEEDED):
            return _openssl_target(path, found)
        if elf.get_section_by_name(".go.buildinfo") is not None:
            return _go_target(path, elf)
    return None


def _openssl_target(path: str, found: dict[str, tuple[int, int]]) -> Target:
    # The request side last: a request read before its response could be seen would be lost.
    order = ("SSL_free", "SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex")
    probes = []
    for name in order:
        if name not in found:
            continue
        address = found[name][0]
        if name in OPENSSL_RETURN:
            probes.append(Probe(address, OPENSSL_RETURN[name], name, uretprobe=True))
        probes.append(Probe(address, OPENSSL_ENTRY[name], name))
    return Target(path, "openssl", tuple(probes))


def _go_target(path: str, elf: ELFFile) -> Target | None:
    version = go_version(elf)
    found = _symbols(elf, ".symtab", (GO_READ, GO_WRITE, GO_CLOSE))
    if not found:
        pclntab = elf.get_section_by_name(".gopclntab")
        if pclntab is not None and GO_READ.encode() in pclntab.data():
            return Target(
                path,
                "go",
                reason=f"Go binary without a symbol table (built with -ldflags=-s): "
                f"{GO_READ} cannot be located, so its TLS is not decrypted",
            )
        return None
    if GO_READ not in found or GO_WRITE not in found:
        return None
    if version is not None and version < GO_REGISTER_ABI:
        return Target(
            path,
            "go",
            reason=f"Go {'.'.join(map(str, version))} passes arguments on the stack: "
            f"only Go 1.17+ crypto/tls is decrypted",
        )
    write_returns, read_returns = _returns(elf, *found[GO_WRITE]), _returns(elf, *found[GO_READ])
    if not write_returns or not read_returns:
        return Target(path, "go", reason=f"no return instruction found in {GO_READ} or {GO_WRITE}")
    # Write and Close first, the request side (Read's entry) last; returns before entries.
    probes = [Probe(a, "go_tls_write_return", GO_WRITE) for a in write_returns]
    probes.append(Probe(found[GO_WRITE][0], "go_tls_write_enter", GO_WRITE))
    if GO_CLOSE in found:
        probes.append(Probe(found[GO_CLOSE][0], "go_tls_close_enter", GO_CLOSE))
    probes += [Probe(a, "go_tls_read_return", GO_READ) for a in read_returns]
    probes.append(Probe(found[GO_READ][0], "go_tls_read_enter", GO_READ))
    return Target(path, "go", tuple(probes))


def _symbols(elf: ELFFile, section: str, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """name -> (value, size) of the defined functions of that name in a symbol table section."""
    table = elf.get_section_by_name(section)
    if table is None or table["sh_entsize"] != ELF_SYM.size:
        return {}
    strings = elf.get_section(table["sh_link"]).data()
    # The string table offsets that spell each name (a name may also end a longer string).
    wanted: dict[int, str] = {}
    for name in names:
        needle = name.encode() + b"\0"
        at = strings.find(needle)
        while at >= 0:
            wanted[at] = name
            at = strings.find(needle, at + 1)
    out: dict[str, tuple[int, int]] = {}
    for st_name, info, _other, shndx, value, size in ELF_SYM.iter_unpack(table.data()):
        found = wanted.get(st_name)
        if found is not None and info & 0xF == STT_FUNC and shndx != SHN_UNDEF and found not in out:
            out[found] = (value, size)
    return out


def _code(elf: ELFFile, address: int, size: int) -> bytes:
    for segment in elf.iter_segments():
        if segment["p_type"] != "PT_LOAD":
            continue
        start = segment["p_vaddr"]
        if start <= address and address + size <= start + segment["p_filesz"]:
            stream = elf.stream
            stream.seek(segment["p_offset"] + address - start)
            return stream.read(size)
    raise ValueError(f"address {address:#x} is in no loaded segment")


def _returns(elf: ELFFile, address: int, size: int) -> list[int]:
    """The address of every return instruction of the function at address."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs

    disassembler = Cs(CS_ARCH_X86, CS_MODE_64)
    code = _code(elf, address, size)
    out = []
    end = address
    for insn_address, insn_size, mnemonic, _ in disassembler.disasm_lite(code, address):
        if mnemonic in RET:
            out.append(insn_address)
        end = insn_address + insn_size
    if end != address + size:
        # Capstone stopped on bytes it could not decode: a RET past them would be missed, and
        # a Read whose return is not probed would leave requests with no response
        raise ValueError(f"cannot disassemble the whole function at {address:#x}")
    return out


def go_version(elf: ELFFile) -> tuple[int, int] | None:
    """(major, minor) of the Go toolchain that built the binary, from its build information
    (section .go.buildinfo), or None when it cannot be read."""
    section = elf.get_section_by_name(".go.buildinfo")
    if section is None:
        return None
    data = section.data()
    if not data.startswith(GO_BUILDINFO_MAGIC) or len(data) < 32:
        return None
    ptr_size, flags = data[14], data[15]
    if flags & 2:  # Go 1.18+: the version string follows the header, length-prefixed (varint)
        length, at = _uvarint(data, 32)
        text = data[at : at + length]
    else:  # Go 1.17 and older: a pointer to a Go string header (pointer, length)
        fmt = "<Q" if ptr_size == 8 else "<I"
        (header,) = struct.unpack_from(fmt, data, 16)
        pointer, length = struct.unpack(fmt[0] + fmt[1] * 2, _code(elf, header, 2 * ptr_size))
        text = _code(elf, pointer, length)
    m = re.match(rb"go(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data):
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return value, at


def describe(path: str) -> str:
    """The object's file name, for messages (its /proc/PID/root prefix dropped)."""
    m = re.match(r"/proc/\d+/root(/.*)", path)
    return m.group(1) if m else str(Path(path))
