"""Remote process of the rpmsg benchmarks: "bench-echo" echoes, "bench-count" counts and reports on b"report".

    python benchmarks/rpmsg_remote.py NAME WAIT_MODE SERVICE [KIND] [NUM:RX:TX]

KIND: python, python-many, python-recv-many, python-recv-many-into, python-zero-copy or c.

``python``: rproc's Python remote (an endpoint for SERVICE, receiving with ``recvfrom``); ``python-many``: the
same receiving with ``recvfrom_many`` (up to 64 a call; "bench-count" only); ``python-recv-many``: with
``recv_many`` (no sources: the first message's, from ``recvfrom``, is where the report goes; "bench-count" only).
Each message is looked at in Python in these kinds. ``python-recv-many-into``: with ``recv_many_into`` into one
buffer of 64 slots, as a stream consumer of recvmmsg does it: each batch is looked at as a block (its count, and
its last message, where the host's b"report" comes: the host sends it last and waits for the answer).
``python-zero-copy``: a zero-copy endpoint, each message lent with ``recv_message``, looked at in place and
released ("bench-count"; "bench-echo" sends it back from its buffer, then releases it).
``c``: the firmware's C rpmsg remote library (benchmarks/c/rpmsg_echo_remote.c, all services) on the same shm link,
the host's eventfd doorbell required; its WAIT_MODE ``read`` sleeps in read() on the kick only (it then needs
SIGTERM to end).
"bench-touch" reads every byte of each message and answers b"report" with "COUNT SUM". "bench-source" (Python
kinds): asked b"go N MODE", sends N messages of 496 bytes to the asker (MODE send, send_many or zero-copy), then
b"end". The last argument: the
host's :class:`Profile` (vring size, buffers per direction = NUM, bytes per receive / send buffer), see
:func:`parse_profile`; default ``Profile()``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rpmsg import Endpoint, EndpointClosed, PeerLost  # noqa: E402
from rpmsg.profiles import Profile  # noqa: E402
from rpmsg.wiring import remote_on  # noqa: E402
from transports.doorbell import EventfdSocketDoorbell, SocketDoorbell  # noqa: E402
from transports.shm import ShmLink  # noqa: E402
from transports.url import open_link  # noqa: E402

C_SOURCES = [
    REPO / "benchmarks" / "c" / "rpmsg_echo_remote.c",
    REPO / "firmware" / "lib" / "rpmsg_remote.c",
    REPO / "virtio" / "csrc" / "vring.c",
]
C_LIB = REPO / "build" / "bench" / "librpmsg_echo_remote.so"


def build_c_remote() -> Path:
    """gcc -O2 the C remote into a shared library (rebuilt when a source is newer)."""
    C_LIB.parent.mkdir(parents=True, exist_ok=True)
    if not C_LIB.exists() or any(s.stat().st_mtime > C_LIB.stat().st_mtime for s in C_SOURCES):
        include = [f"-I{REPO / 'firmware' / 'include'}", f"-I{REPO / 'virtio' / 'csrc'}"]
        cmd = ["gcc", "-O2", "-std=gnu11", "-shared", "-fPIC", *include, "-o", str(C_LIB), *map(str, C_SOURCES)]
        subprocess.run(cmd, check=True)
    return C_LIB


def parse_profile(text: str | None) -> Profile:
    """``NUM:RX_SIZE:TX_SIZE`` -> a Profile with NUM-entry vrings, NUM buffers each way of those sizes."""
    if not text:
        return Profile()
    num, rx_size, tx_size = (int(part, 0) for part in text.split(":"))
    return Profile(num=num, rx_count=num, tx_count=num, rx_size=rx_size, tx_size=tx_size)


def send_stream(ep: Endpoint, host: int, count: int, mode: str) -> None:
    """The "bench-source" service: ``count`` messages of 496 bytes to ``host``, then b"end". ``send``: one a call;
    ``send_many``: 64 a call; ``zero-copy``: 64 of the host's buffers kept, send_buffers_reuse, more taken for the
    ones not re-armed, writing nothing (the producer's cost left out on both sides: send_many sends one constant
    list)."""
    payload = bytes(496)
    if mode == "send":
        for _ in range(count):
            ep.sendto(payload, host)
    elif mode == "send_many":
        batch = [payload] * 64
        for _ in range(count // 64):
            ep.send_many(batch, host)
        ep.send_many(batch[: count % 64], host)
    else:
        bufs = ep.get_buffers(min(64, count)) if count else []
        i = 0
        while i < count:
            if len(bufs) > count - i:
                for b in bufs[count - i :]:
                    ep.device.give_back(b)
                del bufs[count - i :]
            i += len(bufs)  # each goes with what it holds, as send_many sends one constant list again
            k = ep.send_buffers_reuse(bufs, 496, host)
            if k < len(bufs):
                del bufs[k:]
                if i < count:
                    bufs += ep.get_buffers(64 - k)
        for b in bufs:
            ep.device.give_back(b)
    ep.sendto(b"end", host)


def run_python(name: str, wait: str, service: str, p: Profile, many: str = "") -> int:
    logging.getLogger("rpmsg").setLevel(logging.ERROR)  # the host's end at the close is expected here
    link = open_link(f"shm://{name}", role="remote")
    device = remote_on(link, p, wait=wait)  # type: ignore[arg-type]
    ep = device.endpoint(f"bench-{service}", zero_copy=many == "python-zero-copy")
    n = total = 0
    try:
        if many == "python-zero-copy" and service == "echo":
            while True:  # the message lent, echoed from its buffer, given back
                msg = ep.recv_message()
                ep.sendto(msg.payload, msg.src)
                msg.release()
        if many == "python-zero-copy":
            while True:
                msg = ep.recv_message()
                if len(msg.payload) == 6 and msg.payload == b"report":  # a view compared byte by byte: size first
                    ep.sendto(str(n).encode(), msg.src)
                    n = 0
                else:
                    n += 1
                msg.release()
        if many == "python-recv-many-into":
            data, host = ep.recvfrom()
            n = int(data != b"report")
            buf, sizes = bytearray(64 * 496), array("I", bytes(4 * 64))
            view = memoryview(buf)
            while True:
                k = ep.recv_many_into(buf, sizes)
                last = (k - 1) * 496
                if sizes[k - 1] == 6 and view[last : last + 6] == b"report":
                    ep.sendto(str(n + k - 1).encode(), host)
                    n = 0
                else:
                    n += k
        if many == "python-recv-many":
            data, host = ep.recvfrom()
            n = int(data != b"report")
            while True:
                for data in ep.recv_many(64):
                    if data == b"report":
                        ep.sendto(str(n).encode(), host)
                        n = 0
                    else:
                        n += 1
        if many:
            while True:
                for data, src in ep.recvfrom_many(64):
                    if data == b"report":
                        ep.sendto(str(n).encode(), src)
                        n = 0
                    else:
                        n += 1
        if service == "source":
            while True:  # b"go N MODE": N messages of 496 bytes to the asker, then b"end"
                data, host = ep.recvfrom()
                _, count, mode = data.split()
                send_stream(ep, host, int(count), mode.decode())
        while True:
            data, src = ep.recvfrom()
            if service == "echo":
                ep.sendto(data, src)
            elif data == b"report":
                ep.sendto((f"{n} {total}" if service == "touch" else str(n)).encode(), src)
                n = total = 0
            else:
                n += 1
                if service == "touch":
                    total += sum(data)
    except (EndpointClosed, PeerLost):
        pass
    device.close()
    link.close()
    return 0


def run_c(name: str, wait: str, p: Profile) -> int:
    from cffi import FFI

    ffi = FFI()
    ffi.cdef(
        "int bench_remote_run(uint8_t *mem, uint64_t size, uint32_t da0, uint32_t da1, uint32_t num, "
        "uint32_t align, int rx_fd, int tx_fd, int sock_fd, int block);"
    )
    lib = ffi.dlopen(str(build_c_remote()))
    link = ShmLink.connect_remote(name, p.base + p.size)
    doorbell = link.doorbell
    if isinstance(doorbell, SocketDoorbell):  # one byte per kick on the socket (OpenAMP's Linux layout)
        rx_fd = tx_fd = sock_fd = doorbell.sock.fileno()
    elif type(doorbell) is EventfdSocketDoorbell:
        rx_fd, tx_fd, sock_fd = doorbell.descriptors()
    else:
        raise SystemExit("the C remote needs the host's eventfd or socket doorbell (shm://...?doorbell=eventfd|socket)")
    view = link.memory.view(p.base, p.size)
    rc = lib.bench_remote_run(
        ffi.from_buffer("uint8_t[]", view, require_writable=True),
        p.size,
        p.rx_layout.desc,
        p.tx_layout.desc,
        p.num,
        p.align,
        rx_fd,
        tx_fd,
        sock_fd,
        {"busy": 0, "read": 2, "spin": 3}.get(wait, 1),
    )
    del view
    link.close()
    if rc:
        print(f"C remote ended with rpmsg error {rc}", file=sys.stderr)
    return 1 if rc else 0


def main() -> int:
    name, wait, service = sys.argv[1:4]
    profile = parse_profile(sys.argv[5] if len(sys.argv) > 5 else None)
    if len(sys.argv) > 4 and sys.argv[4] == "c":
        return run_c(name, wait, profile)
    kinds = ("python-many", "python-recv-many", "python-recv-many-into", "python-zero-copy")
    many = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] in kinds else ""
    if many and service != "count" and (many, service) != ("python-zero-copy", "echo"):
        raise SystemExit(f"{many}: only the count service (python-zero-copy: echo too), not {service!r}")
    return run_python(name, wait, service, profile, many)


if __name__ == "__main__":
    raise SystemExit(main())
