"""The C modules that share a queue's struct rp_vq through its address agree on its layout, or refuse loudly.

virtio._vring_cffi owns each queue's struct; rpmsg._fastpath_cffi (its own copy of vring.c) works on it by
address, and rpmsg._endpoint_c calls rpmsg._fastpath_cffi's copy through its table (struct rpf_api). Each build
states its layout (rp_vq_layout(), virtio/csrc/vring_layout.h): a stale or foreign module is refused by name
instead of reading the wrong fields."""

from __future__ import annotations

import types

import pytest

from rpmsg import _native, fastpath
from virtio import cring


def _modules() -> tuple[object, object]:
    try:
        return fastpath._module(), cring.load()
    except ImportError:
        pytest.skip("the C modules are not built")


def test_the_rpmsg_and_virtio_modules_were_built_with_one_layout() -> None:
    fast, engine = _modules()
    assert fast.lib.rp_vq_layout() == engine.lib.rp_vq_layout()  # type: ignore[attr-defined]
    _native.check_layout(fast.lib, engine.lib)  # type: ignore[attr-defined]


def test_another_layout_is_refused_by_name() -> None:
    fast, _ = _modules()
    other = types.SimpleNamespace(rp_vq_layout=lambda: fast.lib.rp_vq_layout() ^ 1)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match=r"different struct rp_vq layouts.*rebuild both"):
        _native.check_layout(fast.lib, other)  # type: ignore[attr-defined]


def test_the_endpoint_module_refuses_a_table_of_another_build() -> None:
    """Gate.attach checks the table it is handed: its size and its layout must be the extension's own."""
    fast, _ = _modules()
    module = fastpath.endpoint_module()
    if module is None:
        pytest.skip("the C endpoint module is not built")
    ffi, lib = fast.ffi, fast.lib  # type: ignore[attr-defined]
    for field, change in (("vq_layout", 1), ("size", 8)):
        table = ffi.new("struct rpf_api *", lib.rpf_api()[0])
        setattr(table, field, getattr(table, field) ^ change)
        gate = module.Gate()
        with pytest.raises(ImportError, match="another struct rp_vq or rpf_api: rebuild both"):
            gate.attach(**_attach_args(int(ffi.cast("uintptr_t", table))))
        assert not gate.attached
    gate = module.Gate()
    gate.attach(**_attach_args(int(ffi.cast("uintptr_t", lib.rpf_api()))))  # its own: taken
    assert gate.attached
    gate.detach()


def _attach_args(api: int) -> dict[str, object]:
    """Arguments for Gate.attach that pass its own checks (nothing is used until the gate opens)."""
    return dict(
        api=api, rx=0, tx=0, pool=0, npool=0, pool_cap=0, tx_size=16, rx_size=16, rx_count=1, max_payload=0,
        out=0, lens=0, out_cap=16, kick_fd=0, rx_kick_fd=0, remote=False,
        lock=types.SimpleNamespace(acquire=None, release=None),
        trace_enabled=lambda level: True, trace_level=5, guard=None, guard_attr="x", guard_value=None,
        hooks=(None, None, None, None, None),
    )  # fmt: skip
