# Only what pyproject.toml cannot declare: the cffi modules (the C virtqueue engine; the rpmsg host's C path) and
# the host endpoint's C methods (a CPython extension: a method call into cffi costs more than the whole message).
from setuptools import Extension, setup

setup(
    cffi_modules=["virtio/_build_vring.py:ffibuilder", "rpmsg/_build_fastpath.py:ffibuilder"],
    ext_modules=[
        Extension(
            "rpmsg._endpoint_c",
            sources=["rpmsg/csrc/endpoint.c", "rpmsg/csrc/fastpath.c", "virtio/csrc/vring.c"],
            include_dirs=["rpmsg/csrc", "virtio/csrc"],
            extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra"],
        )
    ],
)
