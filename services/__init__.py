"""Univence gRPC services: one package per service, all built on services.common."""

import univence.transport  # noqa: F401  (first: gRPC's transport, before anything imports grpc)
