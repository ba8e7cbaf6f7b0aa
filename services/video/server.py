"""The video service's definition and process entry point (`python -m services.video`): its parts handed
to the modality layer (services/common/modality.py), which does the loading, warm-up and reporting."""

from __future__ import annotations

from services.common.modality import Placement, modality_definition
from services.common.server import GrpcService, ServiceDefinition, run
from services.video.backends import VideoBackend, load_backend, resolve_backend
from services.video.catalog import model_infos
from services.video.config import VideoSettings
from services.video.requests import limits
from services.video.servicer import VideoServicer
from univence.video.v1 import video_pb2, video_pb2_grpc

NO_GPU = ("the full profile runs Wan2.2 I2V A14B (two 14B experts, about 60 GB in bfloat16) on a CUDA GPU and torch "
          "sees none: run on a GPU machine, or set UNIVENCE_VIDEO_PROFILE=tiny (tiny random models, noise output)")


def definition(settings: VideoSettings) -> ServiceDefinition:
    def backend(p: Placement) -> str:
        return resolve_backend(settings, p.profile, p.device)

    def load(p: Placement) -> VideoBackend:
        return load_backend(settings, p.profile, p.device)

    return modality_definition(
        settings,
        GrpcService.of(video_pb2, video_pb2_grpc, "VideoService", VideoServicer(settings)),
        load=load,
        description=lambda p: f"video models (Wan2.2 I2V on {backend(p)}, {p.profile} profile)",
        models=lambda p: model_infos(settings, p.profile, backend(p)),
        limits=limits(settings),
        no_gpu=NO_GPU,
        warm_up=lambda engine: engine.warm_up(),
    )


def main() -> None:
    run(VideoSettings(), definition)


if __name__ == "__main__":
    main()
