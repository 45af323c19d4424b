"""The C Gate's members (rpmsg/csrc/endpoint*.c) are exposed with the type of their C field: its int fields as
T_INT, so Python reads and writes the whole int, on any byte order. They were T_BOOL, which reads and writes one
byte: the low byte of the int on a little-endian host, the high one on a big-endian host (issue 17)."""

from __future__ import annotations

import pytest

from rpmsg import fastpath


def test_the_gate_int_fields_are_read_and_written_whole() -> None:
    module = fastpath.endpoint_module()
    if module is None:
        pytest.skip("the C endpoint module is not built")
    gate = module.Gate()
    for name in ("block", "kicks_on"):
        for value in (1, 0, True, False, 0x100):  # 0x100: a byte-wide member would read 0 (or refuse it)
            setattr(gate, name, value)
            assert getattr(gate, name) == value
    assert gate.attached == 0 and gate.remote == 0
    # the Python twin takes any truth value the same way
    twin = fastpath.PyGate()
    twin.kicks_on = 1
    assert twin.kicks_on == 1
