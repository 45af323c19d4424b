"""The firmware's C serial link (firmware/lib/serial_link.c) against its Python twin (transports/serial_link.py):
the same COBS and CRC vectors, and the two link cores talking to each other over a simulated noisy line — every
message delivered once, in order, intact, both ways."""

from __future__ import annotations

import functools
import random
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from cffi import FFI

from tests.firmware.remote_lib import compile_and_load
from tests.transports.test_serial_link import (
    COBS_VECTORS,
    FRAME_BODY,
    FRAME_BOUND,
    Line,
    old_hello_after_restart,
    py_side,
    replay_after_restart,
)
from transports.serial_frames import encode_frame
from transports.serial_link import BOUND, HEADER, T_DATA, LinkCore, Message

REPO = Path(__file__).resolve().parents[2]
NAME = "_rproc_serial_link_c"
CDEF = """
struct sl_link { uint32_t bad_frames; uint32_t retransmissions; uint32_t unbound; uint8_t up; uint8_t in_flight;
                 uint32_t nonce; uint32_t peer_nonce; uint32_t expected; ...; };
uint32_t sl_crc32(const uint8_t *data, size_t len);
size_t sl_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
int sl_cobs_decode(const uint8_t *in, size_t len, uint8_t *out);
typedef void (*sl_write_fn)(void *ctx, const uint8_t *data, size_t len);
typedef void (*sl_deliver_fn)(void *ctx, const uint8_t *data, size_t len);
typedef void (*sl_event_fn)(void *ctx, int event, uint32_t value);
void sl_init(struct sl_link *l, uint32_t seed, uint8_t window, uint16_t max_payload, uint32_t rto_ms,
             sl_write_fn write, sl_deliver_fn deliver, sl_event_fn event, void *ctx);
void sl_stir(struct sl_link *l, uint32_t entropy);
void sl_start(struct sl_link *l, uint32_t now_ms);
int sl_send(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms);
void sl_receive(struct sl_link *l, const uint8_t *data, size_t len, uint32_t now_ms);
void sl_poll(struct sl_link *l, uint32_t now_ms);
int sl_quiet(const struct sl_link *l);
extern "Python" void py_write(void *, const uint8_t *, size_t);
extern "Python" void py_deliver(void *, const uint8_t *, size_t);
extern "Python" void py_event(void *, int, uint32_t);
"""
SL_ERR_FULL = -31
SL_EV_CONNECTED, SL_EV_PEER_RESET = 1, 2


@functools.cache
def lib() -> Any:
    pytest.importorskip("cffi")
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        NAME,
        '#include "rproc/serial_link.h"',
        sources=[str(REPO / "firmware/lib/serial_link.c")],
        include_dirs=[str(REPO / "firmware/include")],
        extra_compile_args=["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror"],
    )
    return compile_and_load(ffi, NAME)


class CLink:
    """One C link with Python callbacks: what it writes goes to ``line``, what it delivers to ``got``."""

    def __init__(self, seed: int, line: Line | None, window: int = 8, rto_ms: int = 20) -> None:
        m = lib()
        self.ffi, self.lib = m.ffi, m.lib
        self.line = line
        self.got: list[bytes] = []
        self.out = bytearray()  # what it wrote, when it has no line
        self.events: list[tuple[int, int]] = []
        self.now = 0
        self.link = self.ffi.new("struct sl_link *")
        self.handle = self.ffi.new_handle(self)  # kept alive by this object

        @self.ffi.def_extern()  # type: ignore[misc]
        def py_write(ctx: Any, data: Any, n: int) -> None:
            me = self.ffi.from_handle(ctx)
            if me.line is None:
                me.out += self.ffi.buffer(data, n)
            else:
                me.line.write(bytes(self.ffi.buffer(data, n)), me.now / 1000)

        @self.ffi.def_extern()  # type: ignore[misc]
        def py_deliver(ctx: Any, data: Any, n: int) -> None:
            self.ffi.from_handle(ctx).got.append(bytes(self.ffi.buffer(data, n)))

        @self.ffi.def_extern()  # type: ignore[misc]
        def py_event(ctx: Any, event: int, value: int) -> None:
            self.ffi.from_handle(ctx).events.append((event, value))

        self.lib.sl_init(self.link, seed, window, 256, rto_ms, self.lib.py_write, self.lib.py_deliver,
                         self.lib.py_event, self.handle)  # fmt: skip


