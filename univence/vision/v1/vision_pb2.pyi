from univence.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpscaleMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPSCALE_METHOD_UNSPECIFIED: _ClassVar[UpscaleMethod]
    UPSCALE_METHOD_REALESRGAN_2X: _ClassVar[UpscaleMethod]
    UPSCALE_METHOD_REALESRGAN_4X: _ClassVar[UpscaleMethod]
    UPSCALE_METHOD_REALESRGAN_4X_ANIME: _ClassVar[UpscaleMethod]
    UPSCALE_METHOD_SWIN2SR: _ClassVar[UpscaleMethod]
    UPSCALE_METHOD_LANCZOS: _ClassVar[UpscaleMethod]
UPSCALE_METHOD_UNSPECIFIED: UpscaleMethod
UPSCALE_METHOD_REALESRGAN_2X: UpscaleMethod
UPSCALE_METHOD_REALESRGAN_4X: UpscaleMethod
UPSCALE_METHOD_REALESRGAN_4X_ANIME: UpscaleMethod
UPSCALE_METHOD_SWIN2SR: UpscaleMethod
UPSCALE_METHOD_LANCZOS: UpscaleMethod

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class SegmentImageRequest(_message.Message):
    __slots__ = ("image", "prompt", "points", "point_labels", "multimask_output")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    POINT_LABELS_FIELD_NUMBER: _ClassVar[int]
    MULTIMASK_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    prompt: str
    points: _containers.RepeatedCompositeFieldContainer[Point]
    point_labels: _containers.RepeatedScalarFieldContainer[int]
    multimask_output: bool
    def __init__(self, image: _Optional[bytes] = ..., prompt: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., point_labels: _Optional[_Iterable[int]] = ..., multimask_output: _Optional[bool] = ...) -> None: ...

class SegmentImageResponse(_message.Message):
    __slots__ = ("mask", "candidate_masks", "scores", "width", "height", "mime_type")
    MASK_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_MASKS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    mask: bytes
    candidate_masks: _containers.RepeatedScalarFieldContainer[bytes]
    scores: _containers.RepeatedScalarFieldContainer[float]
    width: int
    height: int
    mime_type: str
    def __init__(self, mask: _Optional[bytes] = ..., candidate_masks: _Optional[_Iterable[bytes]] = ..., scores: _Optional[_Iterable[float]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., mime_type: _Optional[str] = ...) -> None: ...

class UpscaleImageRequest(_message.Message):
    __slots__ = ("image", "method", "scale", "output_format")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    method: UpscaleMethod
    scale: int
    output_format: _common_pb2.ImageFormat
    def __init__(self, image: _Optional[bytes] = ..., method: _Optional[_Union[UpscaleMethod, str]] = ..., scale: _Optional[int] = ..., output_format: _Optional[_Union[_common_pb2.ImageFormat, str]] = ...) -> None: ...

class UpscaleImageResponse(_message.Message):
    __slots__ = ("image", "mime_type", "width", "height")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    mime_type: str
    width: int
    height: int
    def __init__(self, image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class RemoveImageBackgroundRequest(_message.Message):
    __slots__ = ("image", "prompt")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    prompt: str
    def __init__(self, image: _Optional[bytes] = ..., prompt: _Optional[str] = ...) -> None: ...

class RemoveImageBackgroundResponse(_message.Message):
    __slots__ = ("image", "width", "height", "mime_type")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    width: int
    height: int
    mime_type: str
    def __init__(self, image: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., mime_type: _Optional[str] = ...) -> None: ...

class RemoveVideoBackgroundRequest(_message.Message):
    __slots__ = ("video", "prompt")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    video: bytes
    prompt: str
    def __init__(self, video: _Optional[bytes] = ..., prompt: _Optional[str] = ...) -> None: ...

class VideoBackgroundResult(_message.Message):
    __slots__ = ("video", "total_frames", "frames_with_object", "fps", "mime_type", "has_audio")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_WITH_OBJECT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    HAS_AUDIO_FIELD_NUMBER: _ClassVar[int]
    video: bytes
    total_frames: int
    frames_with_object: int
    fps: float
    mime_type: str
    has_audio: bool
    def __init__(self, video: _Optional[bytes] = ..., total_frames: _Optional[int] = ..., frames_with_object: _Optional[int] = ..., fps: _Optional[float] = ..., mime_type: _Optional[str] = ..., has_audio: _Optional[bool] = ...) -> None: ...

class RemoveVideoBackgroundResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    result: VideoBackgroundResult
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[VideoBackgroundResult, _Mapping]] = ...) -> None: ...
