"""The LLM service's definition and process entry point (`python -m services.llm`): its parts handed to
the modality layer (services/common/modality.py), which does the loading and reporting."""

from __future__ import annotations

import logging

from services.common.modality import Placement, modality_definition
from services.common.server import GrpcService, ServiceDefinition, run
from services.llm.backends.base import Backend
from services.llm.backends.loading import choose_backend, load_backend
from services.llm.catalog import model_infos, served_name
from services.llm.config import LlmSettings
from services.llm.requests import limits
from services.llm.servicer import ChatServicer
from univence.llm.v1 import llm_pb2, llm_pb2_grpc

log = logging.getLogger(__name__)


def definition(settings: LlmSettings) -> ServiceDefinition:
    """A configured GGUF file is real weights: it is served (profile full) whatever profile the stack
    picked, so a CPU machine without a GPU chats for real."""

    def describe(p: Placement) -> str:
        return f"chat model {served_name(settings, p.profile)} ({choose_backend(settings, p.profile, p.device)}, " \
               f"{p.profile})"

    async def load(placement: Placement) -> Backend:
        backend = await load_backend(settings, placement)
        log.info("llm: %s on %s with %s (profile %s), context %d tokens, images %s",
                 served_name(settings, placement.profile), placement.device, backend.name, placement.profile,
                 backend.max_model_len, "yes" if backend.supports_images else "no")
        return backend

    return modality_definition(
        settings,
        GrpcService.of(llm_pb2, llm_pb2_grpc, "ChatService", ChatServicer(settings)),
        load=load,
        description=describe,
        models=lambda p: model_infos(settings, p.profile),
        limits=limits(settings),
        profile="full" if settings.gguf_path else None,
        close=lambda backend: backend.close(),
    )


def main() -> None:
    run(LlmSettings(), definition)


if __name__ == "__main__":
    main()
