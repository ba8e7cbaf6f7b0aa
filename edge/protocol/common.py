"""Shapes every endpoint group shares."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, insufficient_credits, "
                                  "processing_error, maintenance_mode, premium_required or rate_limit_error")
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` entries for these statuses, all with the error envelope."""
    described = {
        400: "Invalid request", 401: "Authentication failed", 402: "Insufficient credits",
        403: "Premium required", 404: "Not found", 409: "Idempotency conflict", 413: "Payload too large",
        429: "Rate limited or queue full", 500: "Processing error", 503: "Maintenance or service unavailable",
    }
    return {s: {"model": ErrorResponse, "description": described.get(s, "Error")} for s in statuses}


COMMON_ERRORS = error_responses(400, 401, 429, 500, 503)
