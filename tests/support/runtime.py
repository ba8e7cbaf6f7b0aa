"""Starts a service's real aio gRPC server in the test's event loop (services/common/testing.py, which
the modalities' fixtures build on)."""

from services.common.testing import running_service

__all__ = ["running_service"]
