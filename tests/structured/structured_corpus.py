"""JSON Schemas the constrained-decoding tests hold a random model to: every feature the
Structured Outputs subset has (nested objects, arrays with bounds, enums, const, anyOf, $ref,
numbers with bounds, integer and number, required and optional fields, patterns, formats,
nullable fields), strict and not."""

from __future__ import annotations

SHORT = {"type": "string", "pattern": "^[a-z]{1,6}$"}

CORPUS: dict[str, tuple[dict, bool]] = {
    "flat_strict": ({
        "type": "object",
        "properties": {"name": SHORT, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"], "additionalProperties": False,
    }, True),
    "optional_fields": ({
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 99}, "note": SHORT, "flag": {"type": "boolean"}},
        "required": ["id"], "additionalProperties": False,
    }, False),
    "nullable_strict": ({
        "type": "object",
        "properties": {"nickname": {"type": ["string", "null"], "pattern": "^[A-Z][a-z]{0,4}$"}, "ok": {"type": "boolean"}},
        "required": ["nickname", "ok"], "additionalProperties": False,
    }, True),
    "enum_colour": ({
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
        "required": ["colour"], "additionalProperties": False,
    }, True),
    "enum_mixed": ({
        "type": "object",
        "properties": {"value": {"enum": [1, "two", None, True]}},
        "required": ["value"], "additionalProperties": False,
    }, True),
    "const": ({
        "type": "object",
        "properties": {"version": {"const": 2}, "kind": {"type": "string", "const": "report"}},
        "required": ["version", "kind"], "additionalProperties": False,
    }, True),
    "number_bounds": ({
        "type": "object",
        "properties": {"ratio": {"type": "number", "minimum": 0, "maximum": 1},
                       "temp": {"type": "number", "exclusiveMinimum": -50, "exclusiveMaximum": 60}},
        "required": ["ratio", "temp"], "additionalProperties": False,
    }, True),
    "integer_multiple": ({
        "type": "object",
        "properties": {"step": {"type": "integer", "multipleOf": 5, "minimum": 0, "maximum": 100}},
        "required": ["step"], "additionalProperties": False,
    }, True),
    "array_bounds": ({
        "type": "object",
        "properties": {"tags": {"type": "array", "items": SHORT, "minItems": 1, "maxItems": 3}},
        "required": ["tags"], "additionalProperties": False,
    }, True),
    "array_of_objects": ({
        "type": "object",
        "properties": {"points": {"type": "array", "maxItems": 3, "items": {
            "type": "object", "properties": {"x": {"type": "integer", "minimum": -9, "maximum": 9},
                                             "y": {"type": "integer", "minimum": -9, "maximum": 9}},
            "required": ["x", "y"], "additionalProperties": False}}},
        "required": ["points"], "additionalProperties": False,
    }, True),
    "nested_objects": ({
        "type": "object",
        "properties": {"user": {"type": "object", "properties": {
            "name": SHORT,
            "address": {"type": "object", "properties": {"city": {"type": "string", "pattern": "^[A-Z][a-z]{2,8}$"},
                                                          "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                        "required": ["city", "zip"], "additionalProperties": False}},
            "required": ["name", "address"], "additionalProperties": False}},
        "required": ["user"], "additionalProperties": False,
    }, True),
    "any_of": ({
        "type": "object",
        "properties": {"result": {"anyOf": [
            {"type": "object", "properties": {"ok": {"const": True}, "value": {"type": "integer", "minimum": 0, "maximum": 9}},
             "required": ["ok", "value"], "additionalProperties": False},
            {"type": "object", "properties": {"ok": {"const": False}, "error": SHORT},
             "required": ["ok", "error"], "additionalProperties": False}]}},
        "required": ["result"], "additionalProperties": False,
    }, True),
    "any_of_scalars": ({
        "type": "object",
        "properties": {"id": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 999},
                                        {"type": "string", "pattern": "^id-[0-9]{3}$"}]}},
        "required": ["id"], "additionalProperties": False,
    }, True),
    "pattern_codes": ({
        "type": "object",
        "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                       "hex": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}},
        "required": ["sku", "hex"], "additionalProperties": False,
    }, True),
    "formats": ({
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}, "id": {"type": "string", "format": "uuid"},
                       "ip": {"type": "string", "format": "ipv4"}},
        "required": ["day", "id", "ip"], "additionalProperties": False,
    }, True),
    "defs_and_ref": ({
        "type": "object",
        "$defs": {"money": {"type": "object", "properties": {"amount": {"type": "integer", "minimum": 0, "maximum": 1000},
                                                              "currency": {"enum": ["EUR", "USD"]}},
                            "required": ["amount", "currency"], "additionalProperties": False}},
        "properties": {"price": {"$ref": "#/$defs/money"}, "tax": {"$ref": "#/$defs/money"}},
        "required": ["price", "tax"], "additionalProperties": False,
    }, True),
    "recursive_ref": ({
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {
            "v": {"type": "integer", "minimum": 0, "maximum": 9},
            "kids": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/node"}}},
            "required": ["v", "kids"], "additionalProperties": False}},
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "required": ["tree"], "additionalProperties": False,
    }, True),
    "booleans_and_null": ({
        "type": "object",
        "properties": {"a": {"type": "boolean"}, "b": {"type": "null"}, "c": {"type": ["boolean", "null"]}},
        "required": ["a", "b", "c"], "additionalProperties": False,
    }, True),
    "array_of_enums": ({
        "type": "object",
        "properties": {"days": {"type": "array", "minItems": 2, "maxItems": 4, "items": {"enum": ["mon", "tue", "wed"]}}},
        "required": ["days"], "additionalProperties": False,
    }, True),
    "descriptions_and_titles": ({
        "title": "Answer", "description": "an answer with annotations",
        "type": "object",
        "properties": {"score": {"type": "integer", "description": "0 to 10", "minimum": 0, "maximum": 10, "default": 5},
                       "label": {"type": "string", "title": "Label", "enum": ["low", "high"], "examples": ["low"]}},
        "required": ["score", "label"], "additionalProperties": False,
    }, True),
    "type_union": ({
        "type": "object",
        "properties": {"v": {"type": ["integer", "boolean"], "minimum": 0, "maximum": 50}},
        "required": ["v"], "additionalProperties": False,
    }, True),
    "matrix": ({
        "type": "object",
        "properties": {"rows": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
            "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0, "maximum": 9}}}},
        "required": ["rows"], "additionalProperties": False,
    }, True),
}

UNBOUNDED: dict[str, tuple[dict, bool]] = {
    # A random model rarely closes a free string or stops adding keys to an open object: these
    # reach the token limit inside the JSON, which the engine must report as incomplete.
    "free_string": ({
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"], "additionalProperties": False,
    }, True),
    "open_object": ({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 5}},
        "required": ["n"], "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 5},
    }, False),
}
