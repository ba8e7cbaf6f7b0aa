from univence.common.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CloneVoiceRequest(_message.Message):
    __slots__ = ("text", "ref_audio", "ref_text", "language", "output_format", "model", "seed")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REF_AUDIO_FIELD_NUMBER: _ClassVar[int]
    REF_TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    text: str
    ref_audio: bytes
    ref_text: str
    language: str
    output_format: _common_pb2.AudioFormat
    model: str
    seed: int
    def __init__(self, text: _Optional[str] = ..., ref_audio: _Optional[bytes] = ..., ref_text: _Optional[str] = ..., language: _Optional[str] = ..., output_format: _Optional[_Union[_common_pb2.AudioFormat, str]] = ..., model: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class CloneVoiceResponse(_message.Message):
    __slots__ = ("audio", "mime_type", "sample_rate", "duration_seconds")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    mime_type: str
    sample_rate: int
    duration_seconds: float
    def __init__(self, audio: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., sample_rate: _Optional[int] = ..., duration_seconds: _Optional[float] = ...) -> None: ...

class StreamCloneVoiceRequest(_message.Message):
    __slots__ = ("text", "ref_audio", "ref_text", "language", "output_format", "model", "seed")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REF_AUDIO_FIELD_NUMBER: _ClassVar[int]
    REF_TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    text: str
    ref_audio: bytes
    ref_text: str
    language: str
    output_format: _common_pb2.AudioFormat
    model: str
    seed: int
    def __init__(self, text: _Optional[str] = ..., ref_audio: _Optional[bytes] = ..., ref_text: _Optional[str] = ..., language: _Optional[str] = ..., output_format: _Optional[_Union[_common_pb2.AudioFormat, str]] = ..., model: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class StreamCloneVoiceResponse(_message.Message):
    __slots__ = ("data", "mime_type", "sample_rate", "sequence", "last")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    mime_type: str
    sample_rate: int
    sequence: int
    last: bool
    def __init__(self, data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., sample_rate: _Optional[int] = ..., sequence: _Optional[int] = ..., last: _Optional[bool] = ...) -> None: ...
