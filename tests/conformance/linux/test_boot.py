"""The UML guest boots, runs its script from the host directory, reports and powers off, cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from remoteproc.conformance.linux.build import ensure_uml
from remoteproc.conformance.linux.uml import READY, UmlGuest

pytestmark = pytest.mark.conformance

BOOT_TIMEOUT = 60.0


def test_boot_without_devices(tmp_path: Path) -> None:
    images = ensure_uml()
    with UmlGuest(images, tmp_path / "share") as guest:
        guest.start("cat /proc/version\nrpmsg-probe wait-channel nothing 100 || true\n")
        guest.wait_for(READY, BOOT_TIMEOUT)
        assert guest.guest_exit_status(BOOT_TIMEOUT) == 0
        assert guest.wait_exit(BOOT_TIMEOUT) == 0
        lines = guest.lines
        assert any(line.startswith("Linux version 6.1") for line in lines)
        assert "wait-channel name=nothing fail reason=timeout" in lines
        guest.check_console_clean()
