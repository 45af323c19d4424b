"""rproc against the Linux kernel's own rpmsg stack, running in User-Mode Linux (see build.py and uml.py)."""
