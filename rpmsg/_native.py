"""The one loader of rpmsg._endpoint_c (rpmsg/csrc/endpoint.c): the core takes TxBuffer's base class from it and
the device its Gate and EndpointBase, so both must come from the same module object (a type from another load
is another type)."""

from __future__ import annotations

import functools
from typing import Any

from virtio.cring import load_extension


@functools.cache
def endpoint_module() -> Any:
    """rpmsg._endpoint_c, or None when it is not built (RPROC_RPMSG_ENDPOINT_MODULE: another build, e.g.
    sanitized)."""
    try:
        return load_extension("rpmsg._endpoint_c", "RPROC_RPMSG_ENDPOINT_MODULE")
    except ImportError:
        return None
