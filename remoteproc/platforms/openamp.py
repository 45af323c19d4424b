"""rproc in either role of OpenAMP's Linux-userspace echo demo (openamp-system-reference legacy_apps, machine
"generic"), on the profile of :mod:`transports.openamp`.

Where things live (all byte offsets in /dev/shm/openamp.shm, which are also the device addresses):

=========  ======================================================================================
0x0000     resource table, 88 bytes: ver 1, one vdev (id 7, dfeatures VIRTIO_RPMSG_F_NS, 2 vrings)
0x0024     vdev gfeatures (written by the host)
0x002c     vdev status (the host writes DRIVER_OK = 0x04 only; the remote tests the bit)
0x4000     vring 0 (remote -> host), align 0x1000, 256 entries, notifyid 1
0x8000     vring 1 (host -> remote), align 0x1000, 256 entries, notifyid 2
0x10000    buffer pool, 512 x 512 bytes: the first 256 posted by the host for receiving, then send buffers
=========  ======================================================================================

Who does what: the remote (virtio device) creates the file (or reuses the one a host that started first made:
:mod:`transports.openamp` says when), writes the table, then listens; the host (virtio driver) connects, zeroes
the vrings, posts its 256 receive buffers, sets vring 1's avail.flags = NO_INTERRUPT, writes the status.
Endpoints 0x400 on both sides, channel "rpmsg-openamp-demo-channel".

The way in, for either role: ``link = transports.url.open_link("openamp://[?shm=PATH&event=PATH]", role=...)``
(or ``OpenAmpLink``), then :func:`host_device` or :func:`remote_device`. ``rpmsg.wiring.host_on``/``remote_on``
refuse such a link: their Profile layout is not OpenAMP's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from remoteproc.errors import RemoteprocError
from resource_table import ResourceTable, ResourceTableError, Vdev, Vring, build, parse
from rpmsg import HostCore, RemoteCore, RpmsgDevice
from rpmsg.protocol import driver_ok
from transports.link import Link
from transports.openamp import LAYOUT
from virtio import VringLayout

TABLE = ResourceTable(
    entries=(
        Vdev(
            id=7,
            notifyid=0,
            dfeatures=1,
            vrings=(
                Vring(da=0x4000, align=0x1000, num=256, notifyid=1),
                Vring(da=0x8000, align=0x1000, num=256, notifyid=2),
            ),
        ),
    )
)
TABLE_SIZE = 88
GFEATURES_OFFSET = 0x24
STATUS_OFFSET = 0x2C
POOL = 0x10000
BUFFERS = 512
BUFFER_SIZE = 512
CHANNEL = "rpmsg-openamp-demo-channel"
OPENAMP_HOST_STATUS = 0x04  # OpenAMP as virtio driver writes DRIVER_OK alone (Linux would end at 0x07)


def _layouts(vdev: Vdev) -> tuple[VringLayout, VringLayout]:
    r0, r1 = vdev.vrings
    return VringLayout.legacy(r0.da, r0.num, r0.align), VringLayout.legacy(r1.da, r1.num, r1.align)


def _check_link(link: Link, role: str, call: str) -> None:
    if link.layout != LAYOUT:
        raise RemoteprocError(
            f"{call} needs an openamp:// link (transports.url.open_link('openamp://...', role={role!r})), "
            f"not {type(link).__name__}"
        )
    if link.role != role:
        raise RemoteprocError(f"{call} needs the {role} side of the openamp:// link, not the {link.role} side")


def remote_device(link: Link, *, timeout: float = 10.0, check: Callable[[], None] | None = None) -> RpmsgDevice:
    """The remote's side: write the table, then listen (a host that started first connects now and reads the
    table at once), wait for the host and its DRIVER_OK, then serve rpmsg. ``check``: called while waiting for
    the host's DRIVER_OK; it raises to stop waiting (the host program has ended)."""
    _check_link(link, "remote", "remote_device")
    table = build(TABLE)
    assert len(table) == TABLE_SIZE
    link.memory.write(0, table)
    doorbell = link.connect(timeout)
    deadline = time.monotonic() + timeout
    while not driver_ok(link.memory.read(STATUS_OFFSET, 1)[0]):
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise RemoteprocError(f"the OpenAMP host did not set DRIVER_OK within {timeout} s")
        time.sleep(0.001)  # OpenAMP's remote polls the status every millisecond too
    rx, tx = _layouts(TABLE.vdevs[0])
    return RpmsgDevice(RemoteCore(link.memory, rx, tx), doorbell)


def host_device(link: Link, *, timeout: float = 10.0, check: Callable[[], None] | None = None) -> RpmsgDevice:
    """The host's side: read the remote's table, set up the rings and buffers, DRIVER_OK, serve rpmsg.
    ``check``: called while waiting for the table; it raises to stop waiting (the remote program has ended)."""
    _check_link(link, "host", "host_device")
    # A remote may listen on the socket before it has written the table (rproc's remote did until issue 17; a
    # restarted one leaves the file zeroed for a moment): until the table parses, "not yet", then the last error.
    deadline = time.monotonic() + timeout
    while True:
        try:
            table = parse(link.memory.read(0, TABLE_SIZE))
            if len(table.vdevs) == 1:
                break
            problem = f"{len(table.vdevs)} vdevs"
        except ResourceTableError as exc:
            problem = str(exc)
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise RemoteprocError(f"no usable OpenAMP resource table at offset 0 within {timeout} s: {problem}")
        time.sleep(0.001)
    vdevs = table.vdevs
    if len(vdevs) != 1 or len(vdevs[0].vrings) != 2:
        raise RemoteprocError("the table at the start of the shared file is not OpenAMP's one-vdev table")
    vdev = vdevs[0]
    link.memory.write(GFEATURES_OFFSET, (vdev.dfeatures & 1).to_bytes(4, "little"))  # VIRTIO_RPMSG_F_NS
    rx, tx = _layouts(vdev)
    half = BUFFERS // 2
    core = HostCore(
        link.memory, rx, tx, pool_da=POOL, rx_count=half, tx_count=half, rx_size=BUFFER_SIZE, tx_size=BUFFER_SIZE
    )
    core.start()  # zeroes the vrings, posts the receive buffers, vring 1 avail.flags = NO_INTERRUPT
    link.memory.write(STATUS_OFFSET, bytes((OPENAMP_HOST_STATUS,)))
    device = RpmsgDevice(core, link.connect())
    device.start()
    return device
