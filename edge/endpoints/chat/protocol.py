"""POST /v1/chat/completions: OpenAI's request, completion and chunk shapes (what the OpenAPI document
shows; translate checks the messages by hand so each refusal names the exact field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.inputs import Int32, Int64, documented

# -- the documented bounds --------------------------------------------------------------------------
# A deliberate copy of services/llm/requests.py's MAX_TOP_LOGPROBS and MAX_TOOLS, for the OpenAPI
# document only: the edge checks what the LLM service publishes (translate.ChatLimits). The sampling
# ranges below (temperature, top_p, the penalties) are OpenAI's, checked here and by the service alike.
# tests/edge/test_contract_copies.py fails when any of them differs from the service's.
MAX_TOP_LOGPROBS = 20
MAX_TOOLS = 128


# -- request ---------------------------------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str = Field(description="A data URL (`data:image/png;base64,...`); http(s) URLs only where the "
                                 "server enables fetching")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="The arguments, a JSON object in text")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | ImagePart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDefinition(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(BaseModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(BaseModel):
    include_usage: bool | None = None


class JSONSchemaFormat(BaseModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request (the fields this server honours; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, description="Accepted for compatibility and ignored: the served model "
                                                        "answers (Qwen 3.5-4B)")
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: Int32 | None = Field(default=None, ge=1)
    max_completion_tokens: Int32 | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: Int64 | None = None
    n: Int32 | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: ResponseFormat | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    logprobs: bool | None = Field(default=None, description="Return each generated token's log probability")
    top_logprobs: Int32 | None = Field(default=None, ge=0, json_schema_extra=documented(maximum=MAX_TOP_LOGPROBS),
                                     description="With logprobs: the most likely alternatives at each position")
    tools: list[ToolDefinition] | None = Field(default=None, json_schema_extra=documented(maxItems=MAX_TOOLS),
                                               description="Functions the model may call")
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None


# -- response --------------------------------------------------------------------------------------


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None
    refusal: None = None


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls"] | None
    logprobs: ChoiceLogprobs | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChunkToolCall(ToolCall):
    index: int


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: ChunkDelta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    """One `data:` event of a stream (`text/event-stream`, ending with `data: [DONE]`)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
