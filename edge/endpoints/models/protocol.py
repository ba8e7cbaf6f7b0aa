"""GET /v1/models (OpenAI's model list, plus where each model runs and in which profile)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "univence"
    # Univence additions: the service that serves it, its task, its profile (`tiny` gives noise).
    service: str
    task: str = ""
    profile: str = ""
    aliases: list[str] = []
    ready: bool = True
    # Why the model is not ready, as its service reports it (failed to load: a missing GPU or weights).
    error: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
