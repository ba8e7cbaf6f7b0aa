"""GET /v1/models: what this deployment serves, as each modality service says (edge.catalog, cached
briefly per service); a service that does not answer is left out."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from edge.auth import require_principal
from edge.catalog import Catalog
from edge.endpoints.models import translate
from edge.endpoints.models.protocol import ModelList, ModelObject
from edge.errors import COMMON_ERRORS, error_responses
from edge.routing import LeanRoute

router = APIRouter(tags=["models"], route_class=LeanRoute,
                   dependencies=[Depends(require_principal)], responses=COMMON_ERRORS)


@router.get("/v1/models", response_model=ModelList, summary="List the served models")
async def list_models(catalog: Catalog) -> ModelList:
    return ModelList(data=translate.model_objects(await catalog.infos()))


@router.get("/v1/models/{model_id:path}", response_model=ModelObject, summary="One served model",
            responses=error_responses(404))
async def get_model(model_id: str, catalog: Catalog) -> ModelObject:
    return translate.find(translate.model_objects(await catalog.infos()), model_id)
