"""Platforms: what remoteproc asks of a board (memory map, start, stop, notify, wait, crash status)."""
