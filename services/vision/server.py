"""The vision service's definition and process entry point (`python -m services.vision`): its parts handed
to the modality layer (services/common/modality.py), which does the loading, warm-up and reporting."""

from __future__ import annotations

from services.common.modality import Placement, modality_definition
from services.common.server import GrpcService, ServiceDefinition, run
from services.vision.catalog import model_infos
from services.vision.config import VisionSettings
from services.vision.pipelines import VisionModels, load_models
from services.vision.requests import limits
from services.vision.servicer import VisionServicer
from univence.vision.v1 import vision_pb2, vision_pb2_grpc

NO_GPU = ("the full profile runs SAM3 (about 3.3 GB) and the upscalers on a CUDA GPU and torch sees none: run on a GPU "
          "machine, or set UNIVENCE_VISION_PROFILE=tiny (tiny random models, noise output; Lanczos is real), or "
          "UNIVENCE_VISION_DEVICE=cpu to run the real models on the CPU (seconds per image, slow for video)")


def definition(settings: VisionSettings) -> ServiceDefinition:
    def load(placement: Placement) -> VisionModels:
        return load_models(settings, placement.profile, placement.device)

    return modality_definition(
        settings,
        GrpcService.of(vision_pb2, vision_pb2_grpc, "VisionService", VisionServicer(settings)),
        load=load,
        description=lambda p: f"vision models (SAM3, Real-ESRGAN, Swin2SR, {p.profile} profile)",
        models=lambda p: model_infos(settings, p.profile),
        limits=limits(settings),
        no_gpu=NO_GPU,
        warm_up=VisionModels.warm_up,
    )


def main() -> None:
    run(VisionSettings(), definition)


if __name__ == "__main__":
    main()
