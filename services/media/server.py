"""The media service's definition and process entry point (`python -m services.media`)."""

from __future__ import annotations

import asyncio
import logging

from services.common.server import GrpcService, ServiceDefinition, run
from services.common.workqueue import WorkQueue
from services.media.config import MediaSettings
from services.media.index import MediaIndex
from services.media.jobs import JobStore
from services.media.servicer import MediaServicer
from services.media.storage import FilesystemBlobStore
from services.media.transcode import TranscodeCache, Transcoder
from univence.media.v1 import media_pb2, media_pb2_grpc

log = logging.getLogger(__name__)


def definition(settings: MediaSettings) -> ServiceDefinition:
    """The store and index open in `load` (migrations included), so health reports NOT_SERVING until
    the database is reachable and its schema current."""
    servicer = MediaServicer(settings)
    opened: list[MediaIndex | Transcoder] = []
    sweeps: list[asyncio.Task] = []

    async def load() -> None:
        store = await asyncio.to_thread(FilesystemBlobStore, settings.root)
        index = await asyncio.to_thread(MediaIndex.open, settings.index_url)
        opened.append(index)
        queue = WorkQueue("media-transcode", max_pending=settings.queue_max_pending,
                          concurrency=settings.queue_concurrency)
        cache = TranscodeCache(settings.transcode_cache_mb * 1024 * 1024, settings.transcode_ttl_seconds)
        transcoder = Transcoder(queue, cache, settings.max_transcode_pixels)
        opened.append(transcoder)
        servicer.attach(store, index, transcoder)
        servicer.jobs = await asyncio.to_thread(JobStore.on, index.engine)
        sweeps.append(asyncio.create_task(servicer.sweep_forever(), name="media-job-sweep"))
        log.info("media store at %s, index %s", store.root, index.engine.url.render_as_string())

    async def close() -> None:
        for task in sweeps:
            task.cancel()
        while opened:
            opened.pop().close()

    return ServiceDefinition(
        name="media",
        services=[GrpcService.of(media_pb2, media_pb2_grpc, "MediaService", servicer)],
        load=load,
        close=close,
        description=f"media store ({settings.root})",
    )


def main() -> None:
    run(MediaSettings(), definition)


if __name__ == "__main__":
    main()
