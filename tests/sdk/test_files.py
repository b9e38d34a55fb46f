"""Uploads for vision (issue 12): `/v1/files` through the openai SDK, and uploaded files used in chat
completions and the Responses API, as data URLs to an OpenAI-compatible upstream (the fake media
upstream behind `vision-m`, fake_media.py, which describes and records every image and file it got).

Each test has an account of its own (files are the account's; its ledger and balance are its own).
The test config sets `files: {max_bytes: 1 MiB, retention: 1h}` (conftest.py)."""

from __future__ import annotations

import hashlib
import time
from decimal import Decimal

import openai
import pytest
import yaml

from conftest import (
    AUDIO_MAX_UPLOAD_BYTES, FILES_MAX_BYTES, GPT_IMAGE_PRICE, IMAGE_PRICE, MEDIA_KEY, MEDIA_UPSTREAM, TTS_CHARACTERS_PRICE,
    TTS_SECOND_PRICE, VISION_PRICE, WHISPER_SECOND_PRICE,
)
from fake_media import MEDIA_TOKENS, data_url, describe_media, png, wav
from media_helpers import Account, error_of, post_multipart, raw_error, token_cost, validate_file
from openai_schema import validate
from sdk_helpers import CHAT_RESPONSE, validate_response

RETENTION_S = 3600
IMAGE = png(32, 32, seed="files", noise=True)  # 3 KB of noise: its hash is its own
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TEXT = "Just some notes.\nNothing here is an image.\n".encode()
ZIP = b"PK\x03\x04" + bytes(60)


@pytest.fixture
def account(stack):
    account = Account(stack)
    yield account
    account.close()


def upload(client: openai.OpenAI, data: bytes, name: str = "pixel.png", content_type: str = "image/png",
           purpose: str = "vision", **options):
    """(parsed File, raw JSON body) of a `files.create`, the body validated against `OpenAIFile`."""
    raw = client.files.with_raw_response.create(file=(name, data, content_type), purpose=purpose, **options)
    body = raw.http_response.json()
    validate_file(body)
    return raw.parse(), body


def listed(client: openai.OpenAI, **params) -> list[dict]:
    """GET /v1/files as raw JSON: its items, each validated against `OpenAIFile`."""
    raw = client.files.with_raw_response.list(**params)
    body = raw.http_response.json()
    assert body["object"] == "list" and body["has_more"] is False, body
    for item in body["data"]:
        validate_file(item)
    return body["data"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chat_with(client, *parts, model: str = "vision-m", **options):
    """(parsed completion, raw body) of a chat whose one user message has a text part and `parts`."""
    content = [{"type": "text", "text": "describe this please"}, *parts]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": content}],
                                                           **options)
    body = raw.http_response.json()
    validate(body, CHAT_RESPONSE)
    return raw.parse(), body


def test_the_media_config_is_what_the_tests_assume(stack):
    config = yaml.safe_load(stack.config.read_text())
    assert config["files"]["max_bytes"] == FILES_MAX_BYTES and config["files"]["retention"] == "1h"
    for model, upstream in MEDIA_UPSTREAM.items():
        assert config["models"][model]["deployments"][0] == {"provider": "media", "model": upstream}
    prices = {model: config["models"][model]["price"] for model in MEDIA_UPSTREAM}
    assert prices == {
        "vision-m": VISION_PRICE, "image-m": {"image": IMAGE_PRICE}, "gpt-image-m": GPT_IMAGE_PRICE,
        "tts-m": {"characters": TTS_CHARACTERS_PRICE}, "tts-sec-m": {"audio_second": TTS_SECOND_PRICE},
        "whisper-m": {"audio_second": WHISPER_SECOND_PRICE},
    }
    assert config["audio"]["max_upload_bytes"] == AUDIO_MAX_UPLOAD_BYTES


# --- the File object and its routes ---


def test_an_upload_answers_a_file_object(account):
    before = int(time.time())
    created, body = upload(account.client, IMAGE, name="pixel.png")
    assert created.id.startswith("file-") and created.object == "file"
    assert (created.bytes, created.filename, created.purpose, created.status) == (len(IMAGE), "pixel.png", "vision", "processed")
    assert body.get("status_details") is None
    assert before - 5 <= created.created_at <= time.time() + 5
    assert created.expires_at == created.created_at + RETENTION_S
    again, _ = upload(account.client, IMAGE, name="pixel.png")
    assert again.id != created.id


