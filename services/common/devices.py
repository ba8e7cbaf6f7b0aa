"""Model profile and device selection, decided once at start and logged."""

from __future__ import annotations

import importlib.util
import logging

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


def resolve_device(setting: str) -> str:
    """`cpu`, `cuda` or `cuda:N`; `auto` picks cuda when there is one. A missing GPU asked for is an error."""
    if setting == "auto":
        return "cuda" if cuda_available() else "cpu"
    if setting.startswith("cuda") and not cuda_available():
        raise RuntimeError(f"device {setting!r} was asked for, but no CUDA GPU is visible to torch; "
                           "set device = \"cpu\" (and profile = \"tiny\") or run on a GPU machine")
    return setting
