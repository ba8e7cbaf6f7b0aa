"""The image service's definition and process entry point (`python -m services.image`): its parts handed
to the modality layer (services/common/modality.py), which does the loading, warm-up and reporting."""

from __future__ import annotations

from services.common.modality import Placement, modality_definition
from services.common.server import GrpcService, ServiceDefinition, run
from services.image.catalog import model_infos
from services.image.config import ImageSettings
from services.image.pipelines import KleinPipelines, load_pipelines
from services.image.requests import limits
from services.image.servicer import ImageServicer
from univence.image.v1 import image_pb2, image_pb2_grpc

NO_GPU = ("the full profile runs FLUX.2 klein 4B on a CUDA GPU (about 13 GB of GPU memory per model) and torch "
          "sees none: run on a GPU machine, or set UNIVENCE_IMAGE_PROFILE=tiny (tiny random models, noise output), "
          "or UNIVENCE_IMAGE_DEVICE=cpu to run the real models on the CPU (minutes per image)")


def definition(settings: ImageSettings) -> ServiceDefinition:
    def load(placement: Placement) -> KleinPipelines:
        return load_pipelines(settings, placement.profile, placement.device)

    served = "FLUX.2 klein 4B" + (" + base" if settings.base_model else "")
    return modality_definition(
        settings,
        GrpcService.of(image_pb2, image_pb2_grpc, "ImageService", ImageServicer(settings)),
        load=load,
        description=lambda p: f"image models ({served}, {p.profile} profile)",
        models=lambda p: model_infos(settings, p.profile),
        limits=limits(settings),
        no_gpu=NO_GPU,
        warm_up=KleinPipelines.warm_up,
    )


def main() -> None:
    run(ImageSettings(), definition)


if __name__ == "__main__":
    main()
