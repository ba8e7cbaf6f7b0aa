"""gRPC's transport for the processes of the stack: the sockets of grpcio before 1.80, not its EventEngine.

grpcio 1.80 moved Python's sockets to the EventEngine, whose own I/O threads hand each read on to grpc.aio's
poller. On this project's calls the earlier sockets cost less: a unary round trip's time x0.74-0.77 and each
side's CPU x0.71-0.79, a stream reader's CPU per message x0.76-0.77 (benchmarks/grpc_transport.py prints
both side by side). Both are gRPC's own experiments, still shipped in the grpcio that the project installs.

gRPC reads GRPC_EXPERIMENTS once, when grpc is imported, so importing this module sets it, unless the
environment already does (an operator's value wins; an empty one keeps gRPC's defaults), and each of our
entry points imports it before anything imports grpc: `univence.cli`, the `edge` and `services` packages (at
their top), the tests and the benchmarks. The processes they start inherit it. The generated stubs
(univence.<service>.v1) do not import it: a program that only uses them keeps its own gRPC settings.
"""

from __future__ import annotations

import os

GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"
os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
