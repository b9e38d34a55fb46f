"""Validate JSON bodies against the schemas of OpenAI's official OpenAPI description.

The description (tests/sdk/openapi/openapi.yaml, a copy of OpenAI's, see the README there; the
environment variable OPENAI_OPENAPI_YAML overrides it) is OpenAPI 3.1 but still marks some schemas with the
3.0 keyword `nullable: true`, which JSON Schema ignores; `_convert` rewrites those into
`anyOf: [schema, {type: null}]`. `$ref: '#/components/schemas/X'` resolves through a `referencing`
registry holding the whole converted document, so refs need no rewriting.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_DEFAULT_SPEC = Path(__file__).resolve().parent / "openapi" / "openapi.yaml"
_URI = "urn:openai:openapi"

# Keywords that only mean something to OpenAPI tooling.
_OPENAPI_ONLY = {"nullable", "discriminator", "example", "examples", "xml", "externalDocs", "readOnly", "writeOnly"}


def spec_path() -> Path:
    env = os.environ.get("OPENAI_OPENAPI_YAML")
    return Path(env) if env else _DEFAULT_SPEC


def _convert(node):
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-") or key in _OPENAPI_ONLY:
            continue
        if key in ("properties", "patternProperties", "$defs", "definitions", "schemas"):
            # A map of names to schemas: names are not keywords, so keep every key.
            out[key] = {name: _convert(sub) for name, sub in value.items()} if isinstance(value, dict) else value
        elif key in ("enum", "const", "default", "required"):
            out[key] = value  # data, not schemas
        else:
            out[key] = _convert(value)
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    with open(spec_path(), "rb") as handle:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(handle, Loader=loader)
    converted = {"components": {"schemas": _convert(document["components"]["schemas"])}}
    resource = Resource.from_contents(converted, default_specification=DRAFT202012)
    return Registry().with_resource(_URI, resource)


@functools.lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.Draft202012Validator:
    registry = _registry()
    if name not in registry.contents(_URI)["components"]["schemas"]:
        raise KeyError(f"no schema {name!r} in {spec_path()}")
    schema = {"$ref": f"{_URI}#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(instance, name: str) -> None:
    """Raise AssertionError listing every violation of schema `name` by `instance`."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]]
        raise AssertionError(f"response does not match OpenAI schema {name}:\n" + "\n".join(lines) + f"\nbody: {instance!r:.2000}")


def is_valid(instance, name: str) -> bool:
    return validator(name).is_valid(instance)
