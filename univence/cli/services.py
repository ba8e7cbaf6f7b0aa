"""Which services of univence/registry.py this install has, and running one of them."""

from __future__ import annotations

import importlib
import importlib.util

from univence import registry


def installed(module: str) -> bool:
    """True when the service's code is in this install (a modality lands with its own issue)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def available_modalities() -> list[str]:
    return [name for name in registry.MODALITIES if installed(registry.entry(name).module)]


def run_service(name: str) -> None:
    if name not in registry.BY_NAME:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(registry.BY_NAME)}")
    module = registry.entry(name).module
    if not installed(module):
        raise SystemExit(f"the {name} service is not part of this install ({module} is missing)")
    importlib.import_module(module).main()
