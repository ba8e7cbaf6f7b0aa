"""The tiny profiles' tokenizer: byte-level, built offline from nothing, so a tiny model needs no files.

Every tiny model (image's text encoder, the llm's chat model, and the modalities to come) uses this one
builder: a Qwen2 byte-level BPE with no merges (one token per byte) and the special tokens the model's
chat template writes. Only the special tokens, the template and the role tokens differ per model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import Qwen2TokenizerFast


def byte_level_tokenizer(special_tokens: Sequence[str], chat_template: str, **roles: Any) -> Qwen2TokenizerFast:
    """The special tokens take the first ids (in the order given), then the 256 byte symbols. The first
    special token is the end-of-text token; the others are added as additional special tokens, so the
    tokenizer never splits them. `roles` are Qwen2TokenizerFast's own (eos_token=..., pad_token=...)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2TokenizerFast

    vocab = {token: i for i, token in enumerate(special_tokens)}
    for char in sorted(ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
    tokenizer = Qwen2TokenizerFast(vocab=vocab, merges=[], **roles)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens[1:])})
    tokenizer.chat_template = chat_template
    return tokenizer