def test_expires_after_shortens_the_retention(account):
    created, _ = upload(account.client, IMAGE, expires_after={"anchor": "created_at", "seconds": 600})
    assert created.expires_at == created.created_at + 600


def test_a_file_is_gone_once_it_expired(account, media_upstream):
    created, _ = upload(account.client, IMAGE, expires_after={"anchor": "created_at", "seconds": 1})
    assert created.expires_at == created.created_at + 1
    time.sleep(max(0.0, created.expires_at + 1.2 - time.time()))
    for call in (account.client.files.retrieve, account.client.files.content):
        with pytest.raises(openai.NotFoundError):
            call(created.id)
    assert listed(account.client) == []
    with pytest.raises(openai.NotFoundError):
        chat_with(account.client, {"type": "image_url", "image_url": {"url": created.id}})
    assert media_upstream.received() == []


def test_list_retrieve_content_and_delete(account):
    client = account.client
    image, _ = upload(client, IMAGE, name="first.png")
    time.sleep(1.05)  # created_at is in whole seconds: newest first must not hang on a tie
    notes, _ = upload(client, TEXT, name="notes.txt", content_type="text/plain", purpose="user_data")
    assert [item["id"] for item in listed(client)] == [notes.id, image.id], "newest first"
    assert [item["id"] for item in listed(client, purpose="vision")] == [image.id]
    assert [item["id"] for item in listed(client, purpose="user_data")] == [notes.id]
    assert [item.id for item in client.files.list()] == [notes.id, image.id]

    raw = client.files.with_raw_response.retrieve(image.id)
    validate_file(raw.http_response.json())
    assert raw.parse() == image
    content = client.files.content(image.id)
    assert content.content == IMAGE
    assert content.response.headers["content-type"].split(";")[0] == "image/png"
    text = client.files.content(notes.id)
    assert text.content == TEXT and text.response.headers["content-type"].startswith("text/plain")

    raw = client.files.with_raw_response.delete(image.id)
    validate(raw.http_response.json(), "DeleteFileResponse")
    assert raw.http_response.json() == {"id": image.id, "object": "file", "deleted": True}
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            call(image.id)
        assert error_of(caught.value)["code"] == "not_found"
    assert [item["id"] for item in listed(client)] == [notes.id]


def test_the_type_is_sniffed_from_the_bytes_not_the_name(account):
    client = account.client
    named_text, _ = upload(client, IMAGE, name="x.txt", content_type="text/plain")
    assert named_text.filename == "x.txt" and named_text.purpose == "vision"
    assert client.files.content(named_text.id).response.headers["content-type"].split(";")[0] == "image/png"
    gif, _ = upload(client, GIF, name="photo.png", content_type="image/png")
    assert client.files.content(gif.id).response.headers["content-type"].split(";")[0] == "image/gif"


@pytest.mark.parametrize("data, detected", [(TEXT, "text"), (PDF, "pdf"), (ZIP, None)], ids=["text", "pdf", "zip"])
def test_what_is_not_an_image_is_refused_for_vision(account, data, detected):
    with pytest.raises(openai.BadRequestError) as caught:
        account.client.files.create(file=("cat.png", data, "image/png"), purpose="vision")
    error = error_of(caught.value)
    assert error["code"] == "invalid_file_type", error
    if detected:
        assert detected in error["message"].lower(), f"the message does not name what was detected: {error}"
    assert listed(account.client) == [], "a refused upload was stored"


def test_user_data_takes_pdf_text_and_audio_but_not_anything(account):
    client = account.client
    for data, name, kind in [(PDF, "report.pdf", "application/pdf"), (TEXT, "notes.txt", "text/plain"),
                             (b'{"a": [1, 2]}\n', "data.json", None), (wav(0.1), "clip.wav", "audio/"), (IMAGE, "p.png", "image/png")]:
        created, _ = upload(client, data, name=name, content_type="application/octet-stream", purpose="user_data")
        assert created.purpose == "user_data" and created.bytes == len(data)
        if kind:
            assert client.files.content(created.id).response.headers["content-type"].startswith(kind), name
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("archive.zip", ZIP, "application/zip"), purpose="user_data")
    assert error_of(caught.value)["code"] == "invalid_file_type"


