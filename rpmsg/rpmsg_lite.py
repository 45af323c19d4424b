"""NXP's RPMsg-Lite (github.com/nxp-mcuxpresso/rpmsg-lite) as a peer, in either role: its shared-memory layout as
a :class:`~rpmsg.profiles.Profile`.

RPMsg-Lite has no resource table, no feature bits and no status byte: the layout is fixed at compile time on both
sides (lib/rpmsg_lite/rpmsg_lite.c ``rpmsg_lite_master_init`` / ``rpmsg_lite_remote_init``, without
RL_ALLOW_CUSTOM_SHMEM_CONFIG):

- vring 0 at the (word-aligned) base, vring 1 at base + VRING_SIZE, each with RL_BUFFER_COUNT entries and
  VRING_ALIGN alignment (``ring_info.phy_addr``, ``ring_info.align``, ``ring_info.num_descs``);
- the buffer pool at base + 2 * VRING_SIZE (``RL_VRING_OVERHEAD``), buffers of RL_BUFFER_PAYLOAD_SIZE + 16 bytes
  rounded up to a word (``RL_BUFFER_SIZE``), one size for both directions; the master's first RL_BUFFER_COUNT
  buffers are its receive buffers (vring 0, ``virtqueue_fill_avail_buffers``), the next ones its send buffers
  (vring 1, ``virtqueue_fill_used_buffers``) — the order of rproc's pool.

Defaults: RL_BUFFER_PAYLOAD_SIZE 496 (lib/include/rpmsg_default_config.h), VRING_ALIGN 0x1000 and VRING_SIZE
0x8000 (lib/include/platform/imx*/rpmsg_platform.h), 256 buffers per direction (the default config says 2; the
i.MX platforms and rproc use 256). The master is rproc's host role (the virtio driver), the remote rproc's remote
role; in the remote role the profile allows the master's quirks (:data:`rpmsg.quirks.RPMSG_LITE_MASTER`).
"""

from __future__ import annotations

from rpmsg.errors import LocalProtocolError
from rpmsg.profiles import Limits, Profile
from rpmsg.protocol import HEADER_SIZE
from rpmsg.quirks import RPMSG_LITE_MASTER, HostQuirks
from virtio import VringLayout

WORD = 4  # RL_WORD_SIZE: sizeof(uint32_t)
VRING_SIZE = 0x8000
VRING_ALIGN = 0x1000
BUFFER_COUNT = 256
PAYLOAD_SIZE = 496


def _word(value: int) -> int:
    return (value + WORD - 1) & ~(WORD - 1)  # RL_WORD_ALIGN_UP


def rpmsg_lite_profile(
    *,
    base: int = 0,
    vring_size: int = VRING_SIZE,
    align: int = VRING_ALIGN,
    count: int = BUFFER_COUNT,
    payload: int = PAYLOAD_SIZE,
    quirks: HostQuirks = RPMSG_LITE_MASTER,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable
) -> Profile:
    """The layout an RPMsg-Lite build with these macros uses (VRING_SIZE, VRING_ALIGN, RL_BUFFER_COUNT,
    RL_BUFFER_PAYLOAD_SIZE, the shared memory's address): the same numbers on both sides, or nothing works."""
    if count < 1 or count & (count - 1) or count > 32768:
        raise LocalProtocolError(f"RL_BUFFER_COUNT {count} must be a power of two up to 32768 (rpmsg_lite.c)")
    if base % WORD:
        raise LocalProtocolError(f"the shared memory base {base:#x} is not word-aligned")
    if align < 1 or align & (align - 1) or align > 65536:
        raise LocalProtocolError(f"VRING_ALIGN {align:#x} must be a power of two up to 65536 (RL_MAX_VRING_ALIGN)")
    ring = VringLayout.legacy(base, count, align).end - base
    if ring > vring_size:
        raise LocalProtocolError(
            f"a vring of {count} entries aligned to {align:#x} takes {ring:#x} bytes: more than VRING_SIZE "
            f"{vring_size:#x} (vring 1 would overlap it)"
        )
    if payload < 1 or payload > 0xFFFF:
        raise LocalProtocolError(f"RL_BUFFER_PAYLOAD_SIZE {payload} must be 1..65535")
    size = _word(payload + HEADER_SIZE)
    return Profile(
        num=count,
        align=align,
        rx_count=count,
        tx_count=count,
        rx_size=size,
        tx_size=size,
        base=base,
        limits=limits,
        vring1=base + vring_size,
        pool=_word(base + 2 * vring_size),
        host_quirks=quirks,
    )


PROFILE = rpmsg_lite_profile()
"""RPMsg-Lite with the i.MX platforms' VRING_SIZE/VRING_ALIGN, 256 buffers of 496 + 16 bytes each way."""
