"""One remote processor: load firmware, start it, talk to it, stop it, recover it — in Linux's order.

    rp = RemoteProc(SimPlatform(MPS2_AN505))
    rp.load("firmware/build/minimal.elf", progress=print)
    rp.start()
    ep = rp.rpmsg.open("rpmsg-echo", timeout=5)
    ...
    rp.stop()

Boot order (Linux ``rproc_fw_boot`` and ``rproc_start``): parse a cached copy of the table, handle resources
(carveouts, vrings, notify ids), load the segments, copy the negotiated table over the loaded one at the
section's address, start the remote, then drive each vdev (reset, ACKNOWLEDGE, DRIVER, features), set up the
rpmsg host on its vrings with its receive buffers posted, DRIVER_OK, and the first kick of vring 0.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from remoteproc import sessions, spy
from remoteproc.elf import ElfImage, read_bytes
from remoteproc.errors import FirmwareError, RemoteprocError
from remoteproc.firmware import firmware_info
from remoteproc.lifecycle import Lifecycle, State, StateError
from remoteproc.loader import Progress
from remoteproc.platforms.base import Platform
from remoteproc.resources import Pool, Resources, handle_resources
from remoteproc.vdev import VdevControl
from resource_table import Dialect, ResourceTable, ResourceTableError, Severity, Span, Trace, parse_with_spans
from resource_table.findings import place
from rpmsg import HostCore, RpmsgDevice
from rpmsg.protocol import HEADER_SIZE, LINUX_BUFFER_SIZE, LINUX_MAX_BUFFERS
from virtio import VringLayout
from virtio.features import STATUS_ACKNOWLEDGE, VIRTIO_RING_F_EVENT_IDX

log = logging.getLogger(__name__)

VIRTIO_ID_RPMSG = 7
RPMSG_DRIVER_FEATURES = 1 | (1 << VIRTIO_RING_F_EVENT_IDX)  # VIRTIO_RPMSG_F_NS, and event indices if offered


def _buffer_problem(rx_size: object, tx_size: object, buffers: object) -> str | None:
    for name, size in (("rx_size", rx_size), ("tx_size", tx_size)):
        if type(size) is not int or size <= HEADER_SIZE:
            return f"{name} {size!r}: an rpmsg buffer needs more than the {HEADER_SIZE}-byte header (Linux: 512)"
    if type(buffers) is not int or buffers < 2:
        return f"buffers {buffers!r}: an rpmsg vdev needs at least one buffer each way"
    return None


class RemoteProc:
    """``rx_size`` / ``tx_size``: bytes per rpmsg receive / send buffer of the host (Linux's fixed 512 by
    default; up to 64 KiB and more, each direction on its own: a message carries min(size - 16, 65535) bytes,
    docs/rpmsg.md "Buffer sizes"). The firmware learns them from the descriptors. ``buffers``: the most rpmsg
    buffers per vdev, both directions together (Linux's MAX_RPMSG_NUM_BUFS, 512; fewer for small vrings, as
    Linux): fewer make room for bigger ones."""

    def __init__(
        self,
        platform: Platform,
        *,
        dialect: Dialect = Dialect.LINUX,
        rx_size: int = LINUX_BUFFER_SIZE,
        tx_size: int = LINUX_BUFFER_SIZE,
        buffers: int = LINUX_MAX_BUFFERS,
    ) -> None:
        problem = _buffer_problem(rx_size, tx_size, buffers)
        if problem is not None:
            platform.close()  # ours from here on, as close() says: nothing of it is left behind
            raise RemoteprocError(problem)
        self.platform = platform
        self.dialect = dialect
        self.rx_size = rx_size
        self.tx_size = tx_size
        self.buffers = buffers
        self.lifecycle = Lifecycle()
        self.firmware: Path | None = None
        self.image: ElfImage | None = None
        self.resources: Resources | None = None
        self.rpmsg: RpmsgDevice | None = None
        self._vdevs: list[VdevControl] = []
        self._table_da = 0
        self._clean_table: bytes | None = None  # the live table as attach found it

    @property
    def state(self) -> State:
        if self.lifecycle.state in (State.RUNNING, State.ATTACHED) and self.platform.crashed():
            log.warning("the remote stopped on its own: crashed")
            self.lifecycle.to(State.CRASHED)
        return self.lifecycle.state

    # --- loading ---------------------------------------------------------------------------------------------
    def load(self, path: str | os.PathLike[str], *, progress: Progress | None = None) -> None:
        if self.state not in (State.OFFLINE, State.DETACHED):
            raise StateError(f"load needs the remote offline, it is {self.state.value}")
        info = firmware_info(path, dialect=self.dialect)
        errors = [f for f in info.findings if f.severity is Severity.ERROR]
        if errors:
            problems = "; ".join(place(f.message, f.index, f.field, f.offset) for f in errors)
            raise FirmwareError(f"cannot be loaded: {problems}", path=str(path))
        section = info.elf.resource_table
        if info.table is None or section is None:
            raise FirmwareError(
                "no .resource_table: this platform needs a vdev to talk to the firmware", path=str(path)
            )
        data = read_bytes(path, section.offset, section.size)
        pool = self.platform.pool()
        loaded = self.platform.load(path, info.elf, progress)
        for seg in loaded:
            pool.reserve(seg.da, seg.memsz)
        self.resources = self._handle(data, info.table, info.spans, pool)
        self.firmware = Path(path)
        self.image = info.elf
        self._table_da = section.addr

    def _handle(self, data: bytes, table: ResourceTable, spans: tuple[Span, ...], pool: Pool) -> Resources:
        return handle_resources(
            data,
            table,
            spans,
            self.platform.memory,
            pool,
            rpmsg_buffers=self.buffers,
            buffer_size=self.rx_size,
            tx_buffer_size=self.tx_size,
            vendor_hook=getattr(self.platform, "handle_vendor", None),  # a platform's own entries, if it has any
        )

    # --- running ---------------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        if self.resources is None or self.firmware is None:
            raise StateError("load a firmware first")
        if self.state is not State.OFFLINE:
            raise StateError(f"start needs the remote offline, it is {self.state.value}")
        res = self.resources
        mem = self.platform.memory
        self.platform.prepare()  # a platform that loads the image itself (QEMU -kernel) does it now
        mem.write(self._table_da, res.data)  # the negotiated copy over the loaded table, right before start
        self.platform.start(self._table_da, len(res.data))
        try:
            self._start_vdevs(timeout)
        except BaseException:
            self.platform.stop()
            raise
        self.lifecycle.to(State.RUNNING)

    def _start_vdevs(self, timeout: float) -> None:
        """Per vdev, after the remote runs: Linux's status sequence, the rpmsg host on its vrings, the first kick."""
        res = self.resources
        assert res is not None
        mem = self.platform.memory
        self._vdevs = []
        sessions.note(self)  # `rproc status --sessions` lists it while the CLI serves status requests
        served = False
        for n, placement in enumerate(res.vdevs):
            span = res.spans[placement.index]
            control = VdevControl(mem, self._table_da + span.offset, res.table.version, len(placement.vrings))
            if served or placement.vdev.id != VIRTIO_ID_RPMSG or len(placement.vrings) < 2:
                # What Linux does for a vdev no driver binds (drivers/virtio/virtio.c register_virtio_device:
                # reset, ACKNOWLEDGE). rproc serves one rpmsg vdev; Linux would also drive a second one.
                control.set_status(0)
                control.set_status(STATUS_ACKNOWLEDGE)
                self._vdevs.append(control)
                log.warning("vdev %d (virtio id %d): not served by rproc, status ACKNOWLEDGE", n, placement.vdev.id)
                continue
            served = True
            features = control.negotiate(RPMSG_DRIVER_FEATURES)
            rx, tx = placement.vrings[0], placement.vrings[1]
            half = placement.buffers_per_direction
            core = HostCore(
                mem,
                VringLayout.legacy(rx.da, rx.num, rx.align),
                VringLayout.legacy(tx.da, tx.num, tx.align),
                pool_da=placement.buffers_da,
                rx_count=min(half, rx.num),
                tx_count=min(half, tx.num),
                rx_size=placement.rx_size,
                tx_size=placement.tx_size,
                event_idx=bool(features & (1 << VIRTIO_RING_F_EVENT_IDX)),
            )
            core.start()  # rings zeroed, receive buffers posted, the first kick queued
            control.driver_ok()
            try:
                doorbell = spy.wrap(self.platform.connect(timeout), mem, [core.rx.layout, core.tx.layout])
            except BaseException:
                core.close()  # its views of the shared memory, or the platform could not unmap it
                raise
            self.rpmsg = RpmsgDevice(core, doorbell, ns=bool(features & 1))
            self.rpmsg.start()
            self._vdevs.append(control)

    def rpmsg_device(self) -> RpmsgDevice:
        """The running remote's rpmsg device, or a :class:`RemoteprocError` saying why there is none."""
        if self.rpmsg is not None:
            return self.rpmsg
        if self.resources is not None and not self.resources.vdevs and self.state is not State.OFFLINE:
            raise RemoteprocError(
                f"{self.firmware}: its resource table has no vdev ({len(self.resources.table.entries)} entries): "
                "it runs, but there is no rpmsg device to talk to"
            )
        raise RemoteprocError(f"no rpmsg device: the remote is {self.state.value}")

    # --- attaching to a remote that already runs ---------------------------------------------------------------
    @property
    def vdevs(self) -> list[VdevControl]:
        """The started vdevs' entries in the loaded table (status, features)."""
        return list(self._vdevs)

    def attach(self, table_da: int | None = None, size: int | None = None, timeout: float = 10.0) -> None:
        """Take over a remote a bootloader started: its live table at ``table_da`` (default: the platform's
        ``[attach]``), resources handled as at boot, vdevs negotiated; nothing is loaded or restarted
        (Linux ``rproc_attach``)."""
        if self.state not in (State.OFFLINE, State.DETACHED):
            raise StateError(f"attach needs the remote offline or detached, it is {self.state.value}")
        spec = getattr(self.platform, "spec", None)
        table_da = table_da if table_da is not None else getattr(spec, "attach_table", None)
        size = size if size is not None else getattr(spec, "attach_size", 0x400)
        if table_da is None:
            raise StateError("where is the running remote's resource table? give table_da (or [attach] in the board)")
        data = self.platform.memory.read(table_da, size)
        try:
            table, spans = parse_with_spans(data, dialect=self.dialect)
        except ResourceTableError as exc:
            raise FirmwareError(f"the live resource table at {table_da:#x}: {exc}") from None
        pool = self.platform.pool()
        pool.reserve(table_da, size)
        self.resources = self._handle(data, table, spans, pool)
        self._table_da = table_da
        self._clean_table = data  # put back at detach (remoteproc_core.c rproc_set_rsc_table: clean_table)
        self.platform.memory.write(table_da, self.resources.data)
        self._start_vdevs(timeout)
        self.lifecycle.to(State.ATTACHED)

    def detach(self) -> None:
        """Let go of an attached remote and leave it running, as Linux's ``__rproc_detach`` (remoteproc_core.c,
        6.1): our rpmsg side closes, each vdev is reset and acknowledged again (``rproc_stop_subdevices``: the
        driver's reset, then ``virtio_dev_remove``), then the table the remote installed is put back as it was
        found at attach (``rproc_reset_rsc_table_on_detach``: ``memcpy(table_ptr, rproc->clean_table, ...)``),
        "clean and ready to be used again" at the next attach."""
        if self.state is not State.ATTACHED:
            raise StateError(f"detach needs the remote attached, it is {self.state.value}")
        if self.rpmsg is not None:
            self.rpmsg.close()
            self.rpmsg = None
        for control in self._vdevs:
            control.reset_for_stop()
        self._vdevs = []
        if self._clean_table is not None:
            self.platform.memory.write(self._table_da, self._clean_table)
            self._clean_table = None
        self.lifecycle.to(State.DETACHED)

    def stop(self) -> None:
        state = self.state
        if state is State.OFFLINE:
            return
        if self.rpmsg is not None:
            self.rpmsg.close()
            self.rpmsg = None
        # Linux's order (remoteproc_core.c rproc_stop: rproc_stop_subdevices, then ops->stop): the vdev is reset
        # while the remote still runs, then the remote is stopped.
        for control in self._vdevs:
            control.reset_for_stop()
        self._vdevs = []
        self.platform.stop()
        self.lifecycle.to(State.OFFLINE)

    def recover(self, timeout: float = 10.0) -> None:
        """Stop and start again with the same firmware (reloaded), as Linux's rproc_trigger_recovery."""
        if self.firmware is None:
            raise StateError("nothing to recover: no firmware was loaded")
        self.stop()
        self.load(self.firmware)
        self.start(timeout)

    def close(self) -> None:
        if self.state is not State.DETACHED:  # a detached remote goes on running without us
            self.stop()
        self.platform.close()

    def __enter__(self) -> RemoteProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- trace buffers ---------------------------------------------------------------------------------------
    def traces(self) -> list[Trace]:
        return list(self.resources.traces) if self.resources else []

    def read_trace(self, index: int = 0) -> str:
        """The text in trace buffer ``index`` (up to the first NUL), as Linux's debugfs trace file shows it."""
        traces = self.traces()
        if not 0 <= index < len(traces):
            raise RemoteprocError(f"trace buffer {index} does not exist (the firmware has {len(traces)})")
        t = traces[index]
        return self.platform.memory.read(t.da, t.len).split(b"\0", 1)[0].decode("utf-8", errors="replace")
