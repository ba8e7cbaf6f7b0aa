"""Media listing shapes (GET /v1/images/user-videos)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class MediaObject(BaseModel):
    id: str
    object: Literal["media"] = "media"
    url: str
    mime_type: str
    kind: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    created: int


class MediaList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MediaObject]
    total: int
    limit: int
    offset: int
    has_more: bool
