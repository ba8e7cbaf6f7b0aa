"""The edge's `Server-Timing: upstream;desc="<service>";dur=<ms>` response header (edge.serving), read by tests."""

from __future__ import annotations

import re
from collections.abc import Mapping

_UPSTREAM = re.compile(r'upstream;desc="([a-z]+)";dur=(\d+\.\d{3})')


def upstream_ms(headers: Mapping[str, str], service: str) -> float:
    """The service's time in milliseconds, checked to be well formed and to name `service`."""
    found = _UPSTREAM.fullmatch(headers["server-timing"])
    assert found is not None and found[1] == service, headers["server-timing"]
    return float(found[2])
