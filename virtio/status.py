"""Constants shared by the C engine (csrc/vring.h) and its Python twin, and what each return code means."""

from __future__ import annotations

DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
AVAIL_F_NO_INTERRUPT = 1
USED_F_NO_NOTIFY = 1

ROLE_DRIVER = 0
ROLE_DEVICE = 1

RP_OK = 0
RP_ERR_BAD_HEAD = -1
RP_ERR_BAD_NEXT = -2
RP_ERR_LOOP = -3
RP_ERR_AVAIL_JUMP = -4
RP_ERR_USED_JUMP = -5
RP_ERR_BAD_USED_ID = -6
RP_ERR_USED_LEN = -7
RP_ERR_BAD_ADDR = -8
RP_ERR_INDIRECT = -9
RP_ERR_FULL = -10
RP_ERR_BROKEN = -11
RP_ERR_ARG = -12
RP_ERR_SPACE = -13

# code -> (name, what it means with {where} and {value} filled in)
DESCRIPTIONS: dict[int, tuple[str, str]] = {
    RP_ERR_BAD_HEAD: ("BAD_HEAD", "avail ring position {where} names descriptor {value}, beyond the ring"),
    RP_ERR_BAD_NEXT: ("BAD_NEXT", "descriptor {where} links to descriptor {value}, beyond the ring"),
    RP_ERR_LOOP: ("LOOP", "the chain starting at descriptor {where} is longer than the ring ({value}): a loop"),
    RP_ERR_AVAIL_JUMP: ("AVAIL_JUMP", "avail idx jumped from {where} to {value}, more than the ring holds"),
    RP_ERR_USED_JUMP: ("USED_JUMP", "used idx moved from {where} to {value}, past the buffers in flight"),
    RP_ERR_BAD_USED_ID: ("BAD_USED_ID", "used ring position {where} returns id {value}, which is not in flight"),
    RP_ERR_USED_LEN: ("USED_LEN", "used length {value:#x} for chain {where} is larger than the chain"),
    RP_ERR_BAD_ADDR: ("BAD_ADDR", "descriptor {where} points at {value:#x}, outside every mapped region"),
    RP_ERR_INDIRECT: ("INDIRECT", "descriptor {where} is indirect (flags {value:#x}), which was not negotiated"),
    RP_ERR_FULL: ("FULL", "{value} descriptors wanted, {where} free"),
    RP_ERR_BROKEN: ("BROKEN", "the queue is in the error state"),
    RP_ERR_ARG: ("ARG", "bad argument at {where} (value {value})"),
    RP_ERR_SPACE: ("SPACE", "{value} bytes at {where} do not fit the buffer given"),
}
REMOTE_FAULTS = frozenset(
    {
        RP_ERR_BAD_HEAD,
        RP_ERR_BAD_NEXT,
        RP_ERR_LOOP,
        RP_ERR_AVAIL_JUMP,
        RP_ERR_USED_JUMP,
        RP_ERR_BAD_USED_ID,
        RP_ERR_USED_LEN,
        RP_ERR_INDIRECT,
    }
)


def describe(code: int, where: int, value: int) -> str:
    name, text = DESCRIPTIONS.get(code, (str(code), "error {value} at {where}"))
    return f"{name}: {text.format(where=where, value=value)}"
