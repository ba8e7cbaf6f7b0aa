"""SAM3 through transformers without torchvision: text prompts on Sam3Model, points on
Sam3TrackerModel; the preprocessing written here, the post-processing the library's own.

What needs torchvision in transformers 5.24, and how this avoids it:
- Sam3ImageProcessor (and so Sam3Processor, Sam3TrackerProcessor, Sam3VideoProcessor, which wrap it) is
  a torchvision-backed processor: none can be built. `preprocess` reproduces it (RGB, resize to the
  model's square input bilinear with antialias ignoring the aspect, /255, mean = std = 0.5) and
  `scale_points` the tracker processor's point normalisation (x * S / W, y * S / H).
- The post-processing methods live on that class but are pure torch: its module is imported with
  torchvision stand-ins (torchvision_standin.py) and the methods are called on an instance made with
  `__new__` (its `__init__` would set up the torchvision backend); they read no instance state.
- Sam3Model's box prompts call torchvision.ops.roi_align: boxes are not offered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from services.vision.torchvision_standin import sam3_image_processing

# Sam3Processor pads text to this many tokens.
TEXT_LENGTH = 32


def library_postprocessor() -> Any:
    """A Sam3ImageProcessor without __init__, used only for its pure-torch post-processing."""
    cls = sam3_image_processing().Sam3ImageProcessor
    return cls.__new__(cls)


def resize_uint8(chw: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear antialiased resize of a uint8 (3, H, W) tensor exactly as torchvision's tensor resize
    does it on a CPU (the path Sam3ImageProcessor takes): the native uint8 kernel where the CPU has
    AVX2, float32 and rounding otherwise. torch has both kernels itself."""
    if tuple(chw.shape[-2:]) == (size, size):
        return chw
    x = chw[None]
    if "AVX2" in torch.backends.cpu.get_cpu_capability():
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.round_().to(torch.uint8)[0]


def preprocess(rgb: np.ndarray, size: int) -> torch.Tensor:
    """A uint8 HxWx3 image as SAM3's pixel_values (1, 3, size, size), as Sam3ImageProcessor makes them:
    resized ignoring the aspect, then (x - 0.5 * 255) / (0.5 * 255), the fused rescale and normalize."""
    if not rgb.flags.writeable or not rgb.flags.c_contiguous:  # torch wants its own writable memory
        rgb = np.array(rgb, order="C")
    chw = resize_uint8(torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), size)
    return ((chw.float() - 127.5) / 127.5)[None].contiguous()


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """The processor's convert_rgb: alpha dropped, palette, grey and CMYK converted (a writable copy)."""
    return np.array(image if image.mode == "RGB" else image.convert("RGB"))


def scale_points(points: Sequence[tuple[float, float]], original_size: tuple[int, int], size: int) -> torch.Tensor:
    """Pixel coordinates to model input coordinates (x * S / W, y * S / H), shaped (1, 1, N, 2)
    (image, object, point, xy) as Sam3TrackerProcessor returns them."""
    h, w = original_size
    t = torch.tensor(points, dtype=torch.float32).reshape(-1, 2)
    t[:, 0] *= size / w
    t[:, 1] *= size / h
    return t[None, None]


def alpha_of(soft: np.ndarray) -> np.ndarray:
    """A mask probability as 8-bit alpha, rounding halves down: alpha >= 128 exactly where the probability
    is above 0.5, i.e. where the binary mask (at the default mask_threshold) is white. Upsampled saturated
    masks hit 0.5 exactly at their edges, where plain rounding would disagree with the mask."""
    return np.clip(np.ceil(soft.astype(np.float64) * 255.0 - 0.5), 0, 255).astype(np.uint8)


@dataclass
class TextMask:
    """What a text prompt selects in one image, at the image's size."""

    # uint8 HxW, 255 = object: the library's thresholded masks of the instances kept.
    mask: np.ndarray
    # float32 HxW in [0, 1]: the highest instance probability per pixel (alpha with soft edges);
    # soft > mask_threshold is exactly `mask`.
    soft: np.ndarray
    # The kept instances' scores, highest first.
    scores: list[float]

    @property
    def found(self) -> bool:
        return bool(self.scores)


@dataclass
class PointMask:
    """One candidate mask for a set of points."""

    mask: np.ndarray  # uint8 HxW, 255 = object
    soft: np.ndarray  # float32 HxW in [0, 1]
    score: float  # the model's predicted IoU


