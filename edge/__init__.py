"""The Univence edge: REST/JSON (OpenAI-compatible) in front of the gRPC services."""
