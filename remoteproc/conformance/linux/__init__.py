"""The Linux kernel as a peer: a User-Mode Linux kernel with Linux's own rpmsg drivers (built from Debian's
linux-source-6.1 and cached on first use, :mod:`.build`), booted as an ordinary process (:mod:`.uml`) with
rproc's vhost-user device as its virtio-rpmsg device (:mod:`.peer`), or with the uml_rproc driver and Linux's
remoteproc core loading firmware for a remote on the host (:mod:`.remoteproc_peer`, the catalogue).

The remoteproc core as a peer: :mod:`.rproc_uml` (the memory map, the firmware and C remote builds),
:mod:`.uml_socket` (uml_rproc's socket for the Python remotes :mod:`.uml_py_remote` and :mod:`.uml_qemu`),
:mod:`.guest_run` (one boot: memory file, host remote, UML, script), :mod:`.rproc_side` (what rproc's loader
writes, for every comparison), :mod:`.catalogue_types` and the modules of boots: :mod:`.sysfs_boots`,
:mod:`.in_guest_boot`, :mod:`.lifecycle` (with :mod:`.vdev_status`, :mod:`.driver_params`), :mod:`.tables`
(with :mod:`.emitted_tables`), :mod:`.rsc_mutations` (with :mod:`.mutation_corpus`), :mod:`.m33_boot`."""
