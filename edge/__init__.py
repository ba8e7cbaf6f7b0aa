"""The Univence edge: REST/JSON (OpenAI-compatible) in front of the gRPC services."""

import univence.transport  # noqa: F401  (first: gRPC's transport, before anything imports grpc)
