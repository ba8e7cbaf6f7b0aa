"""Test clients that act as the operator: every unary call carries the accounts admin token, as the
`univence accounts` CLI's calls do on the service's machine, unless the call sends its own (the tests
of a wrong token). Admin RPCs are closed by default, so fixtures that create users and keys use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from univence import admin


def admin_token_of(settings: Any) -> str:
    """The token an accounts service with these settings requires: the configured one, else the one it
    generated at its start in its `admin_token_file`."""
    return settings.admin_token or settings.admin_token_file.read_text().strip()


class WithAdminToken(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds the admin token (read when the call is made: the service writes it when it starts)."""

    def __init__(self, token: Callable[[], str]):
        self._token = token

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = list(client_call_details.metadata or ())
        if not any(key == admin.METADATA_KEY for key, _ in metadata):
            metadata.extend(admin.metadata(self._token()))
        return await continuation(client_call_details._replace(metadata=metadata), request)


def operator_channel(address: str, settings: Any) -> grpc.aio.Channel:
    """A channel to an accounts service whose calls carry its admin token."""
    return grpc.aio.insecure_channel(address, interceptors=[WithAdminToken(lambda: admin_token_of(settings))])
