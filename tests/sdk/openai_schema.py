"""Validate JSON bodies against the schemas of OpenAI's official OpenAPI description.

The description (tests/sdk/openapi/openapi.yaml, a copy of OpenAI's, see the README there; the
environment variable OPENAI_OPENAPI_YAML overrides it) is OpenAPI 3.1 but still marks some schemas with the
3.0 keyword `nullable: true`, which JSON Schema ignores; `_convert` rewrites those into
`anyOf: [schema, {type: null}]`. `$ref: '#/components/schemas/X'` resolves through a `referencing`
registry holding the whole converted document, so refs need no rewriting. Union schemas told apart
by `type` (the Responses API's `Response` output items and `ResponseStreamEvent`) validate as plain
oneOf / anyOf; `_explain` reports the errors of the branch the object's `type` names.
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


def _picks_other_branch(error: jsonschema.ValidationError) -> bool:
    """Whether `error` (inside a oneOf/anyOf branch) says the instance's `type` is not the branch's."""
    return list(error.relative_path) == ["type"] and error.validator in ("enum", "const")


def _explain(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors worth showing. A oneOf / anyOf (`OutputItem`, `ResponseStreamEvent`, content parts…)
    whose branches are told apart by `type` — OpenAPI's `discriminator`, which JSON Schema ignores —
    fails with one error listing every branch's complaints; this returns instead the errors of the
    branch the instance's `type` selects, recursively, so a bad `response.output_text.delta` reads
    `at /logprobs: 'logprobs' is a required property` rather than fifty mismatches."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    chosen = [errors for errors in branches.values() if not any(_picks_other_branch(e) for e in errors)]
    if len(chosen) != 1 or len(chosen) == len(branches):
        return [error]  # no discriminating `type`, or none of the branches is for it
    explained = []
    for sub in chosen[0]:
        explained += _explain(sub)
    return explained


def errors_of(instance, name: str) -> list[jsonschema.ValidationError]:
    """Every violation of schema `name` by `instance`, oneOf / anyOf failures narrowed by `type`."""
    errors = []
    for error in validator(name).iter_errors(instance):
        errors += _explain(error)
    return sorted(errors, key=lambda e: [str(part) for part in e.absolute_path])


def validate(instance, name: str) -> None:
    """Raise AssertionError listing every violation of schema `name` by `instance`."""
    errors = errors_of(instance, name)
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]]
        raise AssertionError(f"response does not match OpenAI schema {name}:\n" + "\n".join(lines) + f"\nbody: {instance!r:.2000}")


def is_valid(instance, name: str) -> bool:
    return validator(name).is_valid(instance)
