"""POST /v1/images/generations, /v1/images/generations/batch and /v1/images/edits.

Each is checked by translate (against the image service's published models and limits) before any
credits are reserved, then runs the metered unary flow of edge.serving: reserve → the image service → each image
stored in media (owner = the caller) → commit. In a batch only the items that succeed are charged.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from edge.endpoints.images import translate
from edge.endpoints.images.protocol import (
    EDIT_FORM_SCHEMA,
    BatchGenerationRequest,
    BatchResponse,
    ImageEditRequest,
    ImageGenerationRequest,
    ImagesResponse,
)
from edge.endpoints.images.translate import IMAGE, JSON, ImageLimits
from edge.errors import COMMON_ERRORS, error_responses
from edge.inputs import json_body, json_model
from edge.routing import LeanRoute
from edge.serving import Serve

router = APIRouter(tags=["images"], route_class=LeanRoute,
                   responses={**COMMON_ERRORS, **error_responses(402, 409, 413)})


@router.post("/v1/images/generations", response_model=ImagesResponse, summary="Generate images from a prompt",
             openapi_extra=json_body(ImageGenerationRequest))
async def create_images(request: Request, serve: Serve) -> Response:
    body = await json_model(request, ImageGenerationRequest)
    plan = translate.plan_generation(body, await serve.published(IMAGE))
    return await serve.unary(IMAGE, "GenerateImages", plan)


@router.post("/v1/images/generations/batch", response_model=BatchResponse,
             summary="Up to 5 generations, answered in order; failed items cost nothing",
             openapi_extra=json_body(BatchGenerationRequest))
async def create_image_batch(request: Request, serve: Serve) -> Response:
    body = await json_model(request, BatchGenerationRequest)
    plan = translate.plan_batch(body, await serve.published(IMAGE))
    return await serve.unary(IMAGE, "BatchGenerateImages", plan)


@router.post("/v1/images/edits", response_model=ImagesResponse,
             summary="Edit 1 to 4 images (JSON with base64 input_images, or OpenAI's multipart `image`/`image[]`)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 JSON: {"schema": ImageEditRequest.model_json_schema()},
                 "multipart/form-data": {"schema": EDIT_FORM_SCHEMA}}}})
async def edit_images(request: Request, serve: Serve) -> Response:
    published = await serve.published(IMAGE)
    body, images, mask = await translate.read_edit(request, published.bounds(ImageLimits))
    return await serve.unary(IMAGE, "EditImages", translate.plan_edit(body, images, mask, published))
