"""The VideoService servicer: checks the request before any work (requests.py), then runs the video on
the bounded WorkQueue, so the GPU makes one video at a time and a full queue answers QUEUE_FULL at once,
before the first stream message.

The stream says where the job is: while it waits for the GPU, "queued" with its queue position (again
each time it moves up); then "encoding prompt" (step 0), "denoising" (step i of the sampling steps,
from the pipeline's step callback), "decoding", "encoding video"; then the result. total_steps is the
sampling steps + 2 (decoding, encoding), so step / total_steps only rises. A caller that goes away
(the edge cancelled the job) stops the denoising loop at its next step; its queue slot is free once the
work thread has returned.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from services.common.errors import ServiceError, model_failed, too_large
from services.common.modality import ModalityServicer
from services.video.backends import ENCODING_VIDEO, Progress, Stopped, VideoBackend, VideoJob
from services.video.catalog import MP4
from services.video.config import VideoSettings
from services.video.frames import encode_mp4, thumbnail_jpeg
from services.video.requests import plan
from univence.common.v1 import common_pb2
from univence.video.v1 import video_pb2, video_pb2_grpc

log = logging.getLogger(__name__)
QUEUED = "queued"
# Room kept in a response message for everything besides the video and its thumbnail.
MESSAGE_OVERHEAD = 64 * 1024


class VideoServicer(ModalityServicer[VideoBackend], video_pb2_grpc.VideoServiceServicer):
    """Serves once `attach` has given it the loaded backend (its engine) and the work queue."""

    settings: VideoSettings

    async def GenerateVideo(self, request: video_pb2.GenerateVideoRequest, context):
        backend = self.engine
        job = await asyncio.to_thread(plan, request, self.settings, profile=self.placement.profile,
                                      backend=backend.name)
        total = job.steps + 2
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[common_pb2.Progress | None] = asyncio.Queue()
        stop = threading.Event()

        def queued(position: int) -> None:  # in the event loop
            events.put_nowait(common_pb2.Progress(step=0, total_steps=total, stage=QUEUED, queue_position=position))

        def report(stage: str, step: int) -> None:  # on the work thread
            loop.call_soon_threadsafe(events.put_nowait,
                                      common_pb2.Progress(step=step, total_steps=total, stage=stage))

        # Counted in the queue from here until the work thread has returned, even if the caller leaves
        # first; a full queue is a call error, before the first message.
        with self.queue.admit():
            work = asyncio.ensure_future(self.queue.execute(self._run, backend, job, Progress(report, stop),
                                                            timeout=context.time_remaining(), on_position=queued))
            work.add_done_callback(lambda _: events.put_nowait(None))
            try:
                while (event := await events.get()) is not None:
                    yield video_pb2.GenerateVideoResponse(progress=event)
                result = work.result()
            finally:
                if not work.done():  # the caller went away: stop the loop at its next step
                    stop.set()
                    work.cancel()
        yield video_pb2.GenerateVideoResponse(result=result)

    # -- work thread --------------------------------------------------------------------------------

    def _run(self, backend: VideoBackend, job: VideoJob, progress: Progress) -> video_pb2.VideoResult:
        """The frames, then the MP4 and its thumbnail; a model failure is PROCESSING_FAILED."""
        settings = self.settings
        try:
            frames = backend.generate(job, progress)
            progress.stage(ENCODING_VIDEO, job.steps + 1)
            video = encode_mp4(frames, fps=settings.fps, crf=settings.crf, preset=settings.preset)
            thumbnail = thumbnail_jpeg(frames[0], quality=settings.thumbnail_quality)
        except Stopped:
            log.info("video generation stopped after %d of %d denoising steps: the caller went away",
                     progress.step, job.steps)
            raise
        except ServiceError:
            raise
        except Exception as exc:
            log.exception("video generation failed")
            raise model_failed("video", exc) from None
        limit = settings.max_message_bytes - MESSAGE_OVERHEAD
        if len(video) + len(thumbnail) > limit:
            raise too_large(f"the video is {len(video) / 2**20:.1f} MiB, more than the {limit / 2**20:.1f} MiB a "
                            "response carries; ask for fewer frames or a lower resolution", "num_frames")
        count, height, width, _ = frames.shape
        return video_pb2.VideoResult(video=video, mime_type=MP4, num_frames=count, fps=float(settings.fps),
                                     width=width, height=height, seed=job.seed, thumbnail=thumbnail)

