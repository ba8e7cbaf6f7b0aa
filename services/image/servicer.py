"""The ImageService servicer: checks every request before any work, then runs generations through the
batcher (compatible images share one pipeline call) and edits straight on the work queue.

Both go through one bounded WorkQueue, so the GPU runs one call at a time and a full queue answers
QUEUE_FULL (RESOURCE_EXHAUSTED) at once. Each image of a request is one queue item.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import torch
from PIL import Image

from services.common.errors import ServiceError, invalid, model_failed
from services.common.modality import ModalityServicer, Placement
from services.common.workqueue import Batcher
from services.image.catalog import MAX_BATCH_REQUESTS
from services.image.config import ImageSettings
from services.image.pipelines import Edit, Generation, KleinPipelines
from services.image.requests import plan_edit, plan_generation
from univence.image.v1 import image_pb2, image_pb2_grpc
from univence.imaging import encode

log = logging.getLogger(__name__)


class ImageServicer(ModalityServicer[KleinPipelines], image_pb2_grpc.ImageServiceServicer):
    """Serves once `attach` has given it the loaded pipelines (its engine) and the work queue."""

    settings: ImageSettings
    batcher: Batcher[Generation, Image.Image]

    @property
    def models(self) -> KleinPipelines:
        return self.engine

    def attach(self, engine: KleinPipelines, placement: Placement) -> None:
        self.batcher = Batcher(placement.queue, self.run_generations, max_batch_size=self.settings.max_batch_size,
                               max_wait_s=self.settings.max_batch_wait_ms / 1000, key=lambda job: job.batch_key)
        super().attach(engine, placement)

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
                error = model_failed("image", exc)
            return image_pb2.BatchItemResult(error=error.status(param_prefix=f"requests[{index}]."))

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
        """(public model id, one Generation per image, Pillow format, MIME type): see requests.py."""
        return plan_generation(request, self.settings, self.models)

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
                return [model_failed("image", exc)]
            log.warning("out of memory on a batch of %d; running its images one by one", len(jobs))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return [self.run_generations([job])[0] for job in jobs]
        except Exception as exc:
            log.exception("generation batch of %d failed", len(jobs))
            return [model_failed("image", exc)] * len(jobs)

    # -- edits --------------------------------------------------------------------------------------

    async def _plan_edit(self, request: image_pb2.EditImagesRequest) -> tuple[Edit, str, str, str]:
        """(the Edit, public model id, Pillow format, MIME type): see requests.py (decodes: in a thread)."""
        return await asyncio.to_thread(plan_edit, request, self.settings, self.models)

    def run_edit(self, job: Edit) -> list[Image.Image]:
        """The edit on the work thread; a model failure is PROCESSING_FAILED."""
        try:
            return self.models.edit(job)
        except Exception as exc:
            log.exception("edit failed")
            raise model_failed("image", exc) from None

    # -- shared -------------------------------------------------------------------------------------

    def _encode_all(self, images: Sequence[Image.Image], pillow_format: str) -> list[bytes]:
        return [encode(image, pillow_format, self.settings.png_compress_level) for image in images]
