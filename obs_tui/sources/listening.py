"""Which processes listen on which TCP ports (what `ss -ltnp` shows), for naming services.

The listening sockets come from the kernel's sock_diag netlink interface with a LISTEN state
filter: the kernel returns only those few sockets. /proc/net/tcp lists every socket on the
host, TIME_WAIT included, and costs far more to read and parse under load than the netlink
dump. /proc/net/tcp remains the fallback for kernels built
without CONFIG_INET_DIAG. Neither needs privileges; mapping a socket to its process needs
/proc/PID/fd, which is the owner's (or root's) to read.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
# inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid (48 bytes)
DIAG_REQ = struct.Struct("=BBBBI48x")
# inet_diag_msg: family, state, timer, retrans, sockid (sport big-endian first), expires,
# rqueue, wqueue, uid, inode
DIAG_MSG = struct.Struct("=BBBB2s46xIIIII")


def listening_inodes() -> dict[int, int]:
    """socket inode -> port, for TCP sockets in LISTEN, IPv4 and IPv6."""
    try:
        return _from_netlink()
    except OSError:
        return _from_proc()


def _from_netlink() -> dict[int, int]:
    out: dict[int, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG) as sock:
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
            body = DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
            sock.send(
                NLMSG_HDR.pack(
                    NLMSG_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
                )
                + body
            )
            while not _read_reply(sock, out):
                pass
    return out


def _read_reply(sock: socket.socket, out: dict[int, int]) -> bool:
    """Add one datagram's sockets to `out`; True once the dump is done."""
    data = sock.recv(65536)
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, kind, _, _, _ = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            raise OSError("sock_diag: malformed netlink message")
        if kind == NLMSG_DONE:
            return True
        if kind == NLMSG_ERROR:
            code = -struct.unpack_from("=i", data, offset + NLMSG_HDR.size)[0]
            raise OSError(code, f"sock_diag: {os.strerror(code)}")
        if kind == SOCK_DIAG_BY_FAMILY and length >= NLMSG_HDR.size + DIAG_MSG.size:
            _, state, _, _, sport, _, _, _, _, inode = DIAG_MSG.unpack_from(data, offset + NLMSG_HDR.size)
            if state == TCP_LISTEN:
                out[inode] = int.from_bytes(sport, "big")
        offset += (length + 3) & ~3
    return False


def _from_proc() -> dict[int, int]:
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # 0A: LISTEN
                try:
                    out[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
                except ValueError:
                    continue
    return out


def ports_of(pid: int, listening: dict[int, int]) -> tuple[int, ...]:
    """The ports among `listening` that the process holds a descriptor for."""
    ports = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return ()
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            port = listening.get(int(target[8:-1]))
            if port is not None:
                ports.add(port)
    return tuple(sorted(ports))


def listening_pids() -> dict[int, tuple[int, ...]]:
    """Every process holding a listening TCP socket, with its ports."""
    listening = listening_inodes()
    if not listening:
        return {}
    found = ((int(name), ports_of(int(name), listening)) for name in os.listdir("/proc") if name.isdigit())
    return {pid: ports for pid, ports in found if ports}
