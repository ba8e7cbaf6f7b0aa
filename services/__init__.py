"""Univence gRPC services: one package per service, all built on services.common."""

import univence  # noqa: F401  (first: it sets gRPC's transport before grpc is imported)
