"""Images (issue 12): `/v1/images/generations`, `/edits` and `/variations` through the openai SDK and
raw HTTP, in front of the fake media upstream (fake_media.py):

- `image-m` (upstream `upstream-dall-e`): priced per image by "SIZE/QUALITY", then "SIZE", then "*"
  (IMAGE_PRICE: 1024x1024/standard 0.04, 1024x1024/hd 0.08, anything else 0.02);
- `gpt-image-m` (upstream `upstream-gpt-image-1`): priced per 1K tokens of the usage the upstream
  reports (the fake reports it for a model named "gpt-image…").

Each test has an account of its own, so its ledger rows and balance are its own."""

from __future__ import annotations

import base64
from decimal import Decimal

import openai
import pytest

from conftest import GPT_IMAGE_PRICE, IMAGE_PRICE, MEDIA_KEY, MEDIA_UPSTREAM
from fake_media import IMAGE_TOKENS, MEDIA_TOKENS, is_png, png
from media_helpers import Account, error_of, events_of, post_multipart, token_cost
from openai_schema import validate
from raw_http import httpx
from sdk_helpers import raw_stream

IMAGES = "ImagesResponse"
IMAGE = png(16, 16, seed="edit-source", noise=True)
MASK = png(16, 16, seed="edit-mask")
PROMPT = "a red square"  # 3 words: the fake's text input tokens


@pytest.fixture
def account(stack):
    account = Account(stack)
    yield account
    account.close()


def price(key: str) -> Decimal:
    return Decimal(IMAGE_PRICE[key])


def generate(client, **options):
    """(parsed ImagesResponse, raw body) of `images.generate`, the body validated against the schema."""
    raw = client.images.with_raw_response.generate(**options)
    body = raw.http_response.json()
    validate(body, IMAGES)
    return raw.parse(), body


def check_billed(account: Account, before: Decimal, cost: Decimal, model: str, api: str = "images") -> dict:
    """The request's ledger row (`api`: the endpoint's name, `images` for generations, `image_edits`,
    `image_variations`; `cost`) and the balance `cost` lower; the row."""
    row = account.last_row()
    assert (row["api"], row["model"], row["status"]) == (api, model, "completed"), row
    assert Decimal(row["cost"]) == cost, row
    assert before - account.balance() == cost
    assert account.held() == 0
    return row


# --- generations ---


def test_generate_two_images_as_b64_json(account, media_upstream):
    before = account.balance()
    result, body = generate(account.client, model="image-m", prompt=PROMPT, n=2, size="1024x1024",
                            quality="standard", response_format="b64_json")
    images = [base64.b64decode(item.b64_json) for item in result.data]
    assert len(images) == 2 and all(map(is_png, images))
    sent = media_upstream.last("/v1/images/generations")
    assert images == sent.images, "the images are not the upstream's"
    assert sent.headers["authorization"] == f"Bearer {MEDIA_KEY}"
    expected = {"model": MEDIA_UPSTREAM["image-m"], "prompt": PROMPT, "n": 2, "size": "1024x1024", "quality": "standard",
                "response_format": "b64_json"}
    assert {name: sent.json.get(name) for name in expected} == expected
    assert body["created"] == sent.answer["created"]
    check_billed(account, before, 2 * price("1024x1024/standard"), "image-m")


def test_generate_two_images_as_urls(account, media_upstream):
    before = account.balance()
    result, _ = generate(account.client, model="image-m", prompt=PROMPT, n=2, size="1024x1024", quality="hd",
                         response_format="url")
    assert [item.url for item in result.data] == [item["url"] for item in media_upstream.last().answer["data"]]
    fetched = [httpx.get(item.url, timeout=10) for item in result.data]
    assert [f.content for f in fetched] == media_upstream.last().images
    assert all(f.headers["content-type"] == "image/png" for f in fetched)
    check_billed(account, before, 2 * price("1024x1024/hd"), "image-m")


def test_a_size_and_quality_not_in_the_price_map_cost_the_star_price(account):
    before = account.balance()
    result, _ = generate(account.client, model="image-m", prompt=PROMPT, n=3, size="512x512", quality="standard",
                         response_format="b64_json")
    assert len(result.data) == 3
    check_billed(account, before, 3 * price("*"), "image-m")


