from univence.common.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MusicStyle(_message.Message):
    __slots__ = ("prompt", "lyrics", "bpm", "key_scale", "time_signature", "vocal_language", "instrumental", "output_format", "seed", "num_inference_steps", "guidance_scale")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    LYRICS_FIELD_NUMBER: _ClassVar[int]
    BPM_FIELD_NUMBER: _ClassVar[int]
    KEY_SCALE_FIELD_NUMBER: _ClassVar[int]
    TIME_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    VOCAL_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENTAL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    lyrics: str
    bpm: int
    key_scale: str
    time_signature: str
    vocal_language: str
    instrumental: bool
    output_format: _common_pb2.AudioFormat
    seed: int
    num_inference_steps: int
    guidance_scale: float
    def __init__(self, prompt: _Optional[str] = ..., lyrics: _Optional[str] = ..., bpm: _Optional[int] = ..., key_scale: _Optional[str] = ..., time_signature: _Optional[str] = ..., vocal_language: _Optional[str] = ..., instrumental: _Optional[bool] = ..., output_format: _Optional[_Union[_common_pb2.AudioFormat, str]] = ..., seed: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ...) -> None: ...

class GenerateMusicRequest(_message.Message):
    __slots__ = ("style", "duration_seconds")
    STYLE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    style: MusicStyle
    duration_seconds: float
    def __init__(self, style: _Optional[_Union[MusicStyle, _Mapping]] = ..., duration_seconds: _Optional[float] = ...) -> None: ...

class CoverMusicRequest(_message.Message):
    __slots__ = ("style", "src_audio", "cover_strength")
    STYLE_FIELD_NUMBER: _ClassVar[int]
    SRC_AUDIO_FIELD_NUMBER: _ClassVar[int]
    COVER_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    style: MusicStyle
    src_audio: bytes
    cover_strength: float
    def __init__(self, style: _Optional[_Union[MusicStyle, _Mapping]] = ..., src_audio: _Optional[bytes] = ..., cover_strength: _Optional[float] = ...) -> None: ...

class RepaintMusicRequest(_message.Message):
    __slots__ = ("style", "src_audio", "repaint_start_seconds", "repaint_end_seconds")
    STYLE_FIELD_NUMBER: _ClassVar[int]
    SRC_AUDIO_FIELD_NUMBER: _ClassVar[int]
    REPAINT_START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REPAINT_END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    style: MusicStyle
    src_audio: bytes
    repaint_start_seconds: float
    repaint_end_seconds: float
    def __init__(self, style: _Optional[_Union[MusicStyle, _Mapping]] = ..., src_audio: _Optional[bytes] = ..., repaint_start_seconds: _Optional[float] = ..., repaint_end_seconds: _Optional[float] = ...) -> None: ...

class MusicResult(_message.Message):
    __slots__ = ("audio", "mime_type", "sample_rate", "duration_seconds", "seed")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    mime_type: str
    sample_rate: int
    duration_seconds: float
    seed: int
    def __init__(self, audio: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., sample_rate: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class GenerateMusicResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: MusicResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[MusicResult, _Mapping]] = ...) -> None: ...

class CoverMusicResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: MusicResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[MusicResult, _Mapping]] = ...) -> None: ...

class RepaintMusicResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: MusicResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[MusicResult, _Mapping]] = ...) -> None: ...
