"""Conversation → model input, the same for every backend: the model's chat template (through its
tokenizer), images through the model's image processor (Pillow-based where torchvision is missing),
each image placeholder expanded to the number of tokens the vision tower gives that image, so the
prompt token count is exact before any generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from services.common.errors import invalid
from services.llm.backends.base import Message


@dataclass
class BuiltPrompt:
    """`text` has one placeholder per image (what vLLM takes); `input_ids` have them expanded."""

    text: str
    images: list[Image.Image]
    input_ids: list[int]
    # pixel_values, image_grid_thw, mm_token_type_ids as torch tensors (transformers only)
    vision_inputs: dict[str, Any] = field(default_factory=dict)


class PromptBuilder:
    def __init__(self, tokenizer, image_processor=None, *, image_token: str = "<|image_pad|>",
                 template_kwargs: dict[str, Any] | None = None):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template; the model folder must carry one "
                             "(tokenizer_config.json or chat_template.jinja)")
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token) if image_processor is not None else None
        self.template_kwargs = template_kwargs or {}

    @property
    def supports_images(self) -> bool:
        return self.image_processor is not None

    def template_messages(self, messages: list[Message]) -> list[dict[str, Any]]:
        out = []
        for message in messages:
            if self.supports_images:
                content: Any = [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image"}
                                for p in message.parts]
            else:
                content = message.text
            entry: dict[str, Any] = {"role": message.role, "content": content}
            if message.tool_calls:
                entry["tool_calls"] = message.tool_calls
            if message.tool_call_id:
                entry["tool_call_id"] = message.tool_call_id
            out.append(entry)
        return out

    def build(self, messages: list[Message], *, with_pixels: bool = True, tools: list[dict[str, Any]] | None = None,
              opening: str = "") -> BuiltPrompt:
        """Blocking (template, tokenizer, image processor): call it off the event loop. `tools` go to the
        template; `opening` is written after the generation prompt, for the model to continue."""
        images = [img for m in messages for img in m.images]
        if images and not self.supports_images:
            raise invalid("This model takes text only; remove the image_url parts", "messages")
        try:
            text = self.tokenizer.apply_chat_template(self.template_messages(messages), add_generation_prompt=True,
                                                      tokenize=False, tools=tools, **self.template_kwargs)
        except Exception as exc:  # noqa: BLE001 - a template that refuses the conversation (e.g. role order)
            raise invalid(f"The conversation does not fit the model's chat template: {exc}", "messages") from None
        text += opening
        vision: dict[str, Any] = {}
        expanded = text
        if images:
            pieces = text.split(self.image_token)
            if len(pieces) - 1 != len(images):
                raise RuntimeError(f"the chat template wrote {len(pieces) - 1} image placeholders for "
                                   f"{len(images)} images")
            if with_pixels:
                vision = dict(self.image_processor(images=images, return_tensors="pt"))
                counts = [int(g.prod()) // self.image_processor.merge_size ** 2 for g in vision["image_grid_thw"]]
            else:
                counts = [self.image_processor.get_number_of_image_patches(img.height, img.width, {})
                          // self.image_processor.merge_size ** 2 for img in images]
            expanded = pieces[0] + "".join(self.image_token * n + piece for n, piece in zip(counts, pieces[1:],
                                                                                           strict=True))
        input_ids = self.tokenizer(expanded, add_special_tokens=False)["input_ids"]
        if images and with_pixels:
            import torch

            ids = torch.tensor([input_ids])
            vision["mm_token_type_ids"] = (ids == self.image_token_id).to(torch.int32)
        return BuiltPrompt(text=text, images=images, input_ids=input_ids, vision_inputs=vision)
