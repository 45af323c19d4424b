"""The split-virtqueue engine (driver and device side) over the transports' memory interface.

Sans-I/O: it reads and writes ring memory and returns "notify queue N" intents. Arrives with the virtio issue.
"""
