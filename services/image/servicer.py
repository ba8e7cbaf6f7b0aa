"""The ImageService servicer: checks every request before any work, then runs generations through the
batcher (compatible images share one pipeline call) and edits straight on the work queue.

Both go through one bounded WorkQueue, so the GPU runs one call at a time and a full queue answers
QUEUE_FULL (RESOURCE_EXHAUSTED) at once. Each image of a request is one queue item.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence

import torch
from PIL import Image

from services.common.errors import Reason, ServiceError, invalid, reason_name
from services.common.workqueue import Batcher, WorkQueue
from services.image.config import ImageSettings
from services.image.models import (
    DEFAULT_EDIT_NEGATIVE_PROMPT,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_SIZE,
    DEFAULTS,
    MAX_BATCH_REQUESTS,
    MIME_TYPES,
    SIZES,
    edit_model,
    generation_model,
    generation_model_names,
    size_names,
)
from services.image.pipelines import Edit, Generation, KleinPipelines
from services.image.validation import (
    check_guidance,
    check_n,
    check_prompt,
    check_reference,
    check_seed,
    check_steps,
    open_image,
    seeds_for,
    to_mask,
    to_rgb,
)
from univence.image.v1 import image_pb2, image_pb2_grpc

log = logging.getLogger(__name__)
MIN_EDIT_SIDE = 64


def processing_failed(exc: BaseException) -> ServiceError:
    return ServiceError(Reason.ERROR_REASON_PROCESSING_FAILED,
                        f"the image model failed while running the request ({type(exc).__name__}: {exc})")


def encode(image: Image.Image, pillow_format: str, png_level: int) -> bytes:
    out = io.BytesIO()
    if pillow_format == "PNG":
        image.save(out, format="PNG", compress_level=png_level)
    else:
        image.save(out, format=pillow_format, quality=95)
    return out.getvalue()


class ImageServicer(image_pb2_grpc.ImageServiceServicer):
    """Serves once `attach` has given it the loaded pipelines and the work queue (the runtime's
    readiness gate keeps RPCs out until then)."""

    models: KleinPipelines
    queue: WorkQueue
    batcher: Batcher[Generation, Image.Image]

    def __init__(self, settings: ImageSettings):
        self.settings = settings

    def attach(self, models: KleinPipelines, queue: WorkQueue) -> None:
        self.models, self.queue = models, queue
        self.batcher = Batcher(queue, self.run_generations, max_batch_size=self.settings.max_batch_size,
                               max_wait_s=self.settings.max_batch_wait_ms / 1000, key=lambda job: job.batch_key)

    # -- RPCs ---------------------------------------------------------------------------------------

    async def GenerateImages(self, request: image_pb2.GenerateImagesRequest,
                             context) -> image_pb2.GenerateImagesResponse:
        return await self._generate(request, context.time_remaining())

    async def BatchGenerateImages(self, request: image_pb2.BatchGenerateImagesRequest,
                                  context) -> image_pb2.BatchGenerateImagesResponse:
        count = len(request.requests)
        if not 1 <= count <= MAX_BATCH_REQUESTS:
            raise invalid(f"requests must hold 1 to {MAX_BATCH_REQUESTS} generation requests, got {count}",
                          "requests")
        timeout = context.time_remaining()

        async def one(index: int, item: image_pb2.GenerateImagesRequest) -> image_pb2.BatchItemResult:
            try:
                if item.n > 1:  # keeps the answer within one message
                    raise invalid("n must be 1 in a batch item; send more items instead", "n")
                return image_pb2.BatchItemResult(response=await self._generate(item, timeout))
            except ServiceError as exc:
                error = exc
            except Exception as exc:  # one item's surprise fails that item only
                log.exception("batch item %d failed", index)
                error = processing_failed(exc)
            param = f"requests[{index}].{error.param}" if error.param else ""
            return image_pb2.BatchItemResult(error_code=error.code.value[0], error_reason=reason_name(error.reason),
                                             error_message=error.message, error_param=param)

        results = await asyncio.gather(*(one(i, item) for i, item in enumerate(request.requests)))
        return image_pb2.BatchGenerateImagesResponse(results=results)

    async def EditImages(self, request: image_pb2.EditImagesRequest, context) -> image_pb2.EditImagesResponse:
        job, public_id, pillow_format, mime = await self._plan_edit(request)
        images = await self.queue.run(self.run_edit, job, timeout=context.time_remaining())
        encoded = await asyncio.to_thread(self._encode_all, images, pillow_format)
        return image_pb2.EditImagesResponse(model=public_id, images=[
            image_pb2.GeneratedImage(data=data, mime_type=mime, width=im.width, height=im.height, seed=seed)
            for data, im, seed in zip(encoded, images, job.seeds, strict=True)])

    # -- generations --------------------------------------------------------------------------------

    def plan_generation(self, request: image_pb2.GenerateImagesRequest) -> tuple[str, list[Generation], str, str]:
        """(public model id, one Generation per image, Pillow format, MIME type), or INVALID_REQUEST."""
        s = self.settings
        prompt = check_prompt(request.prompt, s)
        public = generation_model(request.model)
        if public is None:
            raise invalid(f"unknown model {request.model!r}; use one of {generation_model_names()}", "model")
        role = public.runs_on
        if role not in self.models.roles:
            raise invalid(f"{public.id} is not served by this deployment", "model")
        width, height = (request.width, request.height) if request.width or request.height else DEFAULT_SIZE
        if (width, height) not in SIZES:
            raise invalid(f"image_size {width}x{height} is not supported; use one of {size_names()}", "image_size")
        if width > public.max_width or height > public.max_height:
            raise invalid(f"{public.id} makes images up to {public.max_width}x{public.max_height} (width x height);"
                          f" {width}x{height} is too large for it", "image_size")
        n = check_n(request.n, s)
        defaults = DEFAULTS[role]
        steps = check_steps(request.num_inference_steps if request.HasField("num_inference_steps")
                            else defaults.generation_steps, s, "num_inference_steps")
        guidance = check_guidance(request.guidance_scale if request.HasField("guidance_scale")
                                  else defaults.guidance, s, "guidance_scale")
        negative = check_prompt(request.negative_prompt if request.HasField("negative_prompt")
                                else DEFAULT_NEGATIVE_PROMPT, s, "negative_prompt", required=False)
        seed = check_seed(request.seed if request.HasField("seed") else None)
        pillow_format, mime = self._format(request.output_format)
        if not self.models.uses_cfg(role, guidance):  # the pipeline ignores both: let such requests batch
            guidance, negative = 1.0, ""
        jobs = [Generation(role, prompt, negative, width, height, steps, guidance, image_seed)
                for image_seed in seeds_for(seed, n)]
        return public.id, jobs, pillow_format, mime

    async def _generate(self, request: image_pb2.GenerateImagesRequest,
                        timeout: float | None) -> image_pb2.GenerateImagesResponse:
        public_id, jobs, pillow_format, mime = self.plan_generation(request)
        tasks = [asyncio.ensure_future(self.batcher.submit(job, timeout=timeout)) for job in jobs]
        try:
            images = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one image refused (a full queue) or failed: the others are not wanted
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        encoded = await asyncio.to_thread(self._encode_all, images, pillow_format)
        return image_pb2.GenerateImagesResponse(model=public_id, images=[
            image_pb2.GeneratedImage(data=data, mime_type=mime, width=job.width, height=job.height, seed=job.seed)
            for data, job in zip(encoded, jobs, strict=True)])

    def run_generations(self, jobs: list[Generation]) -> Sequence[Image.Image | BaseException]:
        """The batcher's process step (work thread): one pipeline call for the batch. If the GPU runs out
        of memory on a batch, its images run one at a time instead."""
        try:
            return self.models.generate(jobs)
        except torch.OutOfMemoryError as exc:
            if len(jobs) == 1:
                return [processing_failed(exc)]
            log.warning("out of memory on a batch of %d; running its images one by one", len(jobs))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return [self.run_generations([job])[0] for job in jobs]
        except Exception as exc:
            log.exception("generation batch of %d failed", len(jobs))
            return [processing_failed(exc)] * len(jobs)

    # -- edits --------------------------------------------------------------------------------------

    async def _plan_edit(self, request: image_pb2.EditImagesRequest) -> tuple[Edit, str, str, str]:
        s = self.settings
        prompt = check_prompt(request.prompt, s)
        resolved = edit_model(request.model)
        if resolved is None:
            raise invalid(f"unknown edit model {request.model!r}; use black-forest-labs/FLUX.2-klein-4B (distilled)"
                          " or black-forest-labs/FLUX.2-klein-base-4B (base)", "model")
        public_id, role = resolved
        if role not in self.models.roles:
            raise invalid(f"{public_id} is not served by this deployment", "model")
        count = len(request.input_images)
        if count == 0:
            raise invalid("input_images needs at least one image", "input_images")
        if count > s.max_input_images:
            raise invalid(f"input_images holds {count} images; at most {s.max_input_images} are accepted",
                          "input_images")
        if request.mask and count > 1:
            raise invalid("a mask works with exactly one input image (it masks that image); send one image",
                          "mask")
        n = check_n(request.n, s)
        defaults = DEFAULTS[role]
        steps = check_steps(request.num_steps if request.HasField("num_steps") else defaults.edit_steps, s,
                            "num_steps")
        guidance = check_guidance(request.guidance if request.HasField("guidance") else defaults.guidance, s,
                                  "guidance")
        negative = check_prompt(request.negative_prompt if request.HasField("negative_prompt")
                                else DEFAULT_EDIT_NEGATIVE_PROMPT, s, "negative_prompt", required=False)
        seed = check_seed(request.seed if request.HasField("seed") else None)
        for side in ("width", "height"):
            if request.HasField(side) and not request.match_image_size:
                value = getattr(request, side)
                if not MIN_EDIT_SIDE <= value <= s.max_edit_side:
                    raise invalid(f"{side} must be between {MIN_EDIT_SIDE} and {s.max_edit_side}, got {value}", side)
        pillow_format, mime = self._format(request.output_format)
        for i, data in enumerate(request.input_images):  # byte sizes first: cheap, before any decoding
            if len(data) > s.max_input_image_bytes:
                raise ServiceError(Reason.ERROR_REASON_PAYLOAD_TOO_LARGE,
                                   f"input_images[{i}] is {len(data)} bytes; at most {s.max_input_image_mb:g} MiB "
                                   "per image", param=f"input_images[{i}]")
        images, mask = await asyncio.to_thread(self._decode_inputs, request)
        width, height = self._edit_size(request, images[0].size)
        job = Edit(role, prompt, negative if self.models.uses_cfg(role, guidance) else "", tuple(images), mask,
                   width, height, steps, guidance, seeds_for(seed, n))
        return job, public_id, pillow_format, mime

    def _decode_inputs(self, request: image_pb2.EditImagesRequest) -> tuple[list[Image.Image], Image.Image | None]:
        images = []
        for i, data in enumerate(request.input_images):
            param = f"input_images[{i}]"
            images.append(to_rgb(check_reference(open_image(data, self.settings, param), param), param))
        mask = None
        if request.mask:
            mask = to_mask(open_image(request.mask, self.settings, "mask"), images[0].size)
        return images, mask

    def _edit_size(self, request: image_pb2.EditImagesRequest, first: tuple[int, int]) -> tuple[int, int]:
        """The output size: the first image's with match_image_size, else width/height where given, else
        the first image's scaled down to fit max_edit_side."""
        limit = self.settings.max_edit_side
        if request.match_image_size:
            if max(first) > limit:
                raise invalid(f"match_image_size asks for the first image's size, {first[0]}x{first[1]}, but outputs "
                              f"are at most {limit} on a side; send width and height instead", "match_image_size")
            return first
        scale = min(1.0, limit / max(first))
        width = request.width if request.HasField("width") else max(MIN_EDIT_SIDE, round(first[0] * scale))
        height = request.height if request.HasField("height") else max(MIN_EDIT_SIDE, round(first[1] * scale))
        return width, height

    def run_edit(self, job: Edit) -> list[Image.Image]:
        """The edit on the work thread; a model failure is PROCESSING_FAILED."""
        try:
            return self.models.edit(job)
        except Exception as exc:
            log.exception("edit failed")
            raise processing_failed(exc) from None

    # -- shared -------------------------------------------------------------------------------------

    @staticmethod
    def _format(output_format: int) -> tuple[str, str]:
        if output_format not in MIME_TYPES:
            raise invalid(f"unknown output_format {output_format}", "output_format")
        return MIME_TYPES[output_format]

    def _encode_all(self, images: Sequence[Image.Image], pillow_format: str) -> list[bytes]:
        return [encode(image, pillow_format, self.settings.png_compress_level) for image in images]
