"""The modality services' GetServiceInfo answers → OpenAI's model objects (plus where each model runs
and in which profile)."""

from __future__ import annotations

import time

from edge.catalog import ServiceInfo
from edge.endpoints.models.protocol import ModelObject
from edge.errors import APIError

# `created` of every model: when this edge started (the services do not say when a model was made).
STARTED = int(time.time())


def model_objects(infos: list[ServiceInfo]) -> list[ModelObject]:
    return [ModelObject(id=m.id, created=STARTED, service=info.service, task=m.task, profile=info.profile,
                        aliases=list(m.aliases), ready=info.ready, error=info.load_error or None)
            for info in infos for m in info.models]


def find(models: list[ModelObject], model_id: str) -> ModelObject:
    """The model with this id or alias; 404 model_not_found otherwise."""
    for model in models:
        if model_id == model.id or model_id in model.aliases:
            return model
    raise APIError(404, f"The model '{model_id}' does not exist or is not served here", param="model",
                   code="model_not_found")
