"""Univence API: generated protobuf stubs (univence.<service>.v1) and the `univence` command (univence.cli).

Importing it sets gRPC's transport for the process (`GRPC_EXPERIMENTS`, below) unless the environment
already sets one. gRPC reads that variable once, when `grpc` is first imported, so every entry point loads
this package first: `univence` (the command), `edge` and `services` import it at their top, and the
processes they start inherit the variable.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os

# grpcio 1.80 moved Python's sockets to the EventEngine (its own I/O threads, which hand each read on to
# the asyncio poller). On this project's calls its earlier transport costs less: a unary round trip
# 0.6 -> 0.46 ms p50 and 0.67 -> 0.50 ms of CPU, and the edge's CPU per message of a server stream
# 169 -> 105 us (benchmarks/grpc_transport.py prints both, side by side). Both are gRPC's own experiments,
# still shipped in the grpcio that constraints.txt allows; an operator's GRPC_EXPERIMENTS wins, and an empty
# one keeps gRPC's defaults.
GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"
os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)


@functools.cache
def version() -> str:
    """The installed distribution's version, read once per process: importlib.metadata parses the package's
    METADATA file on every call (~4 ms here), and each service answers GetServiceInfo with it."""
    try:
        return importlib.metadata.version("univence")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
