"""The services a Univence deployment is made of, and which of them this install has."""

from __future__ import annotations

import importlib.util

# name -> module whose main() runs the service. Start order: state first, the edge last.
PLATFORM = {"accounts": "services.accounts.server", "media": "services.media.server"}
MODALITIES = {name: f"services.{name}.server" for name in ("image", "llm", "audio", "music", "video", "vision")}
EDGE = {"edge": "edge.server"}
ALL = {**PLATFORM, **MODALITIES, **EDGE}


def installed(module: str) -> bool:
    """True when the service's code is in this install (a modality lands with its own issue)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def available_modalities() -> list[str]:
    return [name for name, module in MODALITIES.items() if installed(module)]


def run_service(name: str) -> None:
    module = ALL.get(name)
    if module is None:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(ALL)}")
    if not installed(module):
        raise SystemExit(f"the {name} service is not part of this install ({module} is missing)")
    importlib.import_module(module).main()
