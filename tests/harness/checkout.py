"""Which tree the packages under test come from: this checkout's, or (wrongly) another's."""
from __future__ import annotations

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: installed name -> folder of this checkout it must come from
CHECKOUT_PACKAGES = {"machine": "machine", "machine.drivers": "drivers", "machine.bootstrap": "bootstrap",
                     "machine.templates": "templates"}


def checkout_mismatches(repo: str = REPO) -> list[str]:
    """Packages imported from somewhere other than the checkout under test."""
    import importlib

    bad = []
    for name, folder in CHECKOUT_PACKAGES.items():
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            bad.append(f"{name} not importable ({e})")
            continue
        where = {os.path.realpath(p) for p in getattr(module, "__path__", [])}
        want = os.path.realpath(os.path.join(repo, folder))
        if where != {want}:
            bad.append(f"{name} from {', '.join(sorted(where)) or '?'} (want {want})")
    return bad
