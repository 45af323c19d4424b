"""The random zero-copy send sequences both roles' differential tests run (test_zero_copy_batches.py for the host,
test_remote_zero_copy.py for the remote): one driver, so the two roles meet the same steps."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from rpmsg import Endpoint, Profile, RpmsgDevice, loopback_pair
from tests.rpmsg.test_batch_zero_copy import _connect
from tests.rpmsg.test_batch_zero_copy import _drain as drain

Step = tuple[str, int, float, list[int]]


def random_steps(seed: int, count: int, kinds: list[str]) -> list[Step]:
    """``count`` steps drawn from ``kinds`` (a kind twice: twice as likely), each with its numbers."""
    rng = random.Random(seed)
    return [
        (rng.choice(kinds), rng.randrange(1, 20), rng.random(), [rng.randrange(0, 40) for _ in range(8)])
        for _ in range(count)
    ]


def stream(sender: Endpoint, device: RpmsgDevice, receiver: Endpoint, count: int = 2000) -> None:
    """A producer keeping its list of 6 buffers: write, send_buffers_reuse, take more when some were not re-armed;
    ``count`` messages of 0..496 bytes arrive intact (the receiver drained after each batch)."""
    bufs = sender.get_buffers(6)
    sent: list[bytes] = []
    got: list[bytes] = []
    i = 0
    while i < count:
        lengths = []
        for b in bufs:
            n = (i * 13) % 497
            b[:n] = bytes([i & 0xFF]) * n
            sent.append(bytes([i & 0xFF]) * n)
            lengths.append(n)
            i += 1
        k = sender.send_buffers_reuse(bufs, lengths)
        got += drain(receiver)
        if k < len(bufs):
            del bufs[k:]
            bufs += sender.get_buffers(6 - k)
    got += drain(receiver)
    assert got == sent
    for b in bufs:
        device.core.give_back(b)  # type: ignore[union-attr]


def run_steps(steps: list[Step], sender: Endpoint, device: RpmsgDevice, receiver: Endpoint) -> list[object]:
    """Run ``steps`` (non-blocking endpoints), ``sender`` on ``device``: what each returned or raised (type and
    text), and the device's buffer state after each. The kinds: ``get`` get_buffers(k), ``one`` get_buffer,
    ``write`` into a held buffer, ``send`` / ``reuse`` send_buffers(_reuse) of a random subset (duplicates, lengths
    too long or of the wrong count among them), ``single`` send_buffer_reuse of one (k * 31 bytes: past 496 from
    k = 17), ``recv`` the receiver's drain, ``give`` a held buffer back to the core, ``copy`` send_many."""
    held: list[Any] = []
    log: list[object] = []
    for op, k, x, picks in steps:
        try:
            if op == "get":
                new = sender.get_buffers(k)
                held += new
                log.append([(b.capacity, b.slot) for b in new])
            elif op == "one":
                b = sender.get_buffer()
                held.append(b)
                log.append(b.slot)
            elif op == "write" and held:
                b = held[picks[0] % len(held)]
                b[: k * 7] = bytes([k]) * (k * 7)
                log.append(b.done)
            elif op in ("send", "reuse") and held:
                batch = [held[p % len(held)] for p in picks[: 1 + k % 8]]
                if x < 0.7:  # mostly well-formed: distinct buffers
                    batch = list(dict.fromkeys(batch))
                lengths: Any = (k * 37) % 498 if x < 0.4 else [(p * 13 + k) % (520 if x > 0.9 else 497) for p in picks]
                if isinstance(lengths, list) and x < 0.85:
                    lengths = lengths[: len(batch)]
                if op == "send":
                    log.append(sender.send_buffers(batch, lengths))
                else:
                    log.append(sender.send_buffers_reuse(batch, lengths))
                held = [b for b in held if not b.done]
            elif op == "single" and held:
                b = held.pop(picks[0] % len(held))
                log.append(sender.send_buffer_reuse(b, k * 31))
                if not b.done:
                    held.append(b)
            elif op == "recv":
                log.append(drain(receiver))
            elif op == "give" and held:
                device.core.give_back(held.pop(picks[0] % len(held)))  # type: ignore[union-attr]
            elif op == "copy":
                log.append(sender.send_many([bytes([k]) * k] * (1 + k % 3)))
        except Exception as exc:
            log.append(f"{type(exc).__name__}: {exc}")
        log.append(device.state()["buffers"])
    log.append(drain(receiver))
    return log


def kinds_of(log: list[object]) -> Counter[str]:
    """What the steps gave: exception names, and the types of the rest."""
    return Counter(x.split(":")[0] if isinstance(x, str) else type(x).__name__ for x in log)


def logs_in_three_worlds(
    monkeypatch: pytest.MonkeyPatch, profile: Profile, steps: list[Step], role: str
) -> list[list[object]]:
    """:func:`run_steps` with ``role``'s endpoint sending to its peer, in three worlds: the C methods, the C path
    from Python (socket doorbells: the gate shut), the Python path: their logs."""
    worlds = []
    for c, eventfd in ((True, True), (True, False), (False, True)):
        with monkeypatch.context() as env:
            env.setenv("RPROC_RPMSG_FASTPATH", "1" if c else "0")
            worlds.append(loopback_pair(profile, eventfd=eventfd))
    try:
        logs = []
        for host, remote in worlds:
            sending = host if role == "host" else remote
            assert (sending._gate.open, sending._fast is not None) == [(True, True), (False, True), (False, False)][
                len(logs)
            ]
            h, r = _connect(host, remote)
            r.connect(h.addr)
            sender, receiver = (h, r) if role == "host" else (r, h)
            logs.append(run_steps(steps, sender, sending, receiver))
        return logs
    finally:
        for host, remote in worlds:
            remote.close()
            host.close()
