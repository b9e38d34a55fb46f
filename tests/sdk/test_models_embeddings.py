"""GET /v1/models, GET /v1/models/{id} and /v1/embeddings."""

from __future__ import annotations

import base64
import copy
import struct

import openai
import pytest

from openai_schema import validate
from sdk_helpers import EMBEDDINGS, ERROR, MODELS

CONFIGURED = {"m", "m-nostream", "m-always", "m-dead", "priced", "m-capture", "demo", "emb", "m-429", "m-routed", "m-limited", "m-unbounded",
              "claude-fake",
              # Media (issue 12), behind the fake media upstream.
              "vision-m", "image-m", "gpt-image-m", "tts-m", "tts-sec-m", "whisper-m"}


def test_model_list_has_every_configured_model(client):
    raw = client.models.with_raw_response.list()
    body = raw.http_response.json()
    validate(body, MODELS)
    ids = [model.id for model in raw.parse()]
    assert set(ids) == CONFIGURED
    assert len(ids) == len(set(ids)), "a model is listed twice"
    assert "m-alias" not in ids, "aliases are not models of their own"


def test_the_catalog_needs_a_key_as_openais_does(stack):
    with openai.OpenAI(base_url=stack.url, api_key="sk-sy-not-a-key", max_retries=0) as anonymous:
        with pytest.raises(openai.AuthenticationError) as caught:
            anonymous.models.list()
    assert caught.value.status_code == 401
    validate(caught.value.response.json(), ERROR)


def test_model_entries_carry_gateway_metadata(http):
    response = http.get("/models")
    assert response.status_code == 200
    models = {entry["id"]: entry for entry in response.json()["data"]}
    for entry in models.values():
        assert entry["object"] == "model"
        for key in ("aliases", "endpoints"):
            assert key in entry, f"{entry['id']} has no {key!r}: {entry}"
        assert isinstance(entry["aliases"], list) and isinstance(entry["endpoints"], list)
    # Configured for `m` only; the others have no context window or description to show.
    assert models["m"]["context_length"] == 8192
    assert models["m"]["description"] == "Fake upstream model for the SDK tests."
    assert models["m"]["aliases"] == ["m-alias"]
    assert models["emb"]["endpoints"] == ["/v1/embeddings"]
    assert "/v1/chat/completions" in models["m"]["endpoints"]
    assert "/v1/embeddings" not in models["m"]["endpoints"]


def test_retrieve_model(client, http):
    model = client.models.retrieve("demo")
    assert (model.id, model.object) == ("demo", "model")
    validate({"object": "list", "data": [http.get("/models/demo").json()]}, MODELS)


def test_retrieve_model_by_alias_returns_canonical_id(client):
    assert client.models.retrieve("m-alias").id == "m"


def test_retrieve_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    body = caught.value.response.json()
    validate(body, ERROR)
    assert body["error"]["code"] == "model_not_found"


# --- embeddings ---


def decode_base64(body: dict) -> dict:
    """OpenAI's schema types `embedding` as numbers only; base64 answers are checked decoded."""
    decoded = copy.deepcopy(body)
    for item in decoded.get("data", []):
        if isinstance(item.get("embedding"), str):
            raw = base64.b64decode(item["embedding"])
            assert len(raw) % 4 == 0, "base64 embedding is not a whole number of float32 values"
            item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return decoded


def create_embeddings(client, **kwargs):
    raw = client.embeddings.with_raw_response.create(**kwargs)
    body = raw.http_response.json()
    validate(decode_base64(body), EMBEDDINGS)
    return raw.parse(), body


def test_embeddings_default_sdk_request(client):
    """The SDK asks for base64 by default and decodes it into floats."""
    result, body = create_embeddings(client, model="emb", input=["a", "b"])
    assert result.model == "emb"
    assert [item.index for item in result.data] == [0, 1]
    vectors = [item.embedding for item in result.data]
    assert all(len(vector) == 8 and all(isinstance(x, float) for x in vector) for vector in vectors)
    assert vectors[0] != vectors[1]
    assert isinstance(body["data"][0]["embedding"], str), "expected base64 on the wire"
    assert result.usage.prompt_tokens == 2


def test_embeddings_float_matches_base64(client):
    floats, body = create_embeddings(client, model="emb", input=["a", "b"], encoding_format="float")
    assert isinstance(body["data"][0]["embedding"], list)
    assert len(floats.data) == 2 and floats.model == "emb"
    _, encoded = create_embeddings(client, model="emb", input=["a", "b"], encoding_format="base64")
    for float_item, base64_item in zip(body["data"], decode_base64(encoded)["data"]):
        assert base64_item["embedding"] == pytest.approx(float_item["embedding"], abs=1e-6)


def test_embeddings_are_deterministic_per_input(client):
    first, _ = create_embeddings(client, model="emb", input="same text", encoding_format="float")
    second, _ = create_embeddings(client, model="emb", input=["other", "same text"], encoding_format="float")
    assert first.data[0].embedding == second.data[1].embedding


def test_embeddings_with_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x", encoding_format="float")
