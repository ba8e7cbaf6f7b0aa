import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from univence.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MediaKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIA_KIND_UNSPECIFIED: _ClassVar[MediaKind]
    MEDIA_KIND_IMAGE: _ClassVar[MediaKind]
    MEDIA_KIND_VIDEO: _ClassVar[MediaKind]
    MEDIA_KIND_AUDIO: _ClassVar[MediaKind]

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_NEWEST_FIRST: _ClassVar[SortOrder]
    SORT_ORDER_OLDEST_FIRST: _ClassVar[SortOrder]
MEDIA_KIND_UNSPECIFIED: MediaKind
MEDIA_KIND_IMAGE: MediaKind
MEDIA_KIND_VIDEO: MediaKind
MEDIA_KIND_AUDIO: MediaKind
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_NEWEST_FIRST: SortOrder
SORT_ORDER_OLDEST_FIRST: SortOrder

class Media(_message.Message):
    __slots__ = ("media_id", "owner_id", "kind", "mime_type", "size_bytes", "sha256", "create_time", "width", "height")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    owner_id: str
    kind: MediaKind
    mime_type: str
    size_bytes: int
    sha256: str
    create_time: _timestamp_pb2.Timestamp
    width: int
    height: int
    def __init__(self, media_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., kind: _Optional[_Union[MediaKind, str]] = ..., mime_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class CreateMediaRequest(_message.Message):
    __slots__ = ("owner_id", "kind", "mime_type", "data", "width", "height")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    owner_id: str
    kind: MediaKind
    mime_type: str
    data: bytes
    width: int
    height: int
    def __init__(self, owner_id: _Optional[str] = ..., kind: _Optional[_Union[MediaKind, str]] = ..., mime_type: _Optional[str] = ..., data: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class CreateMediaResponse(_message.Message):
    __slots__ = ("media",)
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    media: Media
    def __init__(self, media: _Optional[_Union[Media, _Mapping]] = ...) -> None: ...

class GetMediaRequest(_message.Message):
    __slots__ = ("media_id", "format", "offset", "length", "metadata_only")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    METADATA_ONLY_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    format: _common_pb2.ImageFormat
    offset: int
    length: int
    metadata_only: bool
    def __init__(self, media_id: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.ImageFormat, str]] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., metadata_only: _Optional[bool] = ...) -> None: ...

class GetMediaResponse(_message.Message):
    __slots__ = ("media", "chunk")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    media: Media
    chunk: bytes
    def __init__(self, media: _Optional[_Union[Media, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ListMediaRequest(_message.Message):
    __slots__ = ("owner_id", "kind", "order", "page_size", "page_token", "offset")
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    owner_id: str
    kind: MediaKind
    order: SortOrder
    page_size: int
    page_token: str
    offset: int
    def __init__(self, owner_id: _Optional[str] = ..., kind: _Optional[_Union[MediaKind, str]] = ..., order: _Optional[_Union[SortOrder, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ListMediaResponse(_message.Message):
    __slots__ = ("media", "next_page_token", "total_size")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    media: _containers.RepeatedCompositeFieldContainer[Media]
    next_page_token: str
    total_size: int
    def __init__(self, media: _Optional[_Iterable[_Union[Media, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class DeleteMediaRequest(_message.Message):
    __slots__ = ("media_id", "owner_id")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    owner_id: str
    def __init__(self, media_id: _Optional[str] = ..., owner_id: _Optional[str] = ...) -> None: ...

class DeleteMediaResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
