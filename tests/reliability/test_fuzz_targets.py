"""More fuzz targets: ELF files mutated and loaded against a memory map, and rpmsg receive paths fed garbage.
Invariant: only the package's own error, nothing written outside the declared memory."""

from __future__ import annotations

import contextlib
import os
import random
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remoteproc.elf import read_elf
from remoteproc.errors import FirmwareError
from remoteproc.loader import load_segments
from rpmsg import Profile, RemoteProtocolError, loopback_pair
from transports.memory import MappedRegion, RegionMemory

EXAMPLES = int(os.environ.get("RPROC_FUZZ_EXAMPLES", "600"))
GUARD = b"\xa5" * 256


def guarded(name: str, da: int, size: int) -> tuple[MappedRegion, bytearray]:
    backing = bytearray(GUARD + bytes(size) + GUARD)
    return MappedRegion(name, da, size, backing, offset=len(GUARD)), backing


def test_mutated_elfs_load_or_fail_cleanly(example_firmware: Path, tmp_path: Path) -> None:
    rng = random.Random(4242)
    original = example_firmware.read_bytes()
    path = tmp_path / "mutant.elf"
    for _ in range(EXAMPLES // 2):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            # mostly the headers (ELF header, program headers): that is where a loader can be fooled
            pos = rng.randrange(0, 0x200) if rng.random() < 0.8 else rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        path.write_bytes(bytes(data))
        regions = [
            guarded("ssram-0", 0x10000000, 0x1000),
            guarded("ssram-1", 0x38000000, 0x1000),
            guarded("mps.ram", 0x80000000, 0x4000),
        ]
        memory = RegionMemory([r for r, _ in regions])
        with contextlib.suppress(FirmwareError):
            load_segments(path, read_elf(path), memory)
        memory.release()
        for _, backing in regions:
            assert backing[: len(GUARD)] == GUARD and backing[-len(GUARD) :] == GUARD


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=600), st.integers(0, 0xFFFFFFFF)), min_size=1, max_size=6))
def test_rpmsg_receive_paths_take_any_bytes(messages: list[tuple[bytes, int]]) -> None:
    """The remote writes arbitrary bytes (and arbitrary used lengths) into host buffers; the host drops what is
    malformed, keeps its buffers, and goes on working."""
    host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=8))
    try:
        core = remote.core
        for raw, used_len in messages:
            chain = core.to_host.pop()  # type: ignore[union-attr]
            if chain is None:
                break
            buf = chain.descs[0]
            core.memory.write(buf.addr, raw[: buf.len])
            core.to_host.push(chain.head, used_len % (buf.len + 1))  # type: ignore[union-attr]
            core.to_host.publish()  # type: ignore[union-attr]
            try:
                host.process()
            except RemoteProtocolError:
                raise AssertionError("a malformed message must be dropped, not break the device") from None
        svc = remote.endpoint("after")
        ep = host.open("after", timeout=1)
        ep.settimeout(1)
        svc.sendto(b"still fine", ep.addr)
        assert ep.recv() == b"still fine"
    finally:
        host.close()
        remote.close()


def test_rpmsg_header_lengths_at_the_edges() -> None:
    host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=8))
    try:
        ep = host.endpoint("x")
        core = remote.core
        for length, used in ((496, 512), (497, 512), (0xFFFF, 512), (0, 16), (1, 16), (0, 15)):
            chain = core.to_host.pop()  # type: ignore[union-attr]
            assert chain is not None
            core.memory.write(chain.descs[0].addr, struct.pack("<IIIHH", 5, ep.addr, 0, length, 0))
            core.to_host.push(chain.head, used)  # type: ignore[union-attr]
            core.to_host.publish()  # type: ignore[union-attr]
            host.process()
        assert host.core.dropped == 4  # 497 and 65535 past the buffer, 1 past a 16-byte message, 15 < header
        ep.settimeout(0)
        assert [len(ep.recv()) for _ in range(2)] == [496, 0]
    finally:
        host.close()
        remote.close()
