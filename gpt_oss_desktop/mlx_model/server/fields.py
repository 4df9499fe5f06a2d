"""Reading a JSON request body field by field: every wrong type or value is a 400 that names the
field (`messages[2].tool_calls[0].function.name`), never an exception from deep inside."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import bad_request

T = TypeVar("T")
_MISSING = object()

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "an array", dict: "an object"}


def _describe(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def typed(value: Any, types: type | tuple[type, ...], path: str) -> Any:
    """`value` when it has one of `types` (JSON has no int/bool distinction worth keeping: a bool
    is not accepted where a number is wanted)."""
    types = types if isinstance(types, tuple) else (types,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in types:
        raise bad_request(f"{path} must be {_describe(types)}, not a boolean", path)
    if not isinstance(value, types):
        raise bad_request(f"{path} must be {_describe(types)}, not {_json_type(value)}", path)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__


class Fields:
    """One JSON object of a request and its path, for messages that name the field at fault."""

    def __init__(self, data: Any, path: str = "") -> None:
        self.path = path
        self.data: Mapping[str, Any] = typed(data, dict, path or "the request body")

    def _path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        """The field when present and not null, else `default`."""
        value = self.data.get(key)
        if value is None:
            return default
        return typed(value, types, self._path(key))

    def require(self, key: str, types: type | tuple[type, ...]) -> Any:
        if self.data.get(key) is None:
            raise bad_request(f"{self._path(key)} is required", self._path(key))
        return self.get(key, types)

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.get(key, str, default)
        if value is not None and value not in allowed:
            raise bad_request(f"{self._path(key)} must be one of {', '.join(allowed)}, not {value!r}", self._path(key))
        return value

    def number(self, key: str, low: float, high: float, default: float | None = None) -> float | None:
        value = self.get(key, float, default)
        if value is not None and not low <= value <= high:
            raise bad_request(f"{self._path(key)} must be between {low:g} and {high:g}, not {value:g}", self._path(key))
        return value

    def positive_int(self, key: str) -> int | None:
        value = self.get(key, int)
        if value is not None and value < 1:
            raise bad_request(f"{self._path(key)} must be at least 1, not {value}", self._path(key))
        return value

    def object(self, key: str) -> "Fields | None":
        value = self.data.get(key)
        return None if value is None else Fields(value, self._path(key))

    def objects(self, key: str) -> list["Fields"]:
        """The objects of an array field (empty when absent)."""
        values = self.get(key, list, [])
        return [Fields(value, f"{self._path(key)}[{index}]") for index, value in enumerate(values)]
