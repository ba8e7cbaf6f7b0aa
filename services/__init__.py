"""Univence gRPC services: one package per service, all built on services.common."""
