"""The VisionService servicer: checks every request before any work (requests.py), then runs the model
work on the one bounded WorkQueue, so the accelerator runs one call at a time and a full queue answers
QUEUE_FULL at once. A video is one queue item for all its frames; its stream says first what the
input holds (Progress step 0, stage "probed"), before any model work, then a step per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import numpy as np
from PIL import Image

from services.common.errors import ServiceError, model_failed, too_large
from services.common.modality import ModalityServicer
from services.vision import video
from services.vision.catalog import PNG
from services.vision.config import VisionSettings
from services.vision.pipelines import (
    BackgroundRemoval,
    Mask,
    Segmentation,
    Upscale,
    VideoBackgroundRemoval,
    VisionModels,
)
from services.vision.requests import plan_background, plan_segmentation, plan_upscale, plan_video, rejected_video
from univence.common.v1 import common_pb2
from univence.imaging import encode
from univence.vision.v1 import vision_pb2, vision_pb2_grpc

log = logging.getLogger(__name__)
# Room kept in a response message for everything besides its image or video.
MESSAGE_OVERHEAD = 64 * 1024
PROBED, SEGMENTING = "probed", "segmenting"


class Cancelled(Exception):
    """Raised in the frame loop when the caller went away: the work stops at the next frame."""


def stop_if(stop: threading.Event) -> None:
    if stop.is_set():
        raise Cancelled


def mask_png(mask: np.ndarray, png_level: int) -> bytes:
    """A mask as an 8-bit greyscale PNG: 255 (white) = object, 0 = background."""
    return encode(Image.fromarray(mask, "L"), "PNG", png_level)


class VisionServicer(ModalityServicer[VisionModels], vision_pb2_grpc.VisionServiceServicer):
    """Serves once `attach` has given it the loaded models (its engine) and the work queue."""

    settings: VisionSettings

    @property
    def models(self) -> VisionModels:
        return self.engine

    # -- RPCs ---------------------------------------------------------------------------------------

    async def SegmentImage(self, request: vision_pb2.SegmentImageRequest, context) -> vision_pb2.SegmentImageResponse:
        job = await asyncio.to_thread(plan_segmentation, request, self.settings, self.models)
        masks: list[Mask] = await self.queue.run(self._guarded, self.models.segment, job,
                                                 timeout=context.time_remaining())
        encoded = await asyncio.to_thread(lambda: [mask_png(m.mask, self.settings.png_compress_level) for m in masks])
        response = vision_pb2.SegmentImageResponse(mask=encoded[0], width=job.image.width, height=job.image.height,
                                                   mime_type=PNG)
        if job.multimask:
            response.candidate_masks.extend(encoded)
            response.scores.extend(m.score for m in masks)
        return response

    async def UpscaleImage(self, request: vision_pb2.UpscaleImageRequest, context) -> vision_pb2.UpscaleImageResponse:
        job, pillow_format, mime = await asyncio.to_thread(plan_upscale, request, self.settings, self.models)
        stop = threading.Event()

        def upscale(job: Upscale):  # a caller that goes away stops the tiles at the next one
            return self.models.upscale(job, on_tile=lambda done, total: stop_if(stop))

        try:
            image = await self.queue.run(self._guarded, upscale, job, timeout=context.time_remaining())
        except asyncio.CancelledError:
            stop.set()
            raise
        data = self._fits(await asyncio.to_thread(encode, image, pillow_format, self.settings.png_compress_level),
                          "image", "ask for JPEG or WebP, or send a smaller image")
        return vision_pb2.UpscaleImageResponse(image=data, mime_type=mime, width=image.width, height=image.height)

    async def RemoveImageBackground(self, request: vision_pb2.RemoveImageBackgroundRequest,
                                    context) -> vision_pb2.RemoveImageBackgroundResponse:
        job = await asyncio.to_thread(plan_background, request, self.settings, self.models)
        image = await self.queue.run(self._guarded, self.models.remove_background, job,
                                     timeout=context.time_remaining())
        data = self._fits(await asyncio.to_thread(encode, image, "PNG", self.settings.png_compress_level),
                          "image", "send a smaller image")
        return vision_pb2.RemoveImageBackgroundResponse(image=data, width=image.width, height=image.height,
                                                        mime_type=PNG)

    async def RemoveVideoBackground(self, request: vision_pb2.RemoveVideoBackgroundRequest, context):
        """Progress step 0 of total_steps = frames, stage "probed", once the video is checked and before
        any model work (the edge reserves credits for every frame from it); a step per frame; then the
        result. A caller that goes away stops the frame loop at the next frame."""
        job = await asyncio.to_thread(plan_video, request, self.settings, self.models)
        total = job.info.frame_count
        loop = asyncio.get_running_loop()
        steps: asyncio.Queue[int | None] = asyncio.Queue()
        stop = threading.Event()

        def on_frame(done: int, _total: int) -> None:  # on the work thread
            stop_if(stop)
            loop.call_soon_threadsafe(steps.put_nowait, done)

        # Counted in the queue from here until the frame loop has stopped, even if the caller leaves
        # first; a full queue is a call error, before the first message.
        admitted = contextlib.ExitStack()
        admitted.enter_context(self.queue.admit())
        work: asyncio.Future[video.Result] | None = None
        try:
            yield vision_pb2.RemoveVideoBackgroundResponse(
                progress=common_pb2.Progress(step=0, total_steps=total, stage=PROBED))
            # Not cancelled when the caller leaves: it keeps its work slot until the thread has stopped.
            work = asyncio.ensure_future(self.queue.execute(self._run_video, job, on_frame,
                                                            timeout=context.time_remaining()))
            work.add_done_callback(lambda _: steps.put_nowait(None))
            work.add_done_callback(lambda _: admitted.close())
            while (step := await steps.get()) is not None:
                yield vision_pb2.RemoveVideoBackgroundResponse(
                    progress=common_pb2.Progress(step=step, total_steps=total, stage=SEGMENTING))
            result = work.result()
        finally:
            if work is None:
                admitted.close()
            elif not work.done():
                stop.set()
                work.add_done_callback(lambda task: task.cancelled() or task.exception())
        data = self._fits(result.data, "video", "send a shorter or smaller video")
        yield vision_pb2.RemoveVideoBackgroundResponse(result=vision_pb2.VideoBackgroundResult(
            video=data, total_frames=result.frames, frames_with_object=result.frames_with_object,
            fps=float(result.fps), mime_type="video/webm", has_audio=result.has_audio))

    # -- work thread --------------------------------------------------------------------------------

    @staticmethod
    def _guarded(fn, job: Segmentation | Upscale | BackgroundRemoval):
        """`fn(job)` on the work thread; a model failure is PROCESSING_FAILED."""
        try:
            return fn(job)
        except (ServiceError, Cancelled):
            raise
        except Exception as exc:
            log.exception("%s failed", getattr(fn, "__name__", "vision work"))
            raise model_failed("vision", exc) from None

    def _run_video(self, job: VideoBackgroundRemoval, on_frame) -> video.Result:
        try:
            return self.models.remove_video_background(job, on_frame)
        except Cancelled:
            log.info("video background removal stopped: the caller went away")
            raise
        except video.VideoError as exc:  # a file whose packets looked whole but do not decode
            raise rejected_video(exc) from None
        except Exception as exc:
            log.exception("video background removal failed")
            raise model_failed("vision", exc) from None

    def _fits(self, data: bytes, param: str, advice: str) -> bytes:
        """The encoded result, or PAYLOAD_TOO_LARGE when it would not fit in one gRPC message."""
        limit = self.settings.max_message_bytes - MESSAGE_OVERHEAD
        if len(data) > limit:
            raise too_large(f"the result is {len(data) / 2**20:.1f} MiB, more than the {limit / 2**20:.1f} MiB a "
                            f"response carries; {advice}", param)
        return data
