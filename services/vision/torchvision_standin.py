"""Importing the two modules that name torchvision at import time, on machines without torchvision.

- `spandrel` 0.4 builds its architecture registry when the package is imported, and two architectures
  we never load (LaMa, RestoreFormer) do `from torchvision.transforms.functional import ...` at module
  level; ESRGAN and Compact (Real-ESRGAN) are pure torch.
- `transformers.models.sam3.image_processing_sam3` imports `torchvision.ops.boxes.batched_nms` at the
  top, yet the post-processing we call on it (`post_process_instance_segmentation`,
  `post_process_masks`) is pure torch (NMS serves automatic mask generation only).

torchvision has no CPU build here and must not be installed, so while such a module is imported,
stand-in modules sit under the torchvision names. Their attributes are placeholders that raise
ModuleNotFoundError when used, so a code path that really needs torchvision fails loudly instead of
computing something wrong. Where torchvision is installed (GPU machines) nothing is touched.

The stand-ins live only for the import: afterwards the names leave `sys.modules`, so `import torchvision`
fails again, and transformers' cached `is_torchvision_available()` is asked first (while the truth is
visible) so it keeps answering False. The window is process-wide: the service opens it once, while it
loads its models, before it serves.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

_LOCK = threading.Lock()


class _InterpolationMode(enum.Enum):
    """torchvision.transforms.InterpolationMode's members, read by class bodies at import time."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


class _Missing:
    """A torchvision object's placeholder: attribute access chains, any use raises."""

    def __init__(self, qualname: str, reason: str):
        self._qualname, self._reason = qualname, reason

    def _fail(self) -> ModuleNotFoundError:
        return ModuleNotFoundError(f"torchvision is not installed: {self._qualname} is a stand-in registered so that "
                                   f"{self._reason} could be imported; the code path that needs it is unavailable")

    def __getattr__(self, name: str) -> _Missing:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(f"{self._qualname}.{name}", self._reason)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise self._fail()

    def __bool__(self) -> bool:
        raise self._fail()

    def __repr__(self) -> str:
        return f"<torchvision stand-in {self._qualname}>"


class _StandInModule(types.ModuleType):
    def __init__(self, name: str, reason: str):
        super().__init__(name, f"stand-in for {name} (torchvision is not installed)")
        self.__path__: list[str] = []  # a package, so submodule imports resolve
        self.__spec__ = None
        self._standin_reason = reason
        if name in ("torchvision.transforms", "torchvision.transforms.functional"):
            self.InterpolationMode = _InterpolationMode

    def __getattr__(self, name: str) -> _Missing:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(f"{self.__name__}.{name}", self._standin_reason)


def torchvision_missing() -> bool:
    module = sys.modules.get("torchvision")
    if module is not None:
        return isinstance(module, _StandInModule)
    return importlib.util.find_spec("torchvision") is None


@contextmanager
def torchvision_stand_ins(modules: Sequence[str], reason: str) -> Iterator[bool]:
    """Stand-ins for `modules` (dotted torchvision names; their parents too) during the block. Yields
    True when they were put in, False when the real torchvision is there and nothing was done."""
    if not torchvision_missing():
        yield False
        return
    names = {".".join(full.split(".")[:i + 1]) for full in modules for i in range(full.count(".") + 1)}
    with _LOCK:
        from transformers.utils import import_utils

        import_utils.is_torchvision_available()  # cached while the truth is visible
        installed: dict[str, _StandInModule] = {}
        for name in sorted(names, key=lambda n: n.count(".")):
            if name in sys.modules:
                continue
            installed[name] = sys.modules[name] = _StandInModule(name, reason)
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, installed[name])
        try:
            yield True
        finally:
            for name, module in installed.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]


def import_with_stand_ins(module: str, stand_ins: Sequence[str]) -> types.ModuleType:
    """`module`, imported with torchvision stand-ins in place where torchvision is missing."""
    if module in sys.modules:
        return sys.modules[module]
    with torchvision_stand_ins(stand_ins, reason=module):
        return importlib.import_module(module)


def import_spandrel() -> types.ModuleType:
    """spandrel, importable without torchvision (see the module docstring). spandrel is installed with
    `pip install --no-deps` because its metadata requires torchvision; what it really needs is torch,
    safetensors, numpy, einops and typing_extensions."""
    return import_with_stand_ins("spandrel", ["torchvision.transforms.functional"])


def sam3_image_processing() -> types.ModuleType:
    """transformers' SAM3 image-processing module, for its pure-torch post-processing."""
    return import_with_stand_ins("transformers.models.sam3.image_processing_sam3", ["torchvision.ops.boxes"])
