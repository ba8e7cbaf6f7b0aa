"""POST /v1/images/segmentations, /v1/images/upscale, /v1/images/remove-background and
/v1/videos/remove-background.

Each is checked by translate (against the vision service's published methods and limits) before any
credits are reserved. The image endpoints run the metered unary flow of edge.serving (reserve → the
vision service → the output stored in media → commit); the video runs its progress flow: the service
probes the video first, its frame count is reserved, and the frames where the object was found are
charged once the WebM is done.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from edge.endpoints.vision import translate
from edge.endpoints.vision.protocol import (
    BACKGROUND_FORM,
    BACKGROUND_RESPONSES,
    SEGMENTATION_FORM,
    SEGMENTATION_RESPONSES,
    VIDEO_FORM,
    VIDEO_RESPONSES,
    BackgroundForm,
    SegmentationForm,
    UpscaleRequest,
    UpscaleResponse,
)
from edge.endpoints.vision.translate import VISION
from edge.errors import COMMON_ERRORS, error_responses
from edge.inputs import json_body, json_model
from edge.routing import LeanRoute
from edge.serving import Serve

router = APIRouter(tags=["vision"], route_class=LeanRoute,
                   responses={**COMMON_ERRORS, **error_responses(402, 409, 413)})


@router.post("/v1/images/segmentations", summary="Segment an image by a text prompt or points (SAM3)",
             response_class=Response, responses=SEGMENTATION_RESPONSES, openapi_extra=SEGMENTATION_FORM)
async def segment_image(request: Request, serve: Serve) -> Response:
    published = await serve.published(VISION)
    form, image = await translate.read_upload(request, SegmentationForm, published)
    return await serve.unary(VISION, "SegmentImage", translate.plan_segmentation(form, image, published))


@router.post("/v1/images/upscale", response_model=UpscaleResponse,
             summary="Upscale an image (Real-ESRGAN, Swin2SR or Lanczos); priced by method and output size",
             openapi_extra=json_body(UpscaleRequest))
async def upscale_image(request: Request, serve: Serve) -> Response:
    body = await json_model(request, UpscaleRequest)
    plan = translate.plan_upscale(body, await serve.published(VISION))
    return await serve.unary(VISION, "UpscaleImage", plan)


@router.post("/v1/images/remove-background", summary="Remove an image's background (RGBA PNG)",
             response_class=Response, responses=BACKGROUND_RESPONSES, openapi_extra=BACKGROUND_FORM)
async def remove_image_background(request: Request, serve: Serve) -> Response:
    published = await serve.published(VISION)
    form, image = await translate.read_upload(request, BackgroundForm, published)
    return await serve.unary(VISION, "RemoveImageBackground", translate.plan_image_background(form, image, published))


@router.post("/v1/videos/remove-background", summary="Remove a video's background (WebM VP9 with alpha)",
             response_class=Response, responses=VIDEO_RESPONSES, openapi_extra=VIDEO_FORM)
async def remove_video_background(request: Request, serve: Serve) -> Response:
    published = await serve.published(VISION)
    form, video = await translate.read_upload(request, BackgroundForm, published, video=True)
    plan = translate.plan_video_background(form, video, published)
    return await serve.progress(VISION, "RemoveVideoBackground", plan)
