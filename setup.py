# Only what pyproject.toml cannot declare: the cffi modules (the C virtqueue engine; the rpmsg host's C path).
from setuptools import setup

setup(cffi_modules=["virtio/_build_vring.py:ffibuilder", "rpmsg/_build_fastpath.py:ffibuilder"])
