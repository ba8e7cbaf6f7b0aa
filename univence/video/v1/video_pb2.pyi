from univence.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_UNSPECIFIED: _ClassVar[Resolution]
    RESOLUTION_480P: _ClassVar[Resolution]
    RESOLUTION_720P: _ClassVar[Resolution]
    RESOLUTION_1080P: _ClassVar[Resolution]
RESOLUTION_UNSPECIFIED: Resolution
RESOLUTION_480P: Resolution
RESOLUTION_720P: Resolution
RESOLUTION_1080P: Resolution

class GenerateVideoRequest(_message.Message):
    __slots__ = ("image", "prompt", "negative_prompt", "num_frames", "num_inference_steps", "resolution", "use_ode", "seed")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    USE_ODE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    prompt: str
    negative_prompt: str
    num_frames: int
    num_inference_steps: int
    resolution: Resolution
    use_ode: bool
    seed: int
    def __init__(self, image: _Optional[bytes] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., num_frames: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., use_ode: _Optional[bool] = ..., seed: _Optional[int] = ...) -> None: ...

class VideoResult(_message.Message):
    __slots__ = ("video", "mime_type", "num_frames", "fps", "width", "height", "seed", "thumbnail")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    video: bytes
    mime_type: str
    num_frames: int
    fps: float
    width: int
    height: int
    seed: int
    thumbnail: bytes
    def __init__(self, video: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., num_frames: _Optional[int] = ..., fps: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., seed: _Optional[int] = ..., thumbnail: _Optional[bytes] = ...) -> None: ...

class GenerateVideoResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: VideoResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[VideoResult, _Mapping]] = ...) -> None: ...
