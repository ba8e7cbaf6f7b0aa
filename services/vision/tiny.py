"""The tiny profile: the real classes from tiny configs with random weights, built offline in seconds.

- SAM3: transformers' Sam3Model (text prompts) and Sam3TrackerModel (points) from the configs of
  transformers' own tests (ViT hidden 32, 2 layers, patch 14, image 224, 5 queries), with a CLIP
  tokenizer of the 256 byte symbols and no merges. Default initialisation (std 0.02, zero biases) makes
  such a model answer near-constant masks, equal IoU scores and no instance above the threshold, which
  would let tests prove nothing: every parameter is drawn again with a larger spread (`roughen`).
- Real-ESRGAN: spandrel's ESRGAN (x4plus layout), ESRGAN with pixel-unshuffle (x2plus: `in_nc=12,
  scale=4, shuffle_factor=2`; with scale=2 spandrel would read it as 1x) and Compact (the
  realesr-animevideov3 layout), written as real checkpoint files in the containers the releases use
  (.pth with params_ema / params, .safetensors) and loaded back through spandrel's own loader.
- Swin2SR: Swin2SRForImageSuperResolution, x4 like the real checkpoint.

Weights come from fixed seeds, so every build is the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# The CLIP tokenizer's special tokens (ids 512 and 513 after the byte symbols and their </w> forms).
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# What each Real-ESRGAN method's tiny checkpoint is called (the names echo the releases').
TINY_CHECKPOINTS = {
    "realesrgan_4x": "tiny_RealESRGAN_x4plus.pth",
    "realesrgan_2x": "tiny_RealESRGAN_x2plus.safetensors",
    "realesrgan_4x_anime": "tiny_realesr-animevideov3.pth",
}


def tiny_clip_tokenizer() -> Any:
    """CLIPTokenizer over the 256 byte-level symbols, the same with `</w>` (CLIP's end of word), then the
    two specials, and no merges: the real CLIP vocabulary's layout without its 48894 merges."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    symbols = sorted(ByteLevel.alphabet())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab[BOS], vocab[EOS] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[])


def _vision_config(scale_factors: list[float], **extra: Any) -> Any:
    from transformers import Sam3VisionConfig, Sam3ViTConfig

    backbone = Sam3ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                             num_channels=3, image_size=224, patch_size=14, window_size=8, global_attn_indexes=[0, 1])
    return Sam3VisionConfig(backbone_config=backbone, fpn_hidden_size=32, scale_factors=scale_factors, **extra)


def tiny_sam3_config(bos_id: int, eos_id: int) -> Any:
    """transformers' tests/models/sam3 config, the text encoder's bos/eos set to the tokenizer's."""
    from transformers import Sam3Config
    from transformers.models.sam3.configuration_sam3 import (
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3MaskDecoderConfig,
    )

    text = dict(vocab_size=1000, hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=32, hidden_act="gelu", bos_token_id=bos_id,
                eos_token_id=eos_id, pad_token_id=eos_id)
    return Sam3Config(
        vision_config=_vision_config([2.0, 1.0]), text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(hidden_size=32, num_layers=1, num_attention_heads=4,
                                                          intermediate_size=64, mask_fuser_hidden_size=32,
                                                          mask_fuser_num_layers=1),
        detr_encoder_config=Sam3DETREncoderConfig(hidden_size=32, num_layers=1, num_attention_heads=4,
                                                  intermediate_size=64),
        detr_decoder_config=Sam3DETRDecoderConfig(hidden_size=32, num_layers=1, num_queries=5, num_attention_heads=4,
                                                  intermediate_size=64),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=32, num_upsampling_stages=2))


def tiny_tracker_config() -> Any:
    """transformers' tests/models/sam3_tracker config, but with the prompt encoder at image size 224 and
    patch 28 (the same 8x8 embedding as the test's 128/16), so points are normalised by the size the
    image is resized to, as in the real model (1008 both)."""
    from transformers import Sam3TrackerConfig, Sam3TrackerMaskDecoderConfig, Sam3TrackerPromptEncoderConfig

    return Sam3TrackerConfig(
        vision_config=_vision_config([2.0, 1.0, 0.5], backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]]),
        prompt_encoder_config=Sam3TrackerPromptEncoderConfig(image_size=224, patch_size=28, mask_input_channels=8,
                                                             hidden_size=32, num_point_embeddings=4, hidden_act="gelu"),
        mask_decoder_config=Sam3TrackerMaskDecoderConfig(hidden_size=32, hidden_act="relu", mlp_dim=64,
                                                         num_hidden_layers=2, num_attention_heads=4,
                                                         attention_downsample_rate=2, num_multimask_outputs=3,
                                                         iou_head_depth=3, iou_head_hidden_dim=32),
        memory_attention_hidden_size=32, memory_encoder_hidden_size=32, image_size=224,
        mask_downsampler_embed_dim=32, memory_fuser_embed_dim=32, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32)


def roughen(model: torch.nn.Module, seed: int, std: float = 0.2) -> None:
    """Every parameter drawn again from N(0, std), norm weights around 1, from a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator) * std
            p.copy_(1 + noise * 0.1 if "norm" in name and name.endswith("weight") else noise)


def build_tiny_sam3(seed: int = 0) -> tuple[Any, Any, Any]:
    """(CLIP tokenizer, Sam3Model, Sam3TrackerModel) on the CPU in float32, the same for a seed (the
    prompt encoder's random Fourier features come from the global generator, hence the fork)."""
    from transformers import Sam3Model, Sam3TrackerModel

    tokenizer = tiny_clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = Sam3Model(tiny_sam3_config(tokenizer.bos_token_id, tokenizer.eos_token_id))
        roughen(text, seed)
        tracker = Sam3TrackerModel(tiny_tracker_config())
        roughen(tracker, seed + 1)
    return tokenizer, text.eval(), tracker.eval()


def write_tiny_checkpoints(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Tiny Real-ESRGAN checkpoints as real files under `folder`, by method."""
    from services.vision.torchvision_standin import import_spandrel

    import_spandrel()  # before any spandrel submodule: the package's __init__ needs the stand-ins
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    folder.mkdir(parents=True, exist_ok=True)
    paths = {method: folder / name for method, name in TINY_CHECKPOINTS.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x4 = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4)
        x2 = ESRGAN(in_nc=12, out_nc=3, num_filters=8, num_blocks=1, scale=4, shuffle_factor=2)
        anime = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu")
    torch.save({"params_ema": x4.state_dict()}, paths["realesrgan_4x"])
    save_file({k: v.contiguous() for k, v in x2.state_dict().items()}, str(paths["realesrgan_2x"]))
    torch.save({"params": anime.state_dict()}, paths["realesrgan_4x_anime"])
    return paths


def build_tiny_swin2sr(seed: int = 0) -> Any:
    """A x4 Swin2SRForImageSuperResolution (window 8, two 1-block stages)."""
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Swin2SRForImageSuperResolution(Swin2SRConfig(
            image_size=32, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=8, upscale=4,
            upsampler="pixelshuffle")).eval()
