"""Probes: GET /healthz and /readyz."""
