"""uml_rproc's socket, the host side rproc's Python remotes share (uml_py_remote.py, uml_qemu.py; the C remote,
host/uml_remote.c, states the same in C): every message is ``{ u32 type; u32 arg; u64 value; }`` little-endian
(kernel-tree/drivers/remoteproc/uml_rproc.c) of one of the types below; a remote listens on the socket path,
accepts the kernel's one connection and reports each event as a ``uml-remote: ...`` line.
"""

from __future__ import annotations

import socket
import struct

MSG = struct.Struct("<IIQ")  # uml_rproc: { u32 type; u32 arg; u64 value; }
HELLO, START, STOP, KICK, CRASH, STOPPED, PHYS = 1, 2, 3, 4, 5, 6, 7


def say(text: str) -> None:
    print(f"uml-remote: {text}", flush=True)


def accept_kernel(path: str) -> socket.socket:
    """Listen on ``path`` ("listening"), take the kernel's connection ("connected") and stop listening."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    say("listening")
    sock, _ = listener.accept()
    listener.close()
    say("connected")
    return sock