@pytest.mark.parametrize(("data", "encoded"), COBS_VECTORS)
def test_c_cobs_matches_the_vectors(data: bytes, encoded: bytes) -> None:
    m = lib()
    out = m.ffi.new("uint8_t[]", len(data) + len(data) // 254 + 2)
    n = m.lib.sl_cobs_encode(data, len(data), out)
    assert bytes(m.ffi.buffer(out, n)) == encoded
    back = m.ffi.new("uint8_t[]", max(len(data), 1))
    assert m.lib.sl_cobs_decode(encoded, len(encoded), back) == len(data)
    assert bytes(m.ffi.buffer(back, len(data))) == data


def test_c_crc_matches_zlib() -> None:
    rng = random.Random(2)
    for size in (0, 1, 2, 3, 17, 255, 1000):
        data = rng.randbytes(size)
        assert lib().lib.sl_crc32(data, size) == zlib.crc32(data)
    assert encode_frame(b"hi") == b"\x07hi\xac\x2a\x93\xd8\x00"  # the vector docs/uart-link.md gives
    # the session-bound vector: the CRC of the pseudo-header, then the body
    assert lib().lib.sl_crc32(FRAME_BOUND + FRAME_BODY, 23) == 0x450B3BD2


def test_c_drops_a_frame_from_65536_frames_ago() -> None:
    c = CSide(7)
    py = LinkCore(seed=8)
    c.start(0)
    py.start(0.0)
    for ms in range(5):
        py.receive(c.step(py.transmit(ms / 1000), ms), ms / 1000)
    assert c.up and py.up and c.c.link.peer_nonce == py.nonce
    c.c.link.expected = 70_000  # as if 70,000 messages had come
    for seq, payload in ((70_000 - 65_536, b"stale"), (70_000, b"fresh")):
        wire = encode_frame(
            HEADER.pack(T_DATA, seq & 0xFFFF, 0) + payload, BOUND.pack(py.nonce, c.c.link.nonce, seq, 0)
        )
        c.step(wire, 10)
    assert c.delivered == [b"fresh"] and c.c.link.unbound == 1


@pytest.mark.parametrize("noise", [0.0, 0.002, 0.005])
def test_c_link_and_python_link_talk(noise: float) -> None:
    rng = random.Random(int(noise * 1e4) + 1)
    c_to_py = Line(rng, flip=noise, drop=noise, dup=noise / 2, garbage=noise / 2)
    py_to_c = Line(rng, flip=noise, drop=noise, dup=noise / 2, garbage=noise / 2)
    c = CLink(0xC0FFEE, c_to_py)
    py = LinkCore(seed=0xBEEF, rto=0.02)
    to_c = [rng.randbytes(rng.randrange(0, 257)) for _ in range(200)]
    to_py = [rng.randbytes(rng.randrange(0, 257)) for _ in range(200)]
    got_py: list[bytes] = []
    out_c, out_py = list(to_py), list(to_c)
    c.lib.sl_start(c.link, 0)
    py.start(0.0)
    for ms in range(200_000):
        now = ms / 1000
        c.now = ms
        for ev in py.receive(c_to_py.read(now), now):
            if isinstance(ev, Message):
                got_py.append(ev.data)
        while out_py and py.up and py.pending < 16:
            py.send(out_py.pop(0))
        py_to_c.write(py.transmit(now), now)
        data = py_to_c.read(now)
        if data:
            c.lib.sl_receive(c.link, data, len(data), ms)
        c.lib.sl_poll(c.link, ms)
        while out_c and c.link.up and c.lib.sl_send(c.link, out_c[0], len(out_c[0]), ms) == 0:
            out_c.pop(0)
        if len(got_py) == len(to_py) and len(c.got) == len(to_c):
            break
    assert got_py == to_py
    assert c.got == to_c
    assert (SL_EV_CONNECTED, py.nonce) in c.events  # with the Python side's nonce
    if noise:
        assert c.link.bad_frames > 0 and py.bad_frames > 0


def test_quiet_only_when_nothing_waits_on_time() -> None:
    """sl_quiet (the firmware sleeps only then, docs/mcu.md "Sleeping"): not while the HELLOs go out, nor while a
    frame waits for its ACK or an ACK is due; quiet once both sides are up and everything is acknowledged."""
    line_c_py, line_py_c = Line(random.Random(1)), Line(random.Random(2))
    c = CLink(0xC0FFEE, line_c_py)
    py = LinkCore(seed=0xBEEF, rto=0.02)
    c.lib.sl_start(c.link, 0)
    py.start(0.0)
    assert c.lib.sl_quiet(c.link) == 0  # a HELLO is due again after the timeout

    def run(ms0: int, ms1: int) -> None:
        for ms in range(ms0, ms1):
            now = ms / 1000
            c.now = ms
            for ev in py.receive(line_c_py.read(now), now):
                if isinstance(ev, Message):
                    py_got.append(ev.data)
            line_py_c.write(py.transmit(now), now)
            data = line_py_c.read(now)
            if data:
                c.lib.sl_receive(c.link, data, len(data), ms)
            c.lib.sl_poll(c.link, ms)

    py_got: list[bytes] = []
    run(0, 200)
    assert c.link.up and py.up
    assert c.lib.sl_quiet(c.link) == 1
    assert c.lib.sl_send(c.link, b"ping", 4, 200) == 0
    assert c.lib.sl_quiet(c.link) == 0  # in flight: a retransmission may be due
    run(200, 400)
    assert py_got == [b"ping"] and c.link.in_flight == 0
    assert c.lib.sl_quiet(c.link) == 1
    py.send(b"pong")
    run(400, 600)
    assert c.got == [b"pong"]
    assert c.lib.sl_quiet(c.link) == 1  # received and acknowledged


class CSide:
    """The C link with the face of tests.transports.test_serial_link.PySide: the replay scenarios drive either."""

    def __init__(self, seed: int) -> None:
        self.c = CLink(seed, None)
        self.sent = 0

    def start(self, ms: int) -> None:
        self.c.now = ms
        self.c.lib.sl_start(self.c.link, ms)

    def step(self, incoming: bytes, ms: int) -> bytes:
        self.c.now = ms
        if incoming:
            self.c.lib.sl_receive(self.c.link, incoming, len(incoming), ms)
        self.c.lib.sl_poll(self.c.link, ms)
        out = bytes(self.c.out)
        self.c.out.clear()
        return out

    def try_send(self, data: bytes, ms: int) -> bool:
        if not self.c.link.up or self.c.lib.sl_send(self.c.link, data, len(data), ms) != 0:
            return False
        self.sent += 1
        return True

    @property
    def delivered(self) -> list[bytes]:
        return self.c.got

    @property
    def up(self) -> bool:
        return bool(self.c.link.up)

    @property
    def acknowledged(self) -> int:
        lost = sum(v for e, v in self.c.events if e == SL_EV_PEER_RESET)
        return self.sent - self.c.link.in_flight - lost

    @property
    def resets(self) -> int:
        return sum(e == SL_EV_PEER_RESET for e, _ in self.c.events)


@pytest.mark.parametrize("c_role", ["restarts", "stays"])
@pytest.mark.parametrize("seed", [1, 2])
def test_replayed_frames_c_and_python(c_role: str, seed: int) -> None:
    """The replaying line of the Python tests between the C link and the Python one, the C side the one that
    restarts or the one that stays: no stale duplicate, no acknowledged message lost, one reset."""
    if c_role == "restarts":
        replay_after_restart(py_side, CSide, seed, replay=0.2, count=300)
    else:
        replay_after_restart(CSide, py_side, seed, replay=0.2, count=300)


@pytest.mark.parametrize("c_role", ["restarts", "stays"])
def test_a_replayed_hello_cannot_restart_the_c_link(c_role: str) -> None:
    if c_role == "restarts":
        old_hello_after_restart(py_side, CSide, 4)
    else:
        old_hello_after_restart(CSide, py_side, 4)


def test_replayed_frames_c_and_c() -> None:
    replay_after_restart(CSide, CSide, 5, replay=0.2, count=300)


@pytest.mark.toolchain
def test_builds_freestanding_for_the_cortex_m33(tmp_path: Path) -> None:
    obj = tmp_path / "serial_link.o"
    cflags = ["-mcpu=cortex-m33", "-mthumb", "-Os", "-std=c11", "-ffreestanding", "-Wall", "-Wextra", "-Werror"]
    subprocess.run(
        ["arm-none-eabi-gcc", *cflags, f"-I{REPO / 'firmware/include'}", "-c", str(REPO / "firmware/lib/serial_link.c"),
         "-o", str(obj)],
        check=True,
    )  # fmt: skip
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True)
    assert undefined.stdout.split() == []  # no libc, nothing to link but the library itself