def test_missing_or_bad_purpose_and_missing_file(account):
    no_purpose = post_multipart(account.http, "/files", [], [("file", ("p.png", IMAGE, "image/png"))])
    assert no_purpose.status_code == 400, no_purpose.text
    assert raw_error(no_purpose)["code"] == "missing_required_parameter"
    assert raw_error(no_purpose)["param"] == "purpose"
    no_file = post_multipart(account.http, "/files", [("purpose", "vision")], [])
    assert no_file.status_code == 400, no_file.text
    assert (raw_error(no_file)["code"], raw_error(no_file)["param"]) == ("missing_required_parameter", "file")
    with pytest.raises(openai.BadRequestError) as caught:
        account.client.files.create(file=("p.png", IMAGE, "image/png"), purpose="fine-tune")
    assert error_of(caught.value)["code"] == "invalid_value"
    assert listed(account.client) == []


def test_an_upload_over_files_max_bytes_is_413_and_not_stored(account):
    too_big = IMAGE + bytes(FILES_MAX_BYTES + 1 - len(IMAGE))
    with pytest.raises(openai.APIStatusError) as caught:
        account.client.files.create(file=("big.png", too_big, "image/png"), purpose="vision")
    assert caught.value.status_code == 413
    assert error_of(caught.value)["code"] == "file_too_large"
    assert listed(account.client) == []


def test_an_upload_of_exactly_files_max_bytes_is_accepted(account):
    # Also far over server.max_body_bytes (64 KiB): uploads have their own limit.
    exactly = IMAGE + bytes(FILES_MAX_BYTES - len(IMAGE))
    created, _ = upload(account.client, exactly, name="exactly.png")
    assert created.bytes == FILES_MAX_BYTES
    assert account.client.files.content(created.id).content == exactly


def test_another_account_cannot_see_or_use_the_file(stack, account, media_upstream):
    created, _ = upload(account.client, IMAGE)
    other = Account(stack)
    try:
        for call in (other.client.files.retrieve, other.client.files.content, other.client.files.delete):
            with pytest.raises(openai.NotFoundError) as caught:
                call(created.id)
            assert error_of(caught.value)["code"] == "not_found"
        assert listed(other.client) == []
        balance = other.balance()
        with pytest.raises(openai.NotFoundError) as caught:
            chat_with(other.client, {"type": "image_url", "image_url": {"url": created.id}})
        error = error_of(caught.value)
        assert error["code"] == "not_found" and error["param"].startswith("messages[0].content[1]"), error
        with pytest.raises(openai.NotFoundError):
            chat_with(other.client, {"type": "file", "file": {"file_id": created.id}})
        assert media_upstream.received() == [], "a request with another account's file reached the upstream"
        assert other.balance() == balance and other.held() == 0
    finally:
        other.close()
    assert account.client.files.retrieve(created.id).id == created.id, "the other account's delete deleted it"
    assert account.client.files.content(created.id).content == IMAGE


def test_an_unknown_file_id_in_a_chat_is_404_and_nothing_is_held(account, media_upstream):
    balance = account.balance()
    with pytest.raises(openai.NotFoundError) as caught:
        chat_with(account.client, {"type": "image_url", "image_url": {"url": "file-doesnotexist0000000000"}})
    error = error_of(caught.value)
    assert error["code"] == "not_found" and error["param"].startswith("messages[0].content[1]"), error
    assert media_upstream.received() == []
    assert account.balance() == balance and account.held() == 0


# --- uploads in a chat: forwarded as data URLs ---


