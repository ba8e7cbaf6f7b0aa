"""Tool calling: the request's tools as chat templates take them, and the model's calls read back out of
its text. Qwen3.5 writes a call in the Qwen3-Coder layout, one block per call:

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

A forced call (tool_choice `required` or a named function) is made by starting the answer for the
model: the prompt ends with the opening of a block (and the function's name when it is given), which the
model continues; the parser reads that opening as part of the choice's text.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FUNCTION = re.compile(r"<function=([^>\n]+)>")
PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.S)


@dataclass
class ToolSpec:
    """A function the model may call; `parameters` is its JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def template(self) -> dict[str, Any]:
        """The OpenAI tool object that chat templates render."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters or {"type": "object"}}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


@dataclass
class ToolCallOut:
    """A call the model made: `arguments` is a JSON object in text."""

    id: str
    name: str
    arguments: str


def call_id() -> str:
    return "call_" + secrets.token_hex(12)


def forced_opening(mode: str, function_name: str = "") -> str:
    """The start of the answer that makes the model call a tool (`required`) or a given function."""
    if mode == "function":
        return f"{OPEN}\n<function={function_name}>\n"
    if mode == "required":
        return f"{OPEN}\n<function="
    return ""


class ToolCallParser:
    """Splits one choice's text into content and tool calls, across deltas. Text from `<tool_call>` on is
    held back until its block closes; whitespace between and after calls is dropped. A block that names
    no declared function, or never closes, is no call: its text is content."""

    def __init__(self, tools: list[ToolSpec], *, opening: str = "", parallel: bool = True):
        self.tools = {tool.name: tool for tool in tools}
        self.parallel = parallel
        self.calls: list[ToolCallOut] = []
        self._held = opening

    def feed(self, text: str) -> tuple[str, list[ToolCallOut]]:
        """(content that is safe to send, calls completed by this delta)."""
        buffer = self._held + text
        content, new = [], []
        while True:
            start = buffer.find(OPEN)
            if start < 0:
                hold = next((k for k in range(len(OPEN) - 1, 0, -1) if buffer.endswith(OPEN[:k])), 0)
                content.append(self._content(buffer[:len(buffer) - hold]))
                self._held = buffer[len(buffer) - hold:]
                break
            content.append(self._content(buffer[:start]))
            end = buffer.find(CLOSE, start)
            if end < 0:
                self._held = buffer[start:]
                break
            block = buffer[start + len(OPEN):end]
            calls = self._add(block)
            if calls is None:  # not a call to a declared function: the block stays text
                content.append(OPEN + block + CLOSE)
            else:
                new += calls
            buffer = buffer[end + len(CLOSE):]
        return "".join(content), new

    def flush(self) -> tuple[str, list[ToolCallOut]]:
        """At the end of the choice: anything held back is content. A block left open (the model ran out of
        tokens, or a stop sequence cut it) is not a call: its arguments never closed, so it is returned as
        text, as vLLM's and OpenAI's parsers do (the finish reason then says `length` or `stop`)."""
        held, self._held = self._held, ""
        return self._content(held), []

    def _content(self, text: str) -> str:
        return "" if self.calls and not text.strip() else text

    def _add(self, block: str) -> list[ToolCallOut] | None:
        """The call a closed block makes ([] when it is dropped, a further call where parallel calls are
        off), or None when it is no call: it names no function, or one that was not declared."""
        call = self._parse(block)
        if call is None:
            return None
        if self.calls and not self.parallel:
            return []
        self.calls.append(call)
        return [call]

    def _parse(self, block: str) -> ToolCallOut | None:
        function = FUNCTION.search(block)
        if function is None:
            return None
        name = function.group(1).strip()
        if name not in self.tools:
            return None
        properties = self.tools[name].parameters.get("properties") or {}
        arguments = {}
        for match in PARAMETER.finditer(block, function.end()):
            key, raw = match.group(1).strip(), match.group(2)
            arguments[key] = _value(raw, (properties.get(key) or {}).get("type"))
        return ToolCallOut(call_id(), name, json.dumps(arguments, ensure_ascii=False))


def _value(raw: str, kind: Any) -> Any:
    """A parameter's text as its schema's type: strings stay text, anything else is read as JSON when it
    parses (a number, a boolean, an object...)."""
    if kind == "string":
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw
