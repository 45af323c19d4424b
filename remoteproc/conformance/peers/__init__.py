"""The peers the two catalogues run against, each started fresh for a session.

Remote peers (rproc as host, :mod:`remoteproc.conformance.host_role`): their ``start`` gives a ``HostContext``.
Host peers (rproc as remote, :mod:`remoteproc.conformance.remote_role`): their ``start`` gives a ``HostRun``.

- rproc.py: rproc's own peers, the remote (BREAKS) and the host (HOST_BREAKS), each running its program below in a
  process of its own over shm, correct or broken on purpose;
- rproc_remote.py: the remote program (and its echo, also served in a thread by tests/conformance/pairs.py);
- rproc_host.py: the host program (and its traffic);
- firmware.py: the services firmware on an emulated board (remote);
- openamp.py: programs on OpenAMP's Linux-userspace machine, either role (OpenAMP's echo demo and pingers);
- rpmsg_lite.py: programs on RPMsg-Lite's layout, either role;
- process.py: what peers in processes share (the started program, its lifecycle, a host program's run);
- the Linux peer (the kernel's remoteproc and rpmsg, in User-Mode Linux) lives in remoteproc/conformance/linux/,
  with its own catalogue of boots (linux/peer.py is its host peer for the remote role).
"""

from remoteproc.conformance.peers.firmware import FirmwarePeer
from remoteproc.conformance.peers.openamp import OPENAMP_SHUTDOWN, OpenAmpHostPeer, OpenAmpRemotePeer, isolated
from remoteproc.conformance.peers.rpmsg_lite import RpmsgLiteMasterPeer, RpmsgLiteRemotePeer
from remoteproc.conformance.peers.rproc import BREAKS, HOST_BREAKS, RprocHostPeer, RprocRemotePeer

__all__ = [
    "BREAKS",
    "HOST_BREAKS",
    "OPENAMP_SHUTDOWN",
    "FirmwarePeer",
    "OpenAmpHostPeer",
    "OpenAmpRemotePeer",
    "RpmsgLiteMasterPeer",
    "RpmsgLiteRemotePeer",
    "RprocHostPeer",
    "RprocRemotePeer",
    "isolated",
]
