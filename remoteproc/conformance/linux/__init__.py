"""The Linux kernel as a peer: a User-Mode Linux kernel with Linux's own rpmsg drivers (built from Debian's
linux-source-6.1 and cached on first use, :mod:`.build`), booted as an ordinary process (:mod:`.uml`) with
rproc's vhost-user device as its virtio-rpmsg device."""
