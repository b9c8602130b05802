"""Validate documents against ../shared/report.schema.json without a third-party validator.

Covers exactly the JSON Schema keywords that schema uses (type, required, properties, const,
enum, pattern, minLength, minimum, items, oneOf, additionalProperties); an unknown keyword
fails loudly so a schema change cannot silently weaken the tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "report.schema.json"
PACKAGED_SCHEMA = Path(__file__).resolve().parents[2] / "doctor" / "report.schema.json"

KNOWN = {
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "const",
    "enum",
    "pattern",
    "minLength",
    "minimum",
    "items",
    "oneOf",
    "additionalProperties",
}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load_schema() -> dict[str, Any]:
    path = SCHEMA_PATH if SCHEMA_PATH.exists() else PACKAGED_SCHEMA
    return json.loads(path.read_text(encoding="utf-8"))


def errors(doc: Any, schema: dict[str, Any] | None = None, where: str = "$") -> list[str]:
    schema = load_schema() if schema is None else schema
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"schema keyword(s) not supported by this checker: {sorted(unknown)}")
    found: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](doc) for t in types):
            return [f"{where}: expected {types}, got {type(doc).__name__}"]
    if "const" in schema and doc != schema["const"]:
        found.append(f"{where}: expected {schema['const']!r}")
    if "enum" in schema and doc not in schema["enum"]:
        found.append(f"{where}: {doc!r} not in {schema['enum']}")
    if isinstance(doc, str):
        if "pattern" in schema and not re.search(schema["pattern"], doc):
            found.append(f"{where}: {doc!r} does not match {schema['pattern']}")
        if len(doc) < schema.get("minLength", 0):
            found.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(doc, (int, float)) and not isinstance(doc, bool) and "minimum" in schema:
        if doc < schema["minimum"]:
            found.append(f"{where}: {doc} < {schema['minimum']}")
    if isinstance(doc, dict):
        for key in schema.get("required", []):
            if key not in doc:
                found.append(f"{where}: missing {key!r}")
        properties = schema.get("properties", {})
        for key, value in doc.items():
            if key in properties:
                found += errors(value, properties[key], f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += errors(value, schema["additionalProperties"], f"{where}.{key}")
    if isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            found += errors(item, schema["items"], f"{where}[{i}]")
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not errors(doc, s, where)]
        if len(matching) != 1:
            found.append(f"{where}: matches {len(matching)} of oneOf, expected exactly 1")
    return found


def assert_valid_report(doc: Any) -> None:
    problems = errors(doc)
    assert not problems, "report does not match report.schema.json:\n" + "\n".join(problems)
