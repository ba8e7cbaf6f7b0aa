"""Probe answers: GET /healthz says the process is up; GET /readyz names each service's health state."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    # Service name → SERVING, NOT_SERVING, UNREACHABLE or the gRPC code of the failed check.
    services: dict[str, str]
    # Service name → why its models are not serving (a modality that failed to load says why), where known.
    problems: dict[str, str] = {}
