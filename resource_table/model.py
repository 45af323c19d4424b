"""The typed model of a resource table: what users read and write, independent of the byte layout.

A table is a :class:`ResourceTable` holding a tuple of entries. Every entry is a frozen dataclass; addresses are
plain ints. :data:`FW_RSC_ADDR_ANY` (v1) or :data:`FW_RSC_ADDR_ANY64` (v2) in a ``da``/``pa`` asks the host to
choose the address, as in Linux's ``include/linux/remoteproc.h``.

Entry layouts (v1, little-endian, packed), from Linux ``include/linux/remoteproc.h`` and OpenAMP
``lib/include/openamp/remoteproc.h``:

=========  ====  ==================================================================================
type       size  fields
=========  ====  ==================================================================================
CARVEOUT   56    type, da, pa, len, flags, reserved, name[32]
DEVMEM     56    type, da, pa, len, flags, reserved, name[32]
TRACE      48    type, da, len, reserved, name[32]
VDEV       28+   type, id, notifyid, dfeatures, gfeatures, config_len, u8 status, u8 num_of_vrings,
                 u8 reserved[2]; then num_of_vrings x 20 B {da, align, num, notifyid, pa}; then config
=========  ====  ==================================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias

FW_RSC_ADDR_ANY = 0xFFFF_FFFF
"""A 32-bit ``da``/``pa`` the host fills in (Linux ``FW_RSC_ADDR_ANY``)."""
FW_RSC_ADDR_ANY64 = 0xFFFF_FFFF_FFFF_FFFF
"""The same request in a version-2 table, whose addresses are 64 bits wide."""
FW_RSC_NOTIFY_ID_ANY = 0xFFFF_FFFF
"""``notifyid`` the host fills in; Linux also writes it back on stop (``-1``)."""

VENDOR_START = 128
VENDOR_END = 512
"""Types ``VENDOR_START..VENDOR_END`` (both included) belong to the platform (Linux ``RSC_VENDOR_START/END``)."""

NAME_LEN = 32


class ResourceType(enum.IntEnum):
    """The standard entry types, the same in Linux and current OpenAMP (``enum fw_resource_type``)."""

    CARVEOUT = 0
    DEVMEM = 1
    TRACE = 2
    VDEV = 3


class Dialect(enum.Enum):
    """Which meaning types 4 and 5 have. Types 0..3 and the vendor range are the same in all of them."""

    LINUX = "linux"
    """Linux and OpenAMP since v2019.04: 4..127 are reserved, kept as :class:`RawEntry`."""
    OPENAMP_LEGACY = "openamp-legacy"
    """OpenAMP up to v2018.10: 4 = RSC_RPROC_MEM, 5 = RSC_FW_CHKSUM."""
    TI = "ti"
    """TI's downstream kernels: 4 = RSC_INTMEM, 5 = RSC_CUSTOM."""


class VirtioId(enum.IntEnum):
    """Virtio device ids seen in ``fw_rsc_vdev.id`` (virtio spec 1.2, section 5)."""

    NET = 1
    BLOCK = 2
    CONSOLE = 3
    RNG = 4
    BALLOON = 5
    RPMSG = 7
    SCSI = 8
    NINEP = 9
    RPROC_SERIAL = 11
    CAIF = 12
    GPU = 16
    INPUT = 18
    VSOCK = 19
    I2C = 34


VIRTIO_RPMSG_F_NS = 0
"""rpmsg feature bit: the remote announces its channels through the name service (Linux virtio_rpmsg_bus.c)."""

RSC_FLAG_OPTIONAL = 0x1
"""Version-2 entry flag: a host that does not know this entry's type may ignore it (otherwise it must fail)."""


@dataclass(frozen=True, kw_only=True)
class Carveout:
    """Physically contiguous memory the host allocates (``da``/``pa`` ANY) or reserves (fixed) for the remote."""

    type: ClassVar[int] = ResourceType.CARVEOUT
    kind: ClassVar[str] = "carveout"
    da: int
    pa: int = FW_RSC_ADDR_ANY
    len: int
    flags: int = 0
    reserved: int = 0
    name: str = ""
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class Devmem:
    """A device region (registers, on-chip RAM) the host maps into the remote's IOMMU at ``da``."""

    type: ClassVar[int] = ResourceType.DEVMEM
    kind: ClassVar[str] = "devmem"
    da: int
    pa: int
    len: int
    flags: int = 0
    reserved: int = 0
    name: str = ""
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class Trace:
    """A log buffer the remote writes and the host reads (``/sys/kernel/debug/remoteproc/*/trace0``)."""

    type: ClassVar[int] = ResourceType.TRACE
    kind: ClassVar[str] = "trace"
    da: int
    len: int
    reserved: int = 0
    name: str = ""
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class Vring:
    """One vring of a vdev. The host writes ``da`` and ``notifyid``; ``pa`` is ``reserved`` in OpenAMP."""

    da: int = FW_RSC_ADDR_ANY
    align: int
    num: int
    notifyid: int = FW_RSC_NOTIFY_ID_ANY
    pa: int = 0