class TextSegmenter:
    """Sam3Model and its CLIP tokenizer: every instance of a concept ("person") in an image."""

    def __init__(self, model: Any, tokenizer: Any, device: str, *, threshold: float, mask_threshold: float):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device
        self.size = int(model.config.image_size)
        self.dtype = next(model.parameters()).dtype
        self.threshold, self.mask_threshold = threshold, mask_threshold
        self._post = library_postprocessor()

    def _text(self, prompt: str, batch: int) -> dict[str, torch.Tensor]:
        """Sam3Processor's text call: padded to 32 tokens, once per image of the batch."""
        enc = self.tokenizer([prompt] * batch, padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    @torch.inference_mode()
    def raw(self, frames: Sequence[np.ndarray], prompt: str) -> Any:
        """The model's output for RGB frames (one batch) and a prompt, on the CPU in float32."""
        pixels = torch.cat([preprocess(rgb, self.size) for rgb in frames]).to(self.device, self.dtype)
        out = self.model(pixel_values=pixels, **self._text(prompt, len(frames)))
        for key, value in out.items():
            if isinstance(value, torch.Tensor):
                out[key] = value.float().cpu()
        return out

    def segment(self, frames: Sequence[np.ndarray], prompt: str, *, best_only: bool = False) -> list[TextMask]:
        """Per RGB frame (one model call for all), the instances scoring above the threshold, combined
        into one mask at the frame's size: all of them, or with `best_only` the highest-scoring one."""
        out = self.raw(frames, prompt)
        sizes = [rgb.shape[:2] for rgb in frames]
        results = self._post.post_process_instance_segmentation(
            out, threshold=self.threshold, mask_threshold=self.mask_threshold, target_sizes=sizes)
        scores_all = out.pred_logits.sigmoid()
        if out.presence_logits is not None:  # the library's instance score
            scores_all = scores_all * out.presence_logits.sigmoid()
        masks = []
        for i, (result, (h, w)) in enumerate(zip(results, sizes, strict=True)):
            if len(result["scores"]) == 0:
                masks.append(TextMask(np.zeros((h, w), np.uint8), np.zeros((h, w), np.float32), []))
                continue
            order = torch.argsort(result["scores"], descending=True)
            pick = order[:1] if best_only else order
            binary = result["masks"][pick].amax(0).to(torch.uint8) * 255
            # The soft alpha: the library's own steps (sigmoid, bilinear to the target size) without its
            # final threshold, so soft > mask_threshold reproduces `binary` exactly.
            keep = torch.nonzero(scores_all[i] > self.threshold).flatten()[pick]
            soft = F.interpolate(out.pred_masks[i].sigmoid()[keep][None], size=(h, w), mode="bilinear",
                                 align_corners=False)[0].amax(0)
            masks.append(TextMask(binary.numpy(), soft.numpy().astype(np.float32),
                                  [float(s) for s in result["scores"][pick]]))
        return masks


class PointSegmenter:
    """Sam3TrackerModel: the object around foreground points (and away from background ones)."""

    def __init__(self, model: Any, device: str, *, mask_threshold: float):
        self.model = model.eval()
        self.device = device
        self.size = int(model.config.image_size)
        self.dtype = next(model.parameters()).dtype
        self.mask_threshold = mask_threshold
        self._post = library_postprocessor()

    @torch.inference_mode()
    def segment(self, rgb: np.ndarray, points: Sequence[tuple[float, float]], labels: Sequence[int], *,
                multimask_output: bool) -> list[PointMask]:
        """Candidate masks at the image's size, best predicted IoU first: 3 with multimask_output, else 1."""
        size = rgb.shape[:2]
        out = self.model(pixel_values=preprocess(rgb, self.size).to(self.device, self.dtype),
                         input_points=scale_points(points, size, self.size).to(self.device, self.dtype),
                         input_labels=torch.tensor([[list(labels)]], dtype=torch.long, device=self.device),
                         multimask_output=multimask_output)
        logits = out.pred_masks[0].float().cpu()  # (objects = 1, candidates, h, w)
        # post_process_masks compares logits to its threshold; the probability threshold as a logit:
        logit_threshold = float(np.log(self.mask_threshold / (1 - self.mask_threshold)))
        binary = self._post.post_process_masks([logits], [size], mask_threshold=logit_threshold, binarize=True)[0][0]
        upscaled = self._post.post_process_masks([logits], [size], binarize=False)[0][0]
        ious = out.iou_scores[0, 0].float().cpu()
        return [PointMask(binary[i].to(torch.uint8).numpy() * 255, upscaled[i].sigmoid().numpy().astype(np.float32),
                          float(ious[i])) for i in torch.argsort(ious, descending=True).tolist()]
