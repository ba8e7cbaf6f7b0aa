"""Model profile and device selection, decided once at start and logged."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (False without torch: nothing to run on)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def resolve_profile(setting: str) -> str:
    """`full` or `tiny`: `auto` means full on a CUDA machine and tiny otherwise."""
    if setting in ("full", "tiny"):
        return setting
    if setting != "auto":
        raise ValueError(f"unknown profile {setting!r}: use full, tiny or auto")
    profile = "full" if cuda_available() else "tiny"
    log.info("profile auto -> %s (%s)", profile, "CUDA found" if profile == "full" else "no CUDA GPU")
    return profile


def cuda_count() -> int:
    """CUDA devices torch sees (0 without torch)."""
    if not cuda_available():
        return 0
    import torch

    return torch.cuda.device_count()


def resolve_device(setting: str) -> str:
    """`cpu`, `cuda` or `cuda:N`; `auto` picks cuda when there is one. A value that is none of these, or
    a GPU that is not there, is a ValueError that says what to set instead."""
    if setting == "auto":
        return "cuda" if cuda_available() else "cpu"
    kind, _, index = setting.partition(":")
    if setting == "cpu":
        return setting
    if kind != "cuda" or not (index == "" or index.isdigit()) or setting.endswith(":"):
        raise ValueError(f"unknown device {setting!r}: use auto, cpu, cuda or cuda:N")
    count = cuda_count()
    if count == 0:
        raise ValueError(f"device {setting!r} was asked for, but no CUDA GPU is visible to torch; "
                         "set device = \"cpu\" (and profile = \"tiny\") or run on a GPU machine")
    if index and int(index) >= count:
        raise ValueError(f"device {setting!r} was asked for, but torch sees {count} CUDA GPU(s) "
                         f"(cuda:0 to cuda:{count - 1}); set device to one of them, or to cuda or auto")
    return setting


def model_dtype(setting: str, profile: str, device: str) -> torch.dtype:
    """The weights' dtype for a `dtype` setting (`auto`, `bfloat16`, `float16`, `float32`): `auto` is
    bfloat16 for the full profile on CUDA and float32 otherwise (tiny models and CPUs)."""
    import torch

    if setting == "auto":
        return torch.bfloat16 if profile == "full" and device.startswith("cuda") else torch.float32
    if setting not in ("bfloat16", "float16", "float32"):
        raise ValueError(f"unknown dtype {setting!r}: use auto, bfloat16, float16 or float32")
    return getattr(torch, setting)


def looks_like_path(model: str) -> bool:
    """True when a model setting names a local path (absolute, relative or an existing one), not a hub id."""
    return model.startswith(("/", "./", "../", "~")) or Path(model).expanduser().exists()


def local_model(model: str, marker: str, what: str, what_to_do: str, *, kind: str = "model") -> str:
    """`model` as from_pretrained takes it: a hub id unchanged, a local path expanded and checked to be a
    model folder (holding `marker`, e.g. model_index.json), else a ModelLoadError naming `what` ("the video
    model"), the folder's `kind` ("diffusers pipeline") and `what_to_do` - so a wrong path says so instead
    of a hub lookup error."""
    from services.common.errors import ModelLoadError

    if not looks_like_path(model):
        return model
    folder = Path(model).expanduser()
    if not (folder / marker).is_file():
        raise ModelLoadError(f"cannot load {what} {model!r}: {folder} is not a {kind} folder (no {marker}); "
                             f"{what_to_do}")
    return str(folder)


def first_line(exc: BaseException) -> str:
    """An exception's first line (its type's name when it has no message), for one-line load errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