def test_an_uploaded_image_reaches_the_upstream_as_a_data_url(account, media_upstream):
    created, _ = upload(account.client, IMAGE)
    balance = account.balance()
    completion, _ = chat_with(account.client, {"type": "image_url", "image_url": {"url": created.id}})
    sent = media_upstream.last("/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {MEDIA_KEY}"
    assert sent.json["model"] == MEDIA_UPSTREAM["vision-m"]
    text_part, image_part = sent.json["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "describe this please"}
    assert image_part["type"] == "image_url"
    assert image_part["image_url"]["url"] == data_url("image/png", IMAGE)
    (item,) = sent.media
    assert (item.kind, item.media_type, item.sha256, len(item.data)) == ("image", "image/png", sha(IMAGE), len(IMAGE))
    # The upstream's description of what it got, relayed: the uploaded bytes themselves.
    assert completion.choices[0].message.content == describe_media(sent.media)
    assert sha(IMAGE) in completion.choices[0].message.content
    assert completion.usage.prompt_tokens == 3 + MEDIA_TOKENS
    row = account.last_row()
    assert (row["id"], row["api"], row["model"], row["status"]) == (completion.id, "chat", "vision-m", "completed")
    cost = token_cost(completion.usage.prompt_tokens, completion.usage.completion_tokens, VISION_PRICE)
    assert Decimal(row["cost"]) == cost, row
    assert account.balance() == balance - cost


def test_a_png_named_txt_is_sent_as_image_png(account, media_upstream):
    created, _ = upload(account.client, IMAGE, name="x.txt", content_type="text/plain")
    chat_with(account.client, {"type": "image_url", "image_url": {"url": created.id, "detail": "low"}})
    image_part = media_upstream.last().json["messages"][0]["content"][1]
    assert image_part == {"type": "image_url", "image_url": {"url": data_url("image/png", IMAGE), "detail": "low"}}


def test_an_uploaded_file_in_a_file_part_reaches_the_upstream_as_file_data(account, media_upstream):
    created, _ = upload(account.client, PDF, name="report.pdf", content_type="application/pdf", purpose="user_data")
    completion, _ = chat_with(account.client, {"type": "file", "file": {"file_id": created.id}})
    part = media_upstream.last().json["messages"][0]["content"][1]
    assert part == {"type": "file", "file": {"file_data": data_url("application/pdf", PDF), "filename": "report.pdf"}}
    (item,) = media_upstream.last().media
    assert (item.kind, item.media_type, item.filename, item.sha256) == ("file", "application/pdf", "report.pdf", sha(PDF))
    assert sha(PDF) in completion.choices[0].message.content
    row = account.last_row()
    assert row["api"] == "chat"
    assert Decimal(row["cost"]) == token_cost(completion.usage.prompt_tokens, completion.usage.completion_tokens, VISION_PRICE)


def test_an_image_file_in_a_file_part_and_two_images(account, media_upstream):
    first, _ = upload(account.client, IMAGE)
    second, _ = upload(account.client, GIF, name="dot.gif")
    completion, _ = chat_with(account.client, {"type": "image_url", "image_url": {"url": first.id}},
                              {"type": "file", "file": {"file_id": second.id}})
    media = media_upstream.last().media
    assert [(m.kind, m.media_type, m.sha256) for m in media] == [("image", "image/png", sha(IMAGE)),
                                                                ("file", "image/gif", sha(GIF))]
    assert completion.usage.prompt_tokens == 3 + 2 * MEDIA_TOKENS


def test_a_streamed_chat_with_an_uploaded_image(account, media_upstream):
    created, _ = upload(account.client, IMAGE)
    with account.client.chat.completions.create(
        model="vision-m", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": "what"},
                                               {"type": "image_url", "image_url": {"url": created.id}}]}],
    ) as stream:
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == describe_media(media_upstream.last().media) and sha(IMAGE) in text
    usage = chunks[-1].usage
    row = account.last_row()
    assert Decimal(row["cost"]) == token_cost(usage.prompt_tokens, usage.completion_tokens, VISION_PRICE)


def test_a_responses_input_image_with_a_file_id(account, media_upstream):
    created, _ = upload(account.client, IMAGE)
    raw = account.client.responses.with_raw_response.create(model="vision-m", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is it"}, {"type": "input_image", "file_id": created.id, "detail": "auto"}]}])
    body = raw.http_response.json()
    validate_response(body)
    parts = media_upstream.last("/v1/chat/completions").json["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    assert urls == [data_url("image/png", IMAGE)]
    assert sha(IMAGE) in raw.parse().output_text
    assert account.last_row()["api"] == "responses"
