"""The accounts service's admin token, as both ends see it.

Admin RPCs (create users and keys, grant credits, set premium) are closed by default: when no
`[accounts] admin_token` is configured, the service makes one at its first start, in
`<data folder>/admin-token` (mode 0600), and requires it. A client on the same machine (the
`univence accounts` CLI, tests, benchmarks) finds it the way this module says, so it needs no flag;
a remote operator passes it explicitly (`--admin-token`). Kept here, outside the service, because the
CLI must not need the accounts service's code to find it.
"""

from __future__ import annotations

from pathlib import Path

from univence.home import data_path
from univence.settings import configured

# The gRPC metadata key that carries the token.
METADATA_KEY = "x-univence-admin-token"
FILE_NAME = "admin-token"


def default_file() -> Path:
    """Where the service keeps the token it generated, unless `[accounts] admin_token_file` says."""
    return data_path(FILE_NAME)


def local_admin_token() -> str:
    """The token this machine's accounts service requires, as far as this machine's settings tell:
    `[accounts] admin_token` (or UNIVENCE_ACCOUNTS_ADMIN_TOKEN), else the file the service generated;
    "" when neither exists (the service has not started here yet)."""
    token = str(configured("accounts", "admin_token", "") or "")
    if token:
        return token
    path = Path(configured("accounts", "admin_token_file", "") or default_file()).expanduser()
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
    except PermissionError:
        raise PermissionError(f"cannot read the admin token in {path}: run as the user that runs the "
                              "accounts service, or pass --admin-token") from None


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token` (none for an empty one)."""
    return ((METADATA_KEY, token),) if token else ()
