"""Wait mode spin's budget adapts in the C receive (rpmsg/csrc/endpoint_wait.c: spin_budget, spin_adapt, after
KVM's halt polling): a peer whose answer comes just after the spin gave up (User-Mode Linux's kernel answers in
~55 us, the spin was 50 us: every round trip paid a sleep and a wake-up, 171 us instead of 75 us) makes it
grow, up to 4x; a pause in the traffic sets it back."""

from __future__ import annotations

import threading
import time

from rpmsg import Profile, loopback_pair
from rpmsg.endpoint import Endpoint

PROFILE = Profile(num=16, rx_count=16, tx_count=16)


def _slow_echo(remote_ep: Endpoint, delay: float) -> None:
    while True:
        data, src = remote_ep.recvfrom()
        # the peer's turnaround, a little longer than the spin (a sleep, so the GIL is free: the host's receive
        # must not find the answer only because it waited for the GIL after its spin)
        time.sleep(delay)
        remote_ep.sendto(data, src)
        if data == b"last":
            return


def test_the_spin_grows_for_a_peer_just_slower_than_it_and_shrinks_after_a_pause(host_path: str) -> None:
    """(The Python path's spin is the fixed SPIN_SECONDS: there spin_cur stays as it was.)"""
    c_path = host_path == "c-path"
    host, remote = loopback_pair(PROFILE, wait="spin", eventfd=True)
    remote.wait_mode = "block"
    try:
        r = remote.endpoint("svc")
        h = host.open("svc", timeout=5)
        gate = host._gate
        base = gate.spin_ns
        assert base > 0 and gate.spin_cur in (0, base)
        echo = threading.Thread(target=_slow_echo, args=(r, base / 1e9))
        echo.start()
        seen = []
        h.settimeout(10)  # a lost answer fails instead of hanging
        for i in range(400):
            h.send(b"%d" % i)
            assert h.recv() == b"%d" % i
            seen.append(gate.spin_cur)
            if max(seen) >= 2 * base and i >= 20:
                break
        h.send(b"last")  # the echo thread's last round
        assert h.recv() == b"last"
        echo.join(10)
        assert not echo.is_alive()
        if not c_path:
            assert set(seen) == {0}
            return
        assert base < max(seen) <= 4 * base, seen[:50]
        # a pause far longer than the largest spin: back to the base
        h.send(b"after a pause")
        time.sleep(0.01)
        r.sendto(r.recv(), h.addr)
        assert h.recv() == b"after a pause"
        h.send(b"x")
        threading.Timer(0.01, lambda: r.sendto(r.recv(), h.addr)).start()
        assert h.recv() == b"x"
        assert gate.spin_cur == base
    finally:
        remote.close()
        host.close()
