"""The image service's definition and process entry point (`python -m services.image`)."""

from __future__ import annotations

import asyncio
import logging

from services.common.devices import resolve_device, resolve_profile
from services.common.server import GrpcService, ServiceDefinition, run
from services.common.workqueue import WorkQueue
from services.image.config import ImageSettings
from services.image.models import GENERATION_MODELS
from services.image.pipelines import KleinPipelines, ModelLoadError, load_pipelines
from services.image.servicer import ImageServicer
from univence.common.v1 import common_pb2
from univence.image.v1 import image_pb2, image_pb2_grpc

log = logging.getLogger(__name__)
NO_GPU = ("the full profile runs FLUX.2 klein 4B on a CUDA GPU (about 13 GB of GPU memory per model) and torch "
          "sees none: run on a GPU machine, or set UNIVENCE_IMAGE_PROFILE=tiny (tiny random models, noise output), "
          "or UNIVENCE_IMAGE_DEVICE=cpu to run the real models on the CPU (minutes per image)")


def model_infos(models: KleinPipelines) -> list[common_pb2.ModelInfo]:
    """The public models this deployment serves, with the weights behind each."""
    return [common_pb2.ModelInfo(id=m.id, aliases=list(m.aliases), task=m.task, source=models.sources[m.runs_on])
            for m in GENERATION_MODELS if m.runs_on in models.roles]


def definition(settings: ImageSettings) -> ServiceDefinition:
    """Models load in `load` (a thread), so health reports NOT_SERVING until they are ready; a model that
    cannot load leaves the service up, answering MODEL_UNAVAILABLE with the reason."""
    servicer = ImageServicer(settings)
    problem = None
    try:
        profile, device = resolve_profile(settings.profile), resolve_device(settings.device)
    except (ValueError, RuntimeError) as exc:
        profile, device, problem = settings.profile, settings.device, str(exc)
    if problem is None and profile == "full" and device == "cpu" and settings.device == "auto":
        problem = NO_GPU
    queues: list[WorkQueue] = []

    async def load() -> None:
        if problem:
            raise ModelLoadError(problem)
        models = await asyncio.to_thread(load_pipelines, settings, profile, device)
        if settings.warmup:
            await asyncio.to_thread(models.warm_up)
        queue = WorkQueue("image", max_pending=settings.queue_max_pending, concurrency=settings.queue_concurrency)
        queues.append(queue)
        servicer.attach(models, queue)
        service.models[:] = model_infos(models)
        if profile == "tiny":
            log.warning("image: tiny profile - random weights, every image is noise (by design)")

    async def close() -> None:
        while queues:
            queues.pop().close()

    served = "FLUX.2 klein 4B" + (" + base" if settings.base_model else "")
    service = ServiceDefinition(
        name="image",
        services=[GrpcService.of(image_pb2, image_pb2_grpc, "ImageService", servicer)],
        load=load,
        close=close,
        description=f"image models ({served}, {profile} profile)",
        profile=profile,
        device=device,
    )
    return service


def main() -> None:
    run(ImageSettings(), definition)


if __name__ == "__main__":
    main()
