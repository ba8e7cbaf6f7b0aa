"""The tiny profile: diffusers' WanImageToVideoPipeline from tiny configs with random weights, built
offline in a fraction of a second.

The two experts and the VAE follow diffusers' own Wan2.2 I2V test (tests/pipelines/wan/
test_wan_22_image_to_video.py: 2 heads x 12, in 36 / out 16 channels, text_dim 32, 2 layers; VAE
base_dim 3, z_dim 16). The test loads its T5 from the hub; here the text encoder is a local
`UMT5EncoderModel` (Wan's encoder class) of d_model 32, and the tokenizer a `T5Tokenizer` over printable
ASCII with no merges, so nothing is downloaded. Its size multiple is 16 (VAE 8 x patch 2), like the
real model's.

Default initialisation leaves the tiny VAE nearly blind to its input (a red and a blue image encode
within 0.002 of each other and decode to the same video), so tests could not see the image reach the
video: its weight tensors are drawn again from N(0, 0.5) with a fixed seed (`roughen_vae`).
"""

from __future__ import annotations

import string
from typing import Any

import torch

# The experts switch at this fraction of the timesteps (the diffusers test's value).
TINY_BOUNDARY_RATIO = 0.875
# Spread of the tiny VAE's redrawn weights: enough for an image's colours to survive encoding.
VAE_WEIGHT_STD = 0.5


def tiny_t5_tokenizer() -> Any:
    """A Unigram T5 tokenizer: pad, eos, unk, the word-start mark and one piece per printable character."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -3.0) for c in string.printable if not c.isspace()]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _expert() -> Any:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=36,
                                 out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                 cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)


def roughen_vae(vae: torch.nn.Module, seed: int) -> None:
    """Every weight tensor (not biases or norm scales) drawn again from N(0, VAE_WEIGHT_STD)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in vae.parameters():
            if parameter.dim() > 1:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * VAE_WEIGHT_STD)


def build_tiny_pipeline(seed: int = 0) -> Any:
    """The pipeline on the CPU in float32, the same for a seed (built under a forked generator)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64,
                                                   num_layers=2, num_heads=4, relative_attention_num_buckets=8))
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True])
        roughen_vae(vae, seed)
        high, low = _expert(), _expert()
    return WanImageToVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(),
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0), transformer=high.eval(),
                                   transformer_2=low.eval(), image_encoder=None, image_processor=None,
                                   boundary_ratio=TINY_BOUNDARY_RATIO)
