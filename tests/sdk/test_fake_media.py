"""The fake media upstream (fake_media.py) on its own, through the official openai SDK: that it
answers in the shapes the SDK and OpenAI's OpenAPI schemas expect, records exactly what it got and
notices a client leaving. Needs no gateway."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import openai
import pytest

from fake_media import (
    AUDIO_TYPES, FIXED_AUDIO, IMAGE_TOKENS, MEDIA_TOKENS, SPEECH_RATE, TRANSCRIPT, TRANSLATION, FakeMedia, MultipartError,
    data_url, describe_media, is_png, multipart, png, segments_of, srt, vtt, wav, wav_duration,
)
from openai_schema import validate
from raw_http import httpx
from sdk_helpers import parse_sse_events

KEY = "media-key"


@pytest.fixture(scope="module")
def upstream():
    with FakeMedia(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def sdk(upstream):
    upstream.clear()
    with openai.OpenAI(base_url=upstream.base_url, api_key=KEY, max_retries=0, timeout=10) as client:
        yield client


def directive(**values) -> dict:
    """extra_body for a multipart request: the `fake` field as JSON text."""
    return {"fake": json.dumps(values)}


# --- helpers ---


def test_png_wav_and_multipart_helpers():
    image = png(16, 8, seed="x", noise=True)
    assert is_png(image) and is_png(png()) and not is_png(image[:-1]) and not is_png(b"GIF89a")
    assert png(seed="a") != png(seed="b") and png(seed="a") == png(seed="a")
    sound = wav(3.0, rate=16000)
    assert len(sound) == 44 + 3 * 16000 * 2 and wav_duration(sound) == 3.0
    assert wav_duration(wav(0.5)) == 0.5 and wav_duration(wav(1.0, channels=2)) == 1.0
    assert wav_duration(b"ID3" + bytes(100)) is None
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"q \\\"x\\\".bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n\r\nx--XyZ\r\n\r\n--XyZ--\r\n")
    parts = multipart(body, 'multipart/form-data; boundary="XyZ"')
    assert [(p.name, p.filename, p.content_type, p.data) for p in parts] == [
        ("a", None, None, b"one"), ("f", 'q "x".bin', "application/octet-stream", b"\r\nx--XyZ\r\n")]
    with pytest.raises(MultipartError):
        multipart(body[:-9], "multipart/form-data; boundary=XyZ")  # no closing delimiter
    with pytest.raises(MultipartError):
        multipart(body, "multipart/form-data")
    with pytest.raises(MultipartError):  # the boundary after a CRLF inside a part's data
        multipart(body.replace(b"x--XyZ", b"\r\n--XyZ-x"), "multipart/form-data; boundary=XyZ")


def test_a_wrong_key_is_401(upstream):
    with openai.OpenAI(base_url=upstream.base_url, api_key="nope", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.images.generate(model="dall-e-3", prompt="x")


# --- vision chat ---


def test_chat_describes_data_url_images_and_files(sdk, upstream):
    image, pdf = png(8, 8, seed="vision", noise=True), b"%PDF-1.4\n%fake\n%%EOF\n"
    raw = sdk.chat.completions.with_raw_response.create(model="vision", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", image)}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "file", "file": {"file_data": data_url("application/pdf", pdf), "filename": "doc.pdf"}},
    ]}])
    validate(raw.http_response.json(), "CreateChatCompletionResponse")
    completion = raw.parse()
    text = completion.choices[0].message.content
    assert text == (f"image 1: image/png, {len(image)} bytes, sha256 {hashlib.sha256(image).hexdigest()}; "
                    f"image 2: url https://example.com/cat.png; "
                    f"file 1: application/pdf, doc.pdf, {len(pdf)} bytes, sha256 {hashlib.sha256(pdf).hexdigest()}.")
    assert completion.usage.prompt_tokens == 3 + 3 * MEDIA_TOKENS
    assert completion.usage.completion_tokens == len(text.split())
    media = upstream.last().media
    assert [(m.kind, m.media_type, m.data) for m in media] == [
        ("image", "image/png", image), ("image", None, None), ("file", "application/pdf", pdf)]
    assert describe_media(media) == text


def test_chat_streams_with_usage(sdk):
    with sdk.chat.completions.create(model="vision", stream=True, stream_options={"include_usage": True},
                                     messages=[{"role": "user", "content": "hi"}]) as stream:
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == describe_media([])
    assert chunks[-1].usage.prompt_tokens == 1


# --- images ---


def test_generate_b64_and_url(sdk, upstream):
    raw = sdk.images.with_raw_response.generate(model="dall-e-3", prompt="a red square", n=2,
                                                response_format="b64_json", size="1024x1024")
    body = raw.http_response.json()
    validate(body, "ImagesResponse")
    assert "usage" not in body
    images = [base64.b64decode(item.b64_json) for item in raw.parse().data]
    assert len(images) == 2 and all(map(is_png, images)) and images[0] != images[1]
    record = upstream.last("/v1/images/generations")
    assert record.images == images and record.json["n"] == 2 and record.headers["authorization"] == f"Bearer {KEY}"
    urls = sdk.images.generate(model="dall-e-3", prompt="a red square", n=2, response_format="url")
    fetched = [httpx.get(item.url) for item in urls.data]
    assert all(f.status_code == 200 and f.headers["content-type"] == "image/png" for f in fetched)
    assert [f.content for f in fetched] == upstream.last().images
    assert sdk.images.generate(model="dall-e-3", prompt="x").data[0].url  # url by default but for gpt-image


def test_gpt_image_reports_token_usage(sdk):
    raw = sdk.images.with_raw_response.generate(model="gpt-image-1", prompt="a red square", n=3,
                                                quality="high", size="1024x1536")
    body = raw.http_response.json()
    validate(body, "ImagesResponse")
    assert body["usage"]["input_tokens"] == 3 and body["usage"]["output_tokens"] == 3 * IMAGE_TOKENS
    assert (body["size"], body["quality"]) == ("1024x1536", "high")
    assert all(is_png(base64.b64decode(item["b64_json"])) for item in body["data"])


def test_generate_stream(sdk, upstream):
    events = list(sdk.images.generate(model="gpt-image-1", prompt="a red square", stream=True, partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    assert base64.b64decode(events[-1].b64_json) == upstream.last().images[0]
    assert events[-1].usage.output_tokens == IMAGE_TOKENS
    for event in events:
        validate(event.model_dump(mode="json", exclude_unset=True), "ImageGenStreamEvent")


def test_edit_records_the_multipart_parts_exactly(sdk, upstream):
    image, mask = png(8, 8, seed="edit", noise=True), png(8, 8, seed="mask")
    result = sdk.images.edit(model="gpt-image-1", image=("cat.png", image, "image/png"), mask=("m.png", mask, "image/png"),
                             prompt="add a hat", n=2, size="1024x1024", extra_body={"vendor": "kept"})
    assert len(result.data) == 2 and result.usage.input_tokens == 3 + MEDIA_TOKENS
    record = upstream.last("/v1/images/edits")
    assert record.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert [(p.name, p.filename, p.content_type, p.data) for p in record.files()] == [
        ("image", "cat.png", "image/png", image), ("mask", "m.png", "image/png", mask)]
    assert {p.name: p.text for p in record.parts if p.filename is None} == {
        "model": "gpt-image-1", "prompt": "add a hat", "n": "2", "size": "1024x1024", "vendor": "kept"}
    several = sdk.images.edit(model="gpt-image-1", image=[("a.png", image, "image/png"), ("b.png", mask, "image/png")],
                              prompt="merge")
    assert len(several.data) == 1
    assert [p.filename for p in upstream.last().files("image[]")] == ["a.png", "b.png"]


def test_edit_stream_and_variations(sdk, upstream):
    events = list(sdk.images.edit(model="gpt-image-1", image=("cat.png", png(), "image/png"), prompt="x",
                                  stream=True, partial_images=1))
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    for event in events:
        validate(event.model_dump(mode="json", exclude_unset=True), "ImageEditStreamEvent")
    raw = sdk.images.with_raw_response.create_variation(image=("v.png", png(seed="v"), "image/png"), n=2,
                                                        size="256x256", response_format="b64_json")
    validate(raw.http_response.json(), "ImagesResponse")
    assert len(raw.parse().data) == 2 and upstream.last().field("model") is None


def test_image_directives(sdk):
    assert len(sdk.images.generate(model="dall-e-3", prompt="x", n=3, extra_body={"fake": {"count": 1}}).data) == 1
    with pytest.raises(openai.InternalServerError):
        sdk.images.generate(model="dall-e-3", prompt="x", extra_body={"fake": {"status": 500}})
    with pytest.raises(openai.BadRequestError):
        sdk.images.edit(image=("a.png", png(), "image/png"), prompt="x", extra_body=directive(status=400))
    with pytest.raises(openai.RateLimitError):  # flattened by the SDK into fake[status]
        sdk.images.edit(image=("a.png", png(), "image/png"), prompt="x", extra_body={"fake": {"status": 429}})
    with pytest.raises(openai.BadRequestError) as missing:
        sdk.images.edit(image=("a.png", png(), "image/png"), prompt="")
    assert missing.value.body["param"] == "prompt"


# --- speech ---


def test_speech_wav_is_real_and_streamed_in_chunks(sdk, upstream):
    arrivals, pieces = [], []
    with sdk.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="hello there", response_format="wav",
        extra_body={"fake": {"seconds": 0.5, "chunks": 5, "delay_ms": 100}},
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        for piece in response.iter_bytes():
            arrivals.append(time.monotonic())
            pieces.append(piece)
    audio = b"".join(pieces)
    record = upstream.last("/v1/audio/speech")
    assert audio == record.audio == bytes(record.sent) and wav_duration(audio) == 0.5
    assert len(record.chunks_sent) == 5 and record.completed
    assert len(pieces) >= 3 and arrivals[-1] - arrivals[0] >= 0.3, "the audio did not arrive in pieces"
    assert arrivals[0] < record.finished_at - 0.2


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "pcm"])
def test_speech_formats(sdk, upstream, response_format):
    response = sdk.audio.speech.create(model="tts-1", voice="alloy", input="hi", response_format=response_format)
    assert response.response.headers["content-type"] == AUDIO_TYPES[response_format]
    expected = FIXED_AUDIO.get(response_format) or upstream.last().audio
    assert response.content == expected
    if response_format == "pcm":
        assert len(expected) == SPEECH_RATE * 2  # 1 s of 16-bit mono
    assert sdk.audio.speech.create(model="tts-1", voice="alloy", input="hi").response.headers["content-type"] == "audio/mpeg"


def test_speech_sse(upstream):
    response = httpx.post(upstream.base_url + "/audio/speech", headers={"Authorization": f"Bearer {KEY}"}, json={
        "model": "tts-1", "voice": "alloy", "input": "three words here", "response_format": "pcm", "stream_format": "sse"})
    assert response.headers["content-type"] == "text/event-stream"
    events = [(name, json.loads(data)) for name, data in parse_sse_events(response.text)]
    assert [name for name, _ in events] == ["speech.audio.delta"] * 6 + ["speech.audio.done"]
    for name, data in events:
        assert data["type"] == name
        validate(data, "CreateSpeechResponseStreamEvent")
    assert b"".join(base64.b64decode(d["audio"]) for n, d in events[:-1]) == upstream.last().audio
    assert events[-1][1]["usage"] == {"input_tokens": 3, "output_tokens": 6, "total_tokens": 9}


def test_a_client_leaving_mid_speech_is_recorded(sdk, upstream):
    with sdk.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="x", response_format="wav",
        extra_body={"fake": {"seconds": 2, "chunks": 20, "delay_ms": 100}},
    ) as response:
        for index, _ in enumerate(response.iter_bytes()):
            if index == 2:
                left = time.monotonic()
                break
    record = upstream.last()
    closed = upstream.wait_disconnected(record, timeout=5)
    assert closed is not None and closed - left < 1.0 and not record.completed
    assert len(record.sent) < len(record.audio)


# --- transcriptions and translations ---

SOUND = wav(3.0, rate=16000)


@pytest.mark.parametrize("response_format", ["json", "verbose_json", "text", "srt", "vtt"])
def test_transcription_formats(sdk, upstream, response_format):
    raw = sdk.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("speech.wav", SOUND, "audio/wav"), response_format=response_format,
        timestamp_granularities=["word", "segment"] if response_format == "verbose_json" else openai.NOT_GIVEN,
    )
    parsed = raw.parse()
    segments = segments_of(TRANSCRIPT, 3.0)
    if response_format == "json":
        assert raw.http_response.json() == {"text": TRANSCRIPT}  # no usage unless asked
        validate(raw.http_response.json(), "CreateTranscriptionResponseJson")
        assert parsed.text == TRANSCRIPT
    elif response_format == "verbose_json":
        body = raw.http_response.json()
        validate(body, "CreateTranscriptionResponseVerboseJson")
        assert body["duration"] == 3.0 and body["segments"][-1]["end"] == 3.0 and body["task"] == "transcribe"
        assert [w["word"] for w in body["words"]] == [w.strip(".") for w in TRANSCRIPT.split()]
        assert parsed.duration == 3.0
    else:
        assert raw.http_response.headers["content-type"] == "text/plain; charset=utf-8"
        expected = {"text": TRANSCRIPT + "\n", "srt": srt(segments), "vtt": vtt(segments)}[response_format]
        assert raw.http_response.text == expected
        assert isinstance(parsed, str) and parsed.strip() == expected.strip()
    record = upstream.last("/v1/audio/transcriptions")
    (upload,) = record.files("file")
    assert (upload.filename, upload.content_type, upload.data) == ("speech.wav", "audio/wav", SOUND)
    assert record.field("response_format") == response_format


def test_srt_and_vtt_bodies():
    segments = segments_of(TRANSCRIPT, 3.0)
    assert srt(segments) == ("1\n00:00:00,000 --> 00:00:01,667\nThe quick brown fox jumps\n\n"
                             "2\n00:00:01,667 --> 00:00:03,000\nover the lazy dog.\n\n")
    assert vtt(segments).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.667\nThe quick")


def test_usage_directives_and_translation(sdk):
    duration = sdk.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("s.wav", SOUND, "audio/wav"), extra_body=directive(usage="duration")).http_response.json()
    assert duration["usage"] == {"type": "duration", "seconds": 3.0}
    validate(duration, "CreateTranscriptionResponseJson")
    reported = sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", SOUND, "audio/wav"),
                                               response_format="verbose_json", extra_body=directive(seconds=5, usage="duration"))
    assert reported.duration == 5 and reported.usage.seconds == 5
    tokens = sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", SOUND, "audio/wav"),
                                             extra_body=directive(usage="tokens"))
    assert tokens.usage.type == "tokens" and tokens.usage.output_tokens == len(TRANSCRIPT.split())
    translated = sdk.audio.translations.with_raw_response.create(model="whisper-1", file=("s.wav", SOUND, "audio/wav"),
                                                                 response_format="verbose_json")
    body = translated.http_response.json()
    validate(body, "CreateTranslationResponseVerboseJson")
    assert body["text"] == TRANSLATION and body["task"] == "translate" and body["duration"] == 3.0
    assert sdk.audio.translations.create(model="whisper-1", file=("s.wav", SOUND, "audio/wav")).text == TRANSLATION
    text = sdk.audio.translations.create(model="whisper-1", file=("s.wav", SOUND, "audio/wav"), response_format="text")
    assert text.strip() == TRANSLATION
    with pytest.raises(openai.BadRequestError):
        sdk.audio.transcriptions.create(model="whisper-1", file=("s.wav", SOUND, "audio/wav"), extra_body={"fake": "{"})


def test_transcription_stream(sdk, upstream):
    events = list(sdk.audio.transcriptions.create(model="gpt-4o-transcribe", file=("s.wav", SOUND, "audio/wav"),
                                                  stream=True, extra_body=directive(usage="tokens")))
    assert [e.type for e in events] == ["transcript.text.delta"] * len(TRANSCRIPT.split()) + ["transcript.text.done"]
    assert "".join(e.delta for e in events[:-1]) == TRANSCRIPT == events[-1].text
    assert events[-1].usage.total_tokens > 0
    for event in events:
        validate(event.model_dump(mode="json", exclude_unset=True), "CreateTranscriptionResponseStreamEvent")
    assert upstream.last().events_sent[-1] == "transcript.text.done"


def test_transcription_needs_file_and_model(upstream):
    response = httpx.post(upstream.base_url + "/audio/transcriptions", headers={"Authorization": f"Bearer {KEY}"},
                          data={"model": "whisper-1"})
    assert response.status_code == 400
    response = httpx.post(upstream.base_url + "/audio/transcriptions", headers={"Authorization": f"Bearer {KEY}"},
                          data={"x": "1"}, files={"file": ("s.wav", SOUND, "audio/wav")})
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"
