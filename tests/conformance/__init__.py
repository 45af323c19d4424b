"""Conformance tests: rproc against other implementations of the same protocols (e.g. the Linux kernel's)."""
