"""The wake-up stress test's pieces (tests/rpmsg/test_wakeup.py), and its remote process for the two-process run.

Every message is ``STRESS`` (sender, sequence number, 0), the sequence counted per (sender, endpoint); at the end
each sender sends every endpoint one ``(sender, END, total)``. A receiver checks that each sender's messages come
once and in order and that it got all of them.

python -m tests.rpmsg.wakeup_peer NAME WAIT RECEIVERS SENDERS MESSAGES SEED WATCHDOG

connects to the host over /dev/shm/NAME, binds RECEIVERS endpoints (BASE + i), each with a thread blocking in
``recvfrom()``, and the control endpoint CONTROL; prints "ready", waits for "go" on CONTROL, then sends MESSAGES
from SENDERS threads to the host's endpoints BASE + i (the host's RECEIVERS is the same), waits for "bye", and
prints one JSON line: ``{"received": n, "errors": [...]}``; exits 1 when its receivers stalled (no message for
WATCHDOG seconds).
"""

from __future__ import annotations

import json
import random
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

from rpmsg import RpmsgDevice
from rpmsg.core import HostCore
from rpmsg.endpoint import Endpoint

BASE = 0x400  # the receivers' addresses: BASE + i (both sides)
SENDER_BASE = 0x300  # the senders' addresses: SENDER_BASE + i
CONTROL = 0x3FF  # the remote process's control endpoint ("go")
STRESS = struct.Struct("<III")
END = 0xFFFFFFFF


def ring_state(device: RpmsgDevice) -> str:
    """What a stalled receive looks at: the receive ring's indices and suppression as they are in shared memory,
    and who waits how."""
    core = device.core
    queue = core.rx if isinstance(core, HostCore) else core.from_host
    layout, mem = queue.layout, queue.memory
    avail_flags, avail_idx = struct.unpack("<HH", mem.read(layout.avail, 4))
    used_flags, used_idx = struct.unpack("<HH", mem.read(layout.used, 4))
    used_event = struct.unpack("<H", mem.read(layout.avail + 4 + 2 * layout.num, 2))[0]
    avail_event = struct.unpack("<H", mem.read(layout.used + 4 + 8 * layout.num, 2))[0]
    st = queue.state()
    return (
        f"{type(core).__name__} receive ring (vring {queue.index}): avail.flags {avail_flags:#x} avail.idx "
        f"{avail_idx} used.flags {used_flags:#x} used.idx {used_idx} used_event {used_event} avail_event "
        f"{avail_event}; engine: suppressed {st['suppressed']} last_used {st['last_used']} last_avail "
        f"{st['last_avail']}; device: wait {device.wait_mode} kicks_on {device.waiting.kicks_on} doorbell owner "
        f"{device.waiting.owner} condition waiters {len(device._changed._waiters)}"  # type: ignore[attr-defined]
    )


@dataclass
class Tally:
    """What the receivers of one device got."""

    senders: int
    received: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, ep: Endpoint) -> None:
        """Take this endpoint's messages until every sender said it is done; note anything out of place."""
        expect = [0] * self.senders
        done = 0
        try:
            while done < self.senders:
                data, src = ep.recvfrom()
                sender, seq, total = STRESS.unpack(data)
                if src != SENDER_BASE + sender or sender >= self.senders:
                    self._error(f"{ep.addr:#x}: a message from {src:#x} claiming sender {sender}")
                    continue
                if seq == END:
                    done += 1
                    if total != expect[sender]:
                        self._error(f"{ep.addr:#x}: sender {sender} sent {total}, {expect[sender]} came")
                    continue
                if seq != expect[sender]:
                    self._error(f"{ep.addr:#x}: sender {sender}'s message {seq} came when {expect[sender]} was due")
                expect[sender] = seq + 1
                with self.lock:
                    self.received += 1
        except Exception as exc:  # noted, not lost in the thread
            self._error(f"{ep.addr:#x}: {type(exc).__name__}: {exc}")

    def _error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def start_receivers(device: RpmsgDevice, receivers: int, senders: int) -> tuple[Tally, list[threading.Thread]]:
    tally = Tally(senders)
    threads = []
    for i in range(receivers):
        ep = device.endpoint(addr=BASE + i)
        t = threading.Thread(target=tally.receive, args=(ep,), name=f"receiver-{i}", daemon=True)
        t.start()
        threads.append(t)
    return tally, threads


def start_senders(
    device: RpmsgDevice, receivers: int, senders: int, messages: int, seed: int, errors: list[str]
) -> list[threading.Thread]:
    """``senders`` threads sending ``messages`` in all, each to random endpoints, then their end markers (what
    goes wrong is added to ``errors``)."""

    def send(i: int, count: int) -> None:
        try:
            ep = device.endpoint(addr=SENDER_BASE + i)
            rng = random.Random(seed * 1000 + i)
            seqs = [0] * receivers
            for _ in range(count):
                k = rng.randrange(receivers)
                ep.sendto(STRESS.pack(i, seqs[k], 0), BASE + k)
                seqs[k] += 1
            for k in range(receivers):
                ep.sendto(STRESS.pack(i, END, seqs[k]), BASE + k)
        except Exception as exc:  # noted, not lost in the thread
            errors.append(f"sender {i}: {type(exc).__name__}: {exc}")

    threads = []
    for i in range(senders):
        count = messages // senders + (i < messages % senders)
        t = threading.Thread(target=send, args=(i, count), name=f"sender-{i}", daemon=True)
        t.start()
        threads.append(t)
    return threads


def watch(tally: Tally, threads: list[threading.Thread], watchdog: float) -> bool:
    """Wait for the threads; False when none of them got a message for ``watchdog`` seconds (a stall)."""
    last, since = -1, time.monotonic()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.05)
            if t.is_alive():
                break
        with tally.lock:
            now_received = tally.received
        if now_received != last:
            last, since = now_received, time.monotonic()
        elif time.monotonic() - since > watchdog:
            return False
    return True


def main() -> int:
    from rpmsg.wiring import remote_on
    from transports.url import open_link

    name, wait, receivers, senders, messages, seed, watchdog = sys.argv[1:8]
    link = open_link(f"shm://{name}", role="remote")
    device = remote_on(link, wait=wait)  # type: ignore[arg-type]
    try:
        control = device.endpoint(addr=CONTROL)
        tally, threads = start_receivers(device, int(receivers), int(senders))
        print("ready", flush=True)
        if control.recv() != b"go":
            raise SystemExit("no go")
        send_errors: list[str] = []
        threads += start_senders(device, int(receivers), int(senders), int(messages), int(seed), send_errors)
        ok = watch(tally, threads, float(watchdog))
        report: dict[str, object] = {"received": tally.received, "errors": tally.errors + send_errors}
        if not ok:
            report["stalled"] = ring_state(device)
        else:
            control.settimeout(float(watchdog))
            control.recv()  # "bye": the host took in all we sent (closing first would end the link under it)
        print(json.dumps(report), flush=True)
        return 0 if ok else 1
    finally:
        device.close()
        link.close()


if __name__ == "__main__":
    raise SystemExit(main())
