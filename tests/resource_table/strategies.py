"""Hypothesis strategies for resource-table models, version 1 and 2."""

from __future__ import annotations

from hypothesis import strategies as st

from resource_table import (
    Carveout,
    Devmem,
    RawEntry,
    ResourceTable,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
)
from resource_table.model import Entry

U8 = st.integers(0, 0xFF)
U32 = st.integers(0, 0xFFFF_FFFF)
U64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)
# latin-1 without NUL: what a C string in a 32-byte field can hold and give back
NAMES = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=32)


def vrings(addr: st.SearchStrategy[int]) -> st.SearchStrategy[Vring]:
    return st.builds(Vring, da=addr, align=U32, num=U32, notifyid=U32, pa=U32)


def entries(version: int) -> st.SearchStrategy[Entry]:
    addr = U64 if version == 2 else U32
    optional = st.booleans() if version == 2 else st.just(False)
    return st.one_of(
        st.builds(Carveout, da=addr, pa=addr, len=addr, flags=U32, reserved=U32, name=NAMES, optional=optional),
        st.builds(Devmem, da=addr, pa=addr, len=addr, flags=U32, reserved=U32, name=NAMES, optional=optional),
        st.builds(Trace, da=addr, len=U32, reserved=U32, name=NAMES, optional=optional),
        st.builds(
            Vdev,
            id=U32,
            notifyid=U32,
            dfeatures=addr,
            gfeatures=addr,
            status=U8,
            reserved=st.tuples(U8, U8),
            vrings=st.lists(vrings(addr), max_size=3).map(tuple),
            config=st.binary(max_size=24),
            optional=optional,
        ),
        st.builds(VendorEntry, type=st.integers(128, 512), data=st.binary(max_size=24), optional=optional),
        st.builds(
            RawEntry,
            type=st.one_of(st.integers(4, 127), st.integers(513, 0xFFFF_FFFF)),
            data=st.binary(max_size=24),
            optional=optional,
        ),
    )


def tables(version: int) -> st.SearchStrategy[ResourceTable]:
    reserved = st.tuples(U32, U32) if version == 1 else st.tuples(st.just(0), U32)
    return st.builds(
        ResourceTable,
        version=st.just(version),
        entries=st.lists(entries(version), max_size=6).map(tuple),
        reserved=reserved,
    )
