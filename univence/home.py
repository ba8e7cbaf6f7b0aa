"""The one data folder of an installation: databases, media, the maintenance flag, the admin token and
the edge's settlement outbox live under it, whatever the current directory.

It is `UNIVENCE_HOME` when set, else the user's data directory (`~/.local/share/univence` on Linux).
Every default path of every service, the edge and the CLI is made from `data_home()`, so `univence up`
and `univence maintenance on` agree from any directory. Settings that name a path explicitly still win.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "UNIVENCE_HOME"


def data_home() -> Path:
    """The data folder (not created: `ensure_data_home` creates it)."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs  # only where no UNIVENCE_HOME is set

    return Path(platformdirs.user_data_dir("univence", appauthor=False)).resolve()


def ensure_data_home() -> Path:
    """The data folder, created with owner-only permissions if it did not exist."""
    home = data_home()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


def data_path(*parts: str) -> Path:
    """A path inside the data folder (its parent folders are not created)."""
    return data_home().joinpath(*parts)


def read_or_create_secret(path: Path, *, nbytes: int = 32) -> tuple[str, bool]:
    """The secret kept in `path`, made on first use (owner-only, mode 0600); and whether it was made now.

    Atomic: the secret is written and flushed to a private temporary file beside `path`, then hard-linked
    into place, which fails if `path` exists. So a reader never sees a half-written file, and two
    processes starting at once agree on one secret (the one that loses the link reads the winner's).
    Used for the accounts admin token and its generated JWT signing key."""
    import secrets
    import tempfile

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    created = False
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as f:
                # Hex, not URL-safe base64: a token an operator passes on a command line must not begin
                # with "-" (`--admin-token -x…` reads as a missing argument), which base64 allowed.
                f.write(secrets.token_hex(nbytes))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(temporary, path)
                created = True
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ValueError(f"{path} holds no usable secret; delete it to have a new one made")
    return secret, created
