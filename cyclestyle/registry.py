"""One registry type for every extension point: architectures, methods, metrics, exporters and
commands are each a ``Registry`` of named entries.

    METHODS = Registry("method")

    @METHODS.register("cyclegan")         # decorator form
    class CycleGAN(Method): ...

    METHODS.register("copy", CopyMethod)  # call form
    METHODS.get("cyclegan")               # or a one-line error that lists the registered names

Entries keep their registration order, which reports and ``--help`` show. This module is at the
bottom of the package: it imports nothing of cyclestyle, so every layer may hold a registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class RegistryError(ValueError):
    """An unknown name, or a name registered twice; one line naming the registered ones."""


class Registry(Generic[T]):
    """Named entries of one kind, in registration order.

    ``error``: the exception ``get`` and ``register`` raise, so that each extension point keeps
    the error its callers catch (``ArchitectureError``, ``MethodError`` …); it must take one
    message argument.
    """

    def __init__(self, kind: str, error: type[Exception] = RegistryError):
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: T | None = None) -> T | Callable[[T], T]:
        """Add ``entry`` under ``name``; without ``entry``, a decorator that adds what it decorates."""
        if entry is None:
            return lambda decorated: self.register(name, decorated)
        if name in self._entries:
            raise self.error(f"a {self.kind} named {name} is registered already")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` if it is registered (tests that register an entry of their own)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r} (registered: {', '.join(self._entries)})") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> tuple[tuple[str, T], ...]:
        return tuple(self._entries.items())

    def values(self) -> tuple[T, ...]:
        return tuple(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
