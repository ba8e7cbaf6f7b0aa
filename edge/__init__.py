"""The Univence edge: REST/JSON (OpenAI-compatible) in front of the gRPC services."""

import univence  # noqa: F401  (first: it sets gRPC's transport before grpc is imported)