def test_settled_for_the_images_returned(account):
    before = account.balance()
    result, _ = generate(account.client, model="image-m", prompt=PROMPT, n=3, size="1024x1024", quality="hd",
                         response_format="b64_json", extra_body={"fake": {"count": 1}})
    assert len(result.data) == 1
    check_billed(account, before, price("1024x1024/hd"), "image-m")


def test_the_hold_covers_n_images(stack, media_upstream):
    account = Account(stack, balance="0.20")
    try:
        with pytest.raises(openai.APIStatusError) as caught:  # 3 × 0.08 = 0.24 > 0.20
            account.client.images.generate(model="image-m", prompt=PROMPT, n=3, size="1024x1024", quality="hd",
                                           response_format="b64_json")
        assert caught.value.status_code == 402
        assert error_of(caught.value)["type"] == "insufficient_quota"
        assert media_upstream.received() == [], "the upstream was asked although the hold did not fit"
        assert account.balance() == Decimal("0.20") and account.held() == 0
        result, _ = generate(account.client, model="image-m", prompt=PROMPT, n=2, size="1024x1024", quality="hd",
                             response_format="b64_json")  # 0.16 fits
        assert len(result.data) == 2
        assert account.balance() == Decimal("0.04")
    finally:
        account.close()


def test_a_gpt_image_model_is_billed_by_its_reported_tokens(account, media_upstream):
    before = account.balance()
    result, body = generate(account.client, model="gpt-image-m", prompt=PROMPT, n=2, size="1024x1024", quality="high")
    assert media_upstream.last().json["model"] == MEDIA_UPSTREAM["gpt-image-m"]
    assert body["usage"] == media_upstream.last().answer["usage"], "the upstream's usage is not passed on"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (3, 2 * IMAGE_TOKENS)
    assert [base64.b64decode(item.b64_json) for item in result.data] == media_upstream.last().images
    row = check_billed(account, before, token_cost(3, 2 * IMAGE_TOKENS, GPT_IMAGE_PRICE), "gpt-image-m")
    assert (row["usage"]["prompt_tokens"], row["usage"]["completion_tokens"]) == (3, 2 * IMAGE_TOKENS)


def test_an_upstream_failure_is_not_billed(account):
    before = account.balance()
    with pytest.raises(openai.APIStatusError) as caught:
        account.client.images.generate(model="image-m", prompt=PROMPT, size="1024x1024", quality="hd",
                                       extra_body={"fake": {"status": 500}})
    assert caught.value.status_code >= 500
    error_of(caught.value)
    row = account.last_row()
    assert row["status"] == "failed" and Decimal(row["cost"]) == 0
    assert account.balance() == before and account.held() == 0


# --- edits and variations (multipart) ---


def parts_of(record) -> list[tuple]:
    """A recorded multipart body as (name, filename, content type or None, bytes), sorted by name only
    (so the order of parts of one name, as `image[]`, counts); text fields carry no content type."""
    parts = [(p.name, p.filename, p.content_type if p.filename is not None else None, p.data) for p in record.parts]
    return sorted(parts, key=lambda part: part[0])


def test_an_edit_forwards_the_multipart_fields_and_files_exactly(account, media_upstream):
    before = account.balance()
    fields = [("model", "image-m"), ("prompt", "add a hat ✓"), ("n", "2"), ("size", "1024x1024"), ("quality", "standard"),
              ("response_format", "b64_json"), ("vendor_field", "kept as is")]
    files = [("image", ("cat.png", IMAGE, "image/png")), ("mask", ("mask layer.png", MASK, "image/png"))]
    response = post_multipart(account.http, "/images/edits", fields, files)
    assert response.status_code == 200, response.text
    validate(response.json(), IMAGES)
    sent = media_upstream.last("/v1/images/edits")
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.headers["authorization"] == f"Bearer {MEDIA_KEY}"
    expected = [(name, None, None, (MEDIA_UPSTREAM["image-m"] if name == "model" else value).encode())
                for name, value in fields]
    expected += [(name, filename, content_type, data) for name, (filename, data, content_type) in files]
    assert parts_of(sent) == sorted(expected, key=lambda part: part[0])
    assert [base64.b64decode(item["b64_json"]) for item in response.json()["data"]] == sent.images
    check_billed(account, before, 2 * price("1024x1024/standard"), "image-m", api="image_edits")


