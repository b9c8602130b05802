"""`Value`: the base of the doctor's small value types (findings, records read from files, ...).

A subclass names its fields in `__slots__` and sets each in `__init__`, whose signature is
where the field types and defaults are written. `Value` adds what a value type needs on top:
equality and hashing by field, a readable repr and `_replace`. Instances are treated as
read-only by convention.

Hashing: a field holding a dict, list or set (a Finding's `facts`, its `details` as a list) is
hashed by its frozen contents, so every value whose fields are plain data can be hashed, and
equal values hash equally. A field of any other unhashable type still raises `TypeError`. As
with the rest of the read-only convention, a value must not be changed after it was hashed.

Why not `collections.namedtuple`, `typing.NamedTuple` or dataclasses: every `sidequest doctor`
run creates about twenty of these classes, and those build theirs by compiling generated
code, about 0.1 ms per class (typing.NamedTuple more), a tenth of that for a plain class.
Measured with callgrind: nineteen namedtuple classes cost 5.4 M instructions more than nineteen
`Value` classes, about 2% of the offline doctor's 282 M.
"""

from __future__ import annotations

from typing import Any


def _frozen(value: Any) -> Any:
    """A hashable stand-in for plain data: dicts, lists and sets by their (frozen) contents."""
    if isinstance(value, dict):
        return frozenset((key, _frozen(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_frozen(item) for item in value)
    return value


class Value:
    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), _frozen(self._values())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def _replace(self, **changes: Any) -> Any:
        """A copy with the given fields changed."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return type(self)(**values)
