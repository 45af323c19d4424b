# Only what pyproject.toml cannot declare: the cffi module of the C virtqueue engine.
from setuptools import setup

setup(cffi_modules=["virtio/_build_vring.py:ffibuilder"])
