"""Feature negotiation: legacy (remoteproc vdevs, 32-bit feature words) and VERSION_1.

Sources: virtio 1.2 section 3.1.1 (driver initialization), section 6 (reserved feature bits); Linux
``virtio_dev_probe``. A legacy device never sees FEATURES_OK: the driver writes its features and goes on. A
VERSION_1 driver sets FEATURES_OK after writing features and must re-read status to see the device kept it.
"""

from __future__ import annotations

from dataclasses import dataclass

from virtio.errors import LocalError

VIRTIO_RING_F_INDIRECT_DESC = 28
VIRTIO_RING_F_EVENT_IDX = 29
VIRTIO_F_VERSION_1 = 32

STATUS_ACKNOWLEDGE = 1
STATUS_DRIVER = 2
STATUS_DRIVER_OK = 4
STATUS_FEATURES_OK = 8
STATUS_FAILED = 128

# Transport bits this engine implements. INDIRECT_DESC is refused: indirect tables are one more place a
# hostile peer could point us, and no remoteproc stack needs them.
ENGINE_FEATURES = (1 << VIRTIO_RING_F_EVENT_IDX) | (1 << VIRTIO_F_VERSION_1)
TRANSPORT_MASK = ((1 << 38) - 1) & ~((1 << 24) - 1)  # bits 24..37 belong to the transport, not the device


@dataclass(frozen=True)
class Negotiated:
    features: int
    legacy: bool
    event_idx: bool
    status_steps: tuple[int, ...]
    """The status bytes the driver writes, in order (Linux writes them cumulatively)."""


def negotiate(device_features: int, driver_features: int, *, allow_legacy: bool = True) -> Negotiated:
    """What a driver ends up with, given what the device offers and what the driver's device code wants.

    Transport bits are filtered by what this engine implements. Without VERSION_1 on both sides the result is
    legacy (which remoteproc vdevs always are, their feature words being 32 bits).
    """
    if device_features < 0 or driver_features < 0:
        raise LocalError("feature words are unsigned", queue=-1, code="ARG")
    wanted = (driver_features & ~TRANSPORT_MASK) | ENGINE_FEATURES
    features = device_features & wanted
    legacy = not features & (1 << VIRTIO_F_VERSION_1)
    if legacy and not allow_legacy:
        raise LocalError("the device does not offer VERSION_1 and legacy was not allowed", queue=-1, code="ARG")
    if legacy and features >> 32:
        raise LocalError(
            f"features {features:#x} need more than 32 bits, which legacy cannot carry", queue=-1, code="ARG"
        )
    ack = STATUS_ACKNOWLEDGE | STATUS_DRIVER
    steps = (
        (STATUS_ACKNOWLEDGE, ack, ack | STATUS_DRIVER_OK)
        if legacy
        else (STATUS_ACKNOWLEDGE, ack, ack | STATUS_FEATURES_OK, ack | STATUS_FEATURES_OK | STATUS_DRIVER_OK)
    )
    return Negotiated(
        features=features, legacy=legacy, event_idx=bool(features & (1 << VIRTIO_RING_F_EVENT_IDX)), status_steps=steps
    )
