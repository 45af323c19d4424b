"""All operating-system I/O of rproc: shared memory, /dev/mem, UART, loopback, vhost-user.

Nothing protocol-specific lives here, and nothing here imports the other rproc packages. The memory-window and
doorbell interfaces arrive with the virtio issue; the transports themselves with the transports issue.
"""
