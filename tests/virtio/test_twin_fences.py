"""The pure-Python ring has a full fence wherever vring.c has one.

vring.c's rp_mb() orders a store before a later load (our index or flag, then the other side's flag or index: the
Dekker pattern of notification suppression), which x86 does not do by program order. The twin mirrors vring.c
function by function (virtio/pyring.py); here each C function's rp_mb() calls are counted and its twin must call
``full_fence`` as often (before stop 33 it called it nowhere: "on x86 program order is enough").
"""

from __future__ import annotations

import ast
import re
import threading
from collections import Counter
from pathlib import Path

from virtio import pyring

VIRTIO = Path(__file__).resolve().parents[2] / "virtio"
C_FUNCTION = re.compile(r"^(?:static\s+)?[\w ]+?\**\b(\w+)\(([^;{]*)\)\s*\{(.*?)^\}", re.M | re.S)


def _c_fences() -> Counter[str]:
    source = (VIRTIO / "csrc" / "vring.c").read_text()
    found: Counter[str] = Counter()
    for name, _args, body in C_FUNCTION.findall(source):
        count = len(re.findall(r"\brp_mb\(\)", body))
        if count:
            found[name.removeprefix("rp_")] = count
    return found


def _python_fences() -> Counter[str]:
    tree = ast.parse((VIRTIO / "pyring.py").read_text())
    ring = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PyVring")
    found: Counter[str] = Counter()
    for method in ring.body:
        if isinstance(method, ast.FunctionDef):
            calls = [
                n
                for n in ast.walk(method)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "full_fence"
            ]
            if calls:
                found[method.name.removeprefix("_")] = len(calls)
    return found


def test_every_full_fence_of_vring_c_is_in_the_python_twin() -> None:
    c = _c_fences()
    assert c, "no rp_mb() found in vring.c: the parser no longer reads it"
    assert {"drv_publish", "dev_publish", "drv_enable_cb", "dev_enable_notify"} <= set(c)
    assert _python_fences() == c


def test_the_fence_is_a_lock_that_is_free_again() -> None:
    pyring.full_fence()
    assert not pyring._FENCE.locked()
    done = threading.Event()
    threading.Thread(target=lambda: (pyring.full_fence(), done.set())).start()
    assert done.wait(5)
