"""rpmsg devices on any transport link (``transports.url.open_link``): the host lays out its rings in the link's
memory before it connects, so a remote that connects may read them at once."""

from __future__ import annotations

from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.errors import LocalProtocolError
from rpmsg.profiles import Profile
from rpmsg.uart import written_ranges
from transports.link import Link
from transports.vhost_user import VhostUserLink


def _check_layout(link: Link, call: str) -> None:
    """A link whose peers fix the layout (a resource table of theirs, rings where they put them) cannot take a
    Profile's: writing one over it broke OpenAMP's remote (exit 234)."""
    if link.layout is not None:
        raise LocalProtocolError(f"{call}: {link.layout}, not {call} with an rpmsg Profile")


def host_on(
    link: Link, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> RpmsgDevice:
    _check_layout(link, "host_on")
    p = profile or Profile()
    link.declare_writes(*written_ranges(p, "host"))
    core = p.host_core(link.memory)
    core.start()
    device = RpmsgDevice(core, link.connect(timeout), wait=wait, limits=p.limits)
    device.start()
    return device


def remote_on(
    link: Link, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> RpmsgDevice:
    if isinstance(link, VhostUserLink) and profile is None:
        # The guest's driver laid out the rings: the device is built on them once it started the device.
        from rpmsg.vhost_user import device_on_session

        link.connect(timeout)
        assert link.session is not None
        return device_on_session(link.session, wait=wait)
    _check_layout(link, "remote_on")
    p = profile or Profile()
    link.declare_writes(*written_ranges(p, "remote"))
    doorbell = link.connect(timeout)
    return RpmsgDevice(p.remote_core(link.memory), doorbell, wait=wait, limits=p.limits)
