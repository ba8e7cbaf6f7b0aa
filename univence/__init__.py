"""Univence API: generated protobuf stubs (univence.<service>.v1) and the `univence` command (univence.cli)."""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache
def version() -> str:
    """The installed distribution's version, read once per process: importlib.metadata parses the package's
    METADATA file on every call (~4 ms here), and each service answers GetServiceInfo with it."""
    try:
        return importlib.metadata.version("univence")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
