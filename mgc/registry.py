"""Name -> class registries for the things users add (extractors, datasets), filled by the
classes themselves: a subclass that sets its own `name` registers on definition, so adding
one is writing one module."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(dict[str, T], Generic[T]):
    """The registered classes of one kind (`kind` names it in errors)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, cls: T) -> None:
        """Register `cls` under its `name` if it sets one itself (bases and mix-ins do not)."""
        if "name" not in cls.__dict__:
            return
        if cls.name in self:
            raise ValueError(f"{self.kind} name {cls.name!r} is registered twice")
        self[cls.name] = cls

    def get_class(self, name: str) -> T:
        """The class registered as `name`, or an error listing the available ones."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; available: "
                             f"{', '.join(sorted(self))}") from None
