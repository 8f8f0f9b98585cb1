"""Only the gateway's optional C extension; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # The prompt-prefix names in one C call (tide/gateway/prefix.py falls back to Python without it):
        # optional, so an install on a machine without a C compiler still succeeds.
        Extension("tide.gateway._prefixnames", ["tide/gateway/_prefixnames.c"], optional=True),
    ]
)
