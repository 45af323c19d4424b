"""rpmsg's compiled modules, loaded in one place: rpmsg._fastpath_cffi (rpmsg/csrc/fastpath.c, the per-message C
path) and rpmsg._endpoint_c (rpmsg/csrc/endpoint*.c, the endpoints' C methods), with what they share with Python:
the C path's return codes (from the compiled module), the layout check against the virtio engine's build, and
what the endpoints' C methods use of the device (:class:`GateDevice`; :class:`PyGate` when they are not built).

The core takes TxBuffer's base class from rpmsg._endpoint_c and the device its Gate and EndpointBase, so both must
come from the same module object (a type from another load is another type): hence one loader.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol

from virtio import cring
from virtio.cring import load_extension


@functools.cache
def endpoint_module() -> Any:
    """rpmsg._endpoint_c, or None when it is not built (RPROC_RPMSG_ENDPOINT_MODULE: another build, e.g.
    sanitized)."""
    try:
        return load_extension("rpmsg._endpoint_c", "RPROC_RPMSG_ENDPOINT_MODULE")
    except ImportError:
        return None


def check_layout(fast_lib: Any, engine_lib: Any) -> None:
    """The rpmsg C path works on the virtio module's queues through their address: both must have compiled the
    same struct rp_vq (virtio/csrc/vring_layout.h). A stale or foreign build fails here, by name."""
    ours, theirs = fast_lib.rp_vq_layout(), engine_lib.rp_vq_layout()
    if ours != theirs:
        raise RuntimeError(
            f"rpmsg._fastpath_cffi and virtio._vring_cffi were built with different struct rp_vq layouts "
            f"({ours:#x} != {theirs:#x}): rebuild both (pip install -e . or ./scripts/setup)"
        )


@functools.cache
def fastpath_module() -> Any:
    """The compiled module, or ImportError (RPROC_RPMSG_FASTPATH_MODULE: another build, e.g. sanitized);
    RuntimeError when it does not match the virtio engine's build (check_layout)."""
    mod = load_extension("rpmsg._fastpath_cffi", "RPROC_RPMSG_FASTPATH_MODULE")
    try:
        engine = cring.load()
    except ImportError:
        return mod  # no C engine: no queue this module could be handed
    check_layout(mod.lib, engine.lib)
    return mod


# The C path's return codes and limits, as rpmsg/csrc/fastpath.h defines them: from the compiled module. Without
# it (no C compiler at install: nothing returns them) these values stand in, the only place Python states them;
# tests/test_constants.py holds both to the header.
FALLBACK_CONSTANTS = {
    "RPF_NOTIFY": 0x10000,
    "RPF_MORE": 0x20000,
    "RPF_MSG_MAX": 65551,
    "RPF_GENERAL": -1000,
    "RPF_DEV_MAX": 65535,
    "RPF_TIMEOUT": 0,
    "RPF_READY": 1,
    "RPF_KICKED": 2,
    "RPF_DOORBELL": 3,
    "RPF_WOKEN": 4,
    "RPF_EINTR": 5,
    "RPF_KICK_EVENTFD": 0,
    "RPF_KICK_STREAM": 1,
    "RPF_KICK_DGRAM": 2,
    "RPF_KICK_EPOLL": 3,
    "RPF_KICK_MIRROR": 4,
    "RPF_KICK_SHIFT": 24,
}


def _constants() -> dict[str, int]:
    try:
        lib = fastpath_module().lib
    except ImportError:
        return dict(FALLBACK_CONSTANTS)
    return {name: int(getattr(lib, name)) for name in FALLBACK_CONSTANTS}


_C = _constants()  # also read by rpmsg.fastpath (the kick word)
NOTIFY = _C["RPF_NOTIFY"]  # or-ed into a count: the peer asked to be kicked
MORE = _C["RPF_MORE"]  # or-ed into a remote's count: the general path takes the messages still waiting
GENERAL = _C["RPF_GENERAL"]  # the general path's turn
DEV_MAX = _C["RPF_DEV_MAX"]  # the largest payload the remote's C send copies
TIMEOUT, READY, KICKED = _C["RPF_TIMEOUT"], _C["RPF_READY"], _C["RPF_KICKED"]  # what wait returns
DOORBELL, WOKEN, EINTR = _C["RPF_DOORBELL"], _C["RPF_WOKEN"], _C["RPF_EINTR"]


class GateDevice(Protocol):
    """What the endpoints' C methods use of the device, all of it: the hooks :meth:`_FastPath.attach` hands the
    gate (the thread sleeping on the doorbell is the gate's ``owner``, which Waiter.owning and the C blocking
    receive set around their sleep)."""

    def _kick(self, queue: int) -> None: ...
    def _take_batch(self, n: int) -> None: ...
    def _c_send_failed(self, rc: int) -> None: ...
    def _c_recv_failed(self, rc: int) -> None: ...
    def _take_waiting(self, ep: Any, out: list[tuple[bytes, int]], limit: int, bufsize: int) -> None: ...


class PyGate:
    """What the device keeps for the endpoints' C methods when rpmsg._endpoint_c is not built: the same flags,
    never open (the endpoints then run their Python methods only)."""

    def __init__(self) -> None:
        self.open = False
        self.send_open = False
        self.peek_open = False
        self.block = False
        self.spin_ns = 0  # wait mode spin: how long a receive spins before it sleeps
        self.busy_ns = 0  # wait mode busy: the slices a receive spins in
        self.kicks_on = True  # whether we asked the peer to kick us for new messages
        self.attached = False
        self.remote = False
        self.waiters = 0  # threads waiting on the device's condition (Waiter.wait_changed)
        self.owner: int | None = None  # the ident of the thread sleeping on the doorbell (Waiter.owner)

    def detach(self) -> None:
        pass

    # The Python twins of the C gate's own/disown (rpmsg/csrc/endpoint_wait.c). Being Python, their own starts
    # are points where a signal handler may raise: only the C ones close that window.
    def own(self, lock: Any) -> None:
        self.owner = threading.get_ident()
        lock.release()

    def disown(self, lock: Any, notify_all: Callable[[], object]) -> None:
        raised: BaseException | None = None
        for _ in range(100):  # a lock whose calls keep failing: given up, its first error raised
            try:
                if not lock._is_owned():
                    lock.acquire()
                    continue  # taken: looked at again
                break
            except BaseException as exc:  # a signal handler's, as acquire returned: look again, raise it after
                raised = raised or exc
        self.owner = None
        for _ in range(2 if self.waiters else 0):
            try:
                notify_all()
                break
            except BaseException as exc:
                raised = raised or exc
        if raised is not None:
            raise raised
