"""The JSON Schema subset OpenAI's Structured Outputs accept, checked before anything compiles.

A keyword outside it (`allOf`, `not`, `minLength`, `uniqueItems`, ...) is refused with its name
and where it is, rather than ignored: an ignored keyword would let the engine return JSON that
the caller's own validator rejects. `strict` adds OpenAI's strict-mode rules: the root is an
object, and every object lists all its properties as required and sets
`additionalProperties: false` (an optional field is a required one that may be null).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})

_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$schema", "$id"})
_ANY = frozenset({"type", "enum", "const", "anyOf", "$ref", "$defs", "definitions"})
_BY_TYPE = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "string": frozenset({"pattern", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
}
_SUPPORTED = _ANNOTATIONS | _ANY | frozenset().union(*_BY_TYPE.values())
_NUMERIC = {"number", "integer"}


def check_schema(schema: Any, *, strict: bool = False) -> None:
    """Raise ValueError naming the first unsupported keyword or malformed value and its JSON
    pointer (`#/properties/tags/items`)."""
    if not isinstance(schema, Mapping):
        raise ValueError("the schema must be a JSON object")
    if strict:
        if schema.get("type") != "object" or "anyOf" in schema:
            raise ValueError("with strict, the root must be {\"type\": \"object\"} (not anyOf)")
    _check(schema, "#", strict, schema)


def _check(node: Any, at: str, strict: bool, root: Mapping[str, Any]) -> None:
    if isinstance(node, bool):
        return  # true / false schemas
    if not isinstance(node, Mapping):
        raise ValueError(f"{at} must be a schema object")
    for keyword in node:
        if keyword not in _SUPPORTED:
            raise ValueError(f"unsupported keyword {keyword!r} at {at} (Structured Outputs do not accept it)")
    types = _types(node, at)
    for kind, keywords in _BY_TYPE.items():
        present = sorted(k for k in keywords if k in node)
        accepted = _NUMERIC if kind == "number" else {kind}
        if present and types is not None and not types & accepted:
            raise ValueError(f"keyword {present[0]!r} at {at} needs type {' or '.join(sorted(accepted))}")
    if "enum" in node and not (isinstance(node["enum"], list) and node["enum"]):
        raise ValueError(f"enum at {at} must be a non-empty list")
    if "format" in node and node["format"] not in STRING_FORMATS:
        raise ValueError(f"unsupported string format {node['format']!r} at {at} (use one of {sorted(STRING_FORMATS)})")
    if "pattern" in node and not isinstance(node["pattern"], str):
        raise ValueError(f"pattern at {at} must be a string")
    for keyword in ("minItems", "maxItems"):
        if keyword in node and not (isinstance(node[keyword], int) and node[keyword] >= 0):
            raise ValueError(f"{keyword} at {at} must be a non-negative integer")
    for keyword in _BY_TYPE["number"]:
        if keyword in node and (isinstance(node[keyword], bool) or not isinstance(node[keyword], (int, float))):
            raise ValueError(f"{keyword} at {at} must be a number")
    if "$ref" in node:
        _resolve(node["$ref"], at, root)
    for group in ("$defs", "definitions"):
        for name, sub in _members(node, group, at).items():
            _check(sub, f"{at}/{group}/{name}", strict, root)
    if "anyOf" in node:
        if not (isinstance(node["anyOf"], list) and node["anyOf"]):
            raise ValueError(f"anyOf at {at} must be a non-empty list of schemas")
        for index, sub in enumerate(node["anyOf"]):
            _check(sub, f"{at}/anyOf/{index}", strict, root)
    if "items" in node:
        _check(node["items"], f"{at}/items", strict, root)
    properties = _members(node, "properties", at)
    for name, sub in properties.items():
        _check(sub, f"{at}/properties/{name}", strict, root)
    required = node.get("required", [])
    if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        raise ValueError(f"required at {at} must be a list of property names")
    additional = node.get("additionalProperties", True)
    if not isinstance(additional, bool):
        _check(additional, f"{at}/additionalProperties", strict, root)
    if strict and types is not None and "object" in types:
        if additional is not False:
            raise ValueError(f"with strict, the object at {at} must set additionalProperties to false")
        missing = [name for name in properties if name not in required]
        if missing:
            raise ValueError(
                f"with strict, every property of the object at {at} must be required; {missing[0]!r} is not "
                "(make an optional field required with type [..., \"null\"])"
            )


def _types(node: Mapping[str, Any], at: str) -> set[str] | None:
    kind = node.get("type")
    if kind is None:
        return None
    kinds = kind if isinstance(kind, list) else [kind]
    for item in kinds:
        if item not in TYPES:
            raise ValueError(f"unknown type {item!r} at {at}")
    return set(kinds)


def _members(node: Mapping[str, Any], keyword: str, at: str) -> Mapping[str, Any]:
    value = node.get(keyword, {})
    if not isinstance(value, Mapping):
        raise ValueError(f"{keyword} at {at} must be an object")
    return value


def _resolve(ref: Any, at: str, root: Mapping[str, Any]) -> None:
    """Only references inside the schema itself (`#`, `#/$defs/name`): nothing is fetched."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise ValueError(f"$ref {ref!r} at {at} must point inside the schema (start with '#')")
    node: Any = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"$ref {ref!r} at {at} points to nothing")
        node = node[part]
