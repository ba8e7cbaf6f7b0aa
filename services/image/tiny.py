"""The tiny profile: the real FLUX.2 klein classes (diffusers Flux2KleinPipeline with its transformer,
VAE and scheduler, a transformers Qwen3 text encoder and Qwen2 tokenizer) from tiny configs with
random weights, built offline in well under a second. Output is noise, by design.

Weights come from a fixed seed, so every build (every process, every test) is the same model and the
same request gives the same bytes. The VAE keeps the real model's 8x downsampling (so the real size
rules hold) but drops the mid-block attention, which would make 1024x1024 images slow on a CPU.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)
from transformers import Qwen2TokenizerFast, Qwen3Config, Qwen3ForCausalLM

from services.common.tokenizers import byte_level_tokenizer

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# Qwen3's chat template, cut to what the pipeline's prompt encoder uses.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
TEXT_HIDDEN = 16


def tiny_tokenizer() -> Qwen2TokenizerFast:
    """Qwen's special tokens on the shared byte-level tokenizer (Qwen2TokenizerFast's default roles)."""
    return byte_level_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE)


def build_tiny_pipeline(*, distilled: bool, seed: int = 0) -> Flux2KleinPipeline:
    """A tiny Flux2KleinPipeline on the CPU in float32; the same `seed` gives the same weights."""
    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = Qwen3ForCausalLM(Qwen3Config(
            vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=512))
        transformer = Flux2Transformer2DModel(
            patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=3 * TEXT_HIDDEN, timestep_guidance_channels=32,
            axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False)
        vae = AutoencoderKLFlux2(
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(4, 4, 8, 8), layers_per_block=1, latent_channels=4, norm_num_groups=4,
            sample_size=64, mid_block_add_attention=False)
    pipeline = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True), vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, transformer=transformer, is_distilled=distilled)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
