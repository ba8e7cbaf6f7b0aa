"""The tiny profile: a real `Qwen3_5ForConditionalGeneration` (gated-DeltaNet and attention layers,
vision tower included) built from a tiny config with random weights, an offline byte-level tokenizer
with a Qwen-style chat template, and a Pillow image processor. Built in well under a second, offline.
The output is noise, by design; the profile says so in /v1/models, the logs and a response header."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.common.tokenizers import byte_level_tokenizer

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|vision_start|>",
                  "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
TINY_CONTEXT = 4096
PATCH = 16

# Qwen's chat layout: <|im_start|>role\ncontent<|im_end|>\n, images as vision_start/image_pad/vision_end,
# and a generation prompt with an empty thinking block when thinking is off. With tools, a system turn lists
# them and tells the Qwen3-Coder call layout; assistant calls are written in it and tool results come back in
# a user turn as <tool_response> blocks (see services/llm/tools.py).
CHAT_TEMPLATE = (
    "{%- macro text(content) %}"
    "{%- if content is string %}{{- content }}"
    "{%- elif content %}{%- for part in content %}"
    "{%- if part['type'] == 'text' %}{{- part['text'] }}"
    "{%- else %}{{- '<|vision_start|><|image_pad|><|vision_end|>' }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{%- endmacro %}"
    "{%- set skip_first = tools and messages[0]['role'] == 'system' %}"
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if skip_first %}{{- text(messages[0]['content']) + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n<tools>' }}{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\nTo call a function:\\n<tool_call>\\n<function=NAME>\\n<parameter=NAME>\\nVALUE\\n'"
    "    '</parameter>\\n</function>\\n</tool_call><|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (loop.first and skip_first) %}"
    "{%- if message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + text(message['content']) + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + text(message['content']) }}"
    "{%- for call in message.get('tool_calls') or [] %}"
    "{{- '<tool_call>\\n<function=' + call['function']['name'] + '>\\n' }}"
    "{%- for name, value in call['function']['arguments'].items() %}"
    "{{- '<parameter=' + name + '>\\n' + (value if value is string else value | tojson) + '\\n</parameter>\\n' }}"
    "{%- endfor %}"
    "{{- '</function>\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking %}{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- else %}{{- '<think>\\n' }}{%- endif %}"
    "{%- endif %}"
)


def tiny_tokenizer():
    """Qwen's special tokens (vision ones included) on the shared byte-level tokenizer; a turn ends at
    <|im_end|>."""
    return byte_level_tokenizer(SPECIAL_TOKENS, CHAT_TEMPLATE, unk_token=None, bos_token=None,
                                eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_image_processor():
    """Qwen2-VL's image processing in its Pillow build (no torchvision): 16-px patches, no merging,
    images resized to between 32x32 and 64x64 pixels (4 to 16 image tokens)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=1, temporal_patch_size=2,
                                    size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64})


def tiny_config(tokenizer):
    from transformers import Qwen3_5Config

    ids = tokenizer.convert_tokens_to_ids
    vocab_size = (len(tokenizer) + 15) // 16 * 16
    text = dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=TINY_CONTEXT, hidden_act="silu",
        layer_types=["linear_attention", "full_attention"], linear_conv_kernel_dim=4, linear_key_head_dim=8,
        linear_value_head_dim=8, linear_num_key_heads=2, linear_num_value_heads=4,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000, "mrope_section": [2, 1, 1],
                         "mrope_interleaved": True},
        bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
    )
    vision = dict(depth=2, in_chans=3, hidden_act="gelu_pytorch_tanh", hidden_size=32, intermediate_size=32,
                  out_hidden_size=32, num_heads=4, patch_size=PATCH, spatial_merge_size=1, temporal_patch_size=2,
                  num_position_embeddings=16)
    return Qwen3_5Config(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                         video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                         vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=True)


@dataclass
class TinyModel:
    model: object
    tokenizer: object
    image_processor: object


def build_tiny(seed: int = 0) -> TinyModel:
    import torch
    from transformers import GenerationConfig, Qwen3_5ForConditionalGeneration

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    model = Qwen3_5ForConditionalGeneration(tiny_config(tokenizer)).eval()
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=1.0, top_p=1.0, top_k=None, eos_token_id=[tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id)
    return TinyModel(model, tokenizer, tiny_image_processor())


def save_tiny(folder: str | Path, *, weights: bool = True) -> Path:
    """Writes the tiny model as a model folder (config, tokenizer with its chat template, image processor
    and, unless `weights` is False, the random weights): what vLLM's `load_format="dummy"` needs."""
    folder = Path(folder)
    tiny = build_tiny()
    _save(tiny.model, tiny.tokenizer, folder, weights=weights)
    tiny.image_processor.save_pretrained(folder)
    return folder


def save_tiny_text(folder: str | Path, *, weights: bool = True) -> Path:
    """Writes a tiny text-only Qwen3 model folder (`Qwen3ForCausalLM`, the same tokenizer and chat template)
    for vLLM's CPU build: there, vLLM's Qwen3.5 module does not import without torchvision, and its CPU
    attention kernels want a head size of at least 32. Same interface and prompts as the tiny Qwen3.5,
    so the vllm backend runs the same requests on a machine without a GPU."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3Config(
        vocab_size=(len(tokenizer) + 15) // 16 * 16, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=TINY_CONTEXT,
        bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
        tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=1.0, top_p=1.0, top_k=None, eos_token_id=[tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id)
    return _save(model, tokenizer, Path(folder), weights=weights)


def _save(model, tokenizer, folder: Path, *, weights: bool) -> Path:
    """The model's config (naming its class, which vLLM resolves the architecture from), generation config,
    tokenizer and, when `weights`, its weights."""
    if weights:
        model.save_pretrained(folder)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(folder)
        model.generation_config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