@dataclass(frozen=True, kw_only=True)
class Vdev:
    """A virtio device (rpmsg is ``id`` 7) with its vrings and config space.

    ``status`` and ``gfeatures`` are written by the host (the virtio driver); ``dfeatures`` by the firmware.
    """

    type: ClassVar[int] = ResourceType.VDEV
    kind: ClassVar[str] = "vdev"
    id: int
    notifyid: int = FW_RSC_NOTIFY_ID_ANY
    dfeatures: int = 0
    gfeatures: int = 0
    status: int = 0
    reserved: tuple[int, int] = (0, 0)
    vrings: tuple[Vring, ...] = ()
    config: bytes = b""
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class VendorEntry:
    """A platform entry (types 128..512), kept as the bytes that follow its type word.

    Linux passes the body to the platform driver as it is. OpenAMP declares ``struct fw_rsc_vendor {u32 type;
    u32 len;}`` and hands ``len`` to the platform unchecked; what it counts is not defined anywhere (vendors use
    the word for other things), so it is only shown, never trusted: see :attr:`len_field`.
    """

    kind: ClassVar[str] = "vendor"
    type: int
    data: bytes = b""
    optional: bool = False

    @classmethod
    def openamp(cls, type: int, payload: bytes, *, optional: bool = False) -> VendorEntry:
        """An entry with OpenAMP's ``{type, len}`` header in front of ``payload``, ``len`` counting the whole
        entry (8 + payload), the reading of OpenAMP's "Length of the resource" most platforms use."""
        size = 8 + len(payload)
        return cls(type=type, data=size.to_bytes(4, "little") + payload, optional=optional)

    @property
    def len_field(self) -> int | None:
        """The u32 where OpenAMP's header has ``len``, or None when the body is shorter than 4 bytes."""
        return int.from_bytes(self.data[:4], "little") if len(self.data) >= 4 else None


@dataclass(frozen=True, kw_only=True)
class RawEntry:
    """An entry of a type this dialect does not define, kept as the bytes that follow its type word."""

    kind: ClassVar[str] = "raw"
    type: int
    data: bytes = b""
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class RprocMem:
    """Old OpenAMP (<= v2018.10) type 4, RSC_RPROC_MEM: memory of the remote the master may use."""

    type: ClassVar[int] = 4
    kind: ClassVar[str] = "rproc_mem"
    da: int
    pa: int
    len: int
    reserved: int = 0
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class FwChksum:
    """Old OpenAMP (<= v2018.10) type 5, RSC_FW_CHKSUM: ``algo`` (e.g. "sha256") and the checksum bytes."""

    type: ClassVar[int] = 5
    kind: ClassVar[str] = "fw_chksum"
    algo: str
    chksum: bytes = field(default=bytes(64))
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class Intmem:
    """TI downstream type 4, RSC_INTMEM: an internal memory of the remote (L2RAM, OCMC) mapped by the host."""

    type: ClassVar[int] = 4
    kind: ClassVar[str] = "intmem"
    version: int = 1
    da: int
    pa: int
    len: int
    reserved: tuple[int, int] = (0, 0)
    name: str = ""
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class CustomEntry:
    """TI downstream type 5, RSC_CUSTOM: ``sub_type`` and ``rsc_size`` bytes of sub-type specific data."""

    type: ClassVar[int] = 5
    kind: ClassVar[str] = "custom"
    sub_type: int
    data: bytes = b""
    optional: bool = False


Entry: TypeAlias = (
    Carveout | Devmem | Trace | Vdev | VendorEntry | RawEntry | RprocMem | FwChksum | Intmem | CustomEntry
)


@dataclass(frozen=True, kw_only=True)
class ResourceTable:
    """A whole table. ``version`` 1 is Linux/OpenAMP's; 2 is rproc's 64-bit proposal (docs/resource-table-v2.md).

    ``reserved`` is the v1 header's ``reserved[2]``; a version-2 header uses its first word for the table size,
    so there it must be 0 in the model.
    """

    version: int = 1
    entries: tuple[Entry, ...] = ()
    reserved: tuple[int, int] = (0, 0)

    def of_type(self, cls: type[Entry]) -> list[Entry]:
        """The entries of one class, in table order."""
        return [e for e in self.entries if isinstance(e, cls)]

    @property
    def vdevs(self) -> list[Vdev]:
        return [e for e in self.entries if isinstance(e, Vdev)]

    @property
    def carveouts(self) -> list[Carveout]:
        return [e for e in self.entries if isinstance(e, Carveout)]

    @property
    def traces(self) -> list[Trace]:
        return [e for e in self.entries if isinstance(e, Trace)]


def addr_any(version: int) -> int:
    """The "host chooses" address for a table version."""
    return FW_RSC_ADDR_ANY64 if version >= 2 else FW_RSC_ADDR_ANY