def test_an_edit_with_several_images_through_the_sdk(account, media_upstream):
    second = png(16, 16, seed="second", noise=True)
    raw = account.client.images.with_raw_response.edit(
        model="image-m", image=[("a.png", IMAGE, "image/png"), ("b.png", second, "image/png")], prompt="merge them",
        size="1024x1024", quality="hd", response_format="b64_json")
    validate(raw.http_response.json(), IMAGES)
    sent = media_upstream.last("/v1/images/edits")
    assert [(p.filename, p.content_type, p.data) for p in sent.files("image[]")] == [
        ("a.png", "image/png", IMAGE), ("b.png", "image/png", second)]
    assert sent.field("model") == MEDIA_UPSTREAM["image-m"] and sent.field("prompt") == "merge them"


def test_variations(account, media_upstream):
    before = account.balance()
    raw = account.client.images.with_raw_response.create_variation(
        model="image-m", image=("v.png", IMAGE, "image/png"), n=2, size="256x256", response_format="b64_json")
    body = raw.http_response.json()
    validate(body, IMAGES)
    sent = media_upstream.last("/v1/images/variations")
    assert [(p.name, p.filename, p.content_type, p.data) for p in sent.files()] == [("image", "v.png", "image/png", IMAGE)]
    assert (sent.field("model"), sent.field("n"), sent.field("size")) == (MEDIA_UPSTREAM["image-m"], "2", "256x256")
    assert [base64.b64decode(item["b64_json"]) for item in body["data"]] == sent.images
    check_billed(account, before, 2 * price("*"), "image-m", api="image_variations")


def test_the_hold_covers_n_edited_images(stack, media_upstream):
    account = Account(stack, balance="0.10")
    try:
        response = post_multipart(account.http, "/images/edits",
                                  [("model", "image-m"), ("prompt", "x"), ("n", "2"), ("size", "1024x1024"), ("quality", "hd")],
                                  [("image", ("cat.png", IMAGE, "image/png"))])
        assert response.status_code == 402, response.text
        assert media_upstream.received() == []
        assert account.balance() == Decimal("0.10")
    finally:
        account.close()


# --- streaming ---


def test_a_streamed_generation_relays_the_partial_images(account, media_upstream):
    before = account.balance()
    stream = raw_stream(account.http, "/images/generations", {
        "model": "gpt-image-m", "prompt": PROMPT, "stream": True, "partial_images": 2, "size": "1024x1024",
        "quality": "high"})
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert not stream.stalled and not stream.cut
    events = events_of(stream.text)
    names = [name for name, _ in events]
    types = [data["type"] for _, data in events]
    assert types == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert names in ([None] * 3, types), "an `event:` line that does not name the data's type"
    for _, data in events:
        validate(data, "ImageGenStreamEvent")
    sent = media_upstream.last("/v1/images/generations")
    assert [data for _, data in events] == [data for _, data in events_of(bytes(sent.sent).decode())]
    assert [d["partial_image_index"] for _, d in events[:2]] == [0, 1]
    assert base64.b64decode(events[-1][1]["b64_json"]) == sent.images[0]
    usage = events[-1][1]["usage"]
    check_billed(account, before, token_cost(usage["input_tokens"], usage["output_tokens"], GPT_IMAGE_PRICE), "gpt-image-m")


def test_a_streamed_generation_through_the_sdk(account, media_upstream):
    events = list(account.client.images.generate(model="gpt-image-m", prompt=PROMPT, stream=True, partial_images=1))
    assert [e.type for e in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert base64.b64decode(events[-1].b64_json) == media_upstream.last().images[0]


def test_a_streamed_edit_relays_image_edit_events(account, media_upstream):
    before = account.balance()
    fields = [("model", "gpt-image-m"), ("prompt", "add a hat"), ("stream", "true"), ("partial_images", "1")]
    with post_multipart(account.http, "/images/edits", fields, [("image", ("cat.png", IMAGE, "image/png"))],
                        stream=True) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = events_of(text)
    assert [data["type"] for _, data in events] == ["image_edit.partial_image", "image_edit.completed"]
    for _, data in events:
        validate(data, "ImageEditStreamEvent")
    sent = media_upstream.last("/v1/images/edits")
    assert sent.field("stream") == "true" and sent.field("model") == MEDIA_UPSTREAM["gpt-image-m"]
    usage = events[-1][1]["usage"]
    assert usage["input_tokens"] == 3 + MEDIA_TOKENS
    check_billed(account, before, token_cost(usage["input_tokens"], usage["output_tokens"], GPT_IMAGE_PRICE), "gpt-image-m",
                 api="image_edits")
