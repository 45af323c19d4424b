"""rpmsg over virtio, host and remote roles, with socket-like endpoints. Arrives with the rpmsg issue."""
