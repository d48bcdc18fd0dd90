"""One registry shape for every pluggable kind (device kinds, meter kinds): `kind` -> spec.

Built-in kinds are named by module and imported only when used, so a machine without one kind's
dependencies runs the others; plug-ins and tests add specs with `register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _HasKind(Protocol):
    kind: str


S = TypeVar("S", bound=_HasKind)


class Registry(Generic[S]):
    def __init__(self, attribute: str, builtin: dict[str, str],
                 unknown: Callable[[str, list[str]], Exception]) -> None:
        #: The module attribute holding a built-in kind's spec (DRIVER, METER).
        self.attribute = attribute
        #: kind -> module, in the order `kinds()` lists them.
        self.builtin = builtin
        self._unknown = unknown
        self._extra: dict[str, S] = {}

    def register(self, spec: S) -> None:
        """Add (or replace) a kind from outside the package: a plug-in or a test."""
        self._extra[spec.kind] = spec

    def kinds(self) -> list[str]:
        return [*self.builtin, *(k for k in self._extra if k not in self.builtin)]

    def get(self, kind: str) -> S:
        if kind in self._extra:
            return self._extra[kind]
        module = self.builtin.get(kind)
        if module is None:
            raise self._unknown(kind, self.kinds())
        return getattr(importlib.import_module(module), self.attribute)
