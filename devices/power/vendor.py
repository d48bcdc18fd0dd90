"""Importing a meter's vendor package, with an error that says how to install it.

Vendor packages live in the optional `power` extra, so the rest of bench works without them. Tests
put fake modules with the same names into `sys.modules`; `importlib` then returns the fake.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from devices.power.errors import MissingExtraError

INSTALL_HINT = "Install the power extra: `pip install 'hilbench[power]'` (or `scripts/install --power`)."


def import_vendor(module: str, *, meter_kind: str, package: str) -> ModuleType:
    """Import `module` (from the PyPI distribution `package`) for a meter of `meter_kind`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"the {meter_kind!r} power meter needs the Python package {package!r}, which is not installed "
            f"(import {module!r} failed: {exc}).",
            hint=INSTALL_HINT,
        ) from None


def vendor_available(module: str) -> str | None:
    """None when `module` imports here, else why not (for `unavailable_reason`)."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{module} is not installed ({exc}); {INSTALL_HINT}"
    return None
