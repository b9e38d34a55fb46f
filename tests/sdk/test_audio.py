"""Audio (issue 12): `/v1/audio/speech`, `/v1/audio/transcriptions` and `/v1/audio/translations`
through the openai SDK and raw HTTP, in front of the fake media upstream (fake_media.py):

- `tts-m`: priced per 1M input characters (TTS_CHARACTERS_PRICE, 15.00): charged in full once the
  first audio byte arrived, nothing for a stop before any audio;
- `tts-sec-m`: priced per second of audio produced (TTS_SECOND_PRICE, 0.01), measured from the WAV /
  PCM bytes relayed (the fake's speech is PCM 16-bit mono 24 kHz: 48000 bytes a second);
- `whisper-m`: priced per second of audio (WHISPER_SECOND_PRICE, 0.0001), from the upstream's usage or
  verbose_json `duration` when present, else measured from the uploaded file (the fake reports no
  usage unless a directive asks for it, so by default the gateway has to measure).

Each test has an account of its own, so its ledger rows and balance are its own. The test config
sets `audio: {max_upload_bytes: 1 MiB}`."""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from decimal import Decimal

import openai
import pytest

from conftest import (
    AUDIO_MAX_UPLOAD_BYTES, MEDIA_KEY, MEDIA_UPSTREAM, TTS_CHARACTERS_PRICE, TTS_SECOND_PRICE, WHISPER_SECOND_PRICE,
)
from fake_media import FIXED_AUDIO, SPEECH_RATE, TRANSCRIPT, TRANSLATION, segments_of, srt, vtt, wav, wav_duration
from media_helpers import Account, error_of, events_of, money, post_multipart
from openai_schema import validate
from raw_http import httpx
from sdk_helpers import raw_stream

SPEECH_INPUT = "Hello from the speech test. " * 40  # 1120 ASCII characters
SPEECH_BYTES_PER_SECOND = SPEECH_RATE * 2
SOUND = wav(3.0, rate=16000)  # 3.0 s, 96044 bytes: over server.max_body_bytes (64 KiB) too
SOUND_SECONDS = Decimal("3.0")
FORMATS = ["json", "verbose_json", "text", "srt", "vtt"]


@pytest.fixture
def account(stack):
    account = Account(stack)
    yield account
    account.close()


def characters_cost(text: str) -> Decimal:
    return money(len(text) * Decimal(TTS_CHARACTERS_PRICE) / 1_000_000)


def speech_seconds_cost(seconds) -> Decimal:
    return money(Decimal(str(seconds)) * Decimal(TTS_SECOND_PRICE))


def whisper_cost(seconds) -> Decimal:
    return money(Decimal(str(seconds)) * Decimal(WHISPER_SECOND_PRICE))


def silent_wav(total_bytes: int, rate: int = 16000) -> bytes:
    """A 16-bit mono WAV of exactly `total_bytes` (silence)."""
    size = total_bytes - 44
    header = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", size)
    return header + bytes(size)


def check_billed(account: Account, before: Decimal, cost: Decimal, api: str, model: str, status: str = "completed") -> dict:
    row = account.last_row()
    assert (row["api"], row["model"], row["status"]) == (api, model, status), row
    assert Decimal(row["cost"]) == cost, row
    assert before - account.balance() == cost
    assert account.held() == 0
    return row


def seed_client(stack, key: str, user: str, model: str) -> openai.OpenAI:
    """The seed style: key, end user and model in the path (the bearer token is a placeholder)."""
    return openai.OpenAI(base_url=f"{stack.url.removesuffix('/v1')}/llm_api/{key}/{user}/{model}/v1",
                         api_key="placeholder", max_retries=0, timeout=20)


def suspend(stack, key: str, user: str) -> dict:
    response = httpx.get(f"{stack.url.removesuffix('/v1')}/llm_api/suspend_current_generate",
                         params={"openid": key, "userid": user}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


# --- speech ---


def test_speech_as_wav_is_the_upstreams_audio_billed_per_character(account, media_upstream):
    before = account.balance()
    response = account.client.audio.speech.create(model="tts-m", voice="alloy", input=SPEECH_INPUT, response_format="wav",
                                                  speed=1.25, instructions="cheerful")
    sent = media_upstream.last("/v1/audio/speech")
    assert response.content == sent.audio and wav_duration(response.content) == 1.0
    assert response.response.headers["content-type"] == "audio/wav"
    assert sent.headers["authorization"] == f"Bearer {MEDIA_KEY}"
    expected = {"model": MEDIA_UPSTREAM["tts-m"], "voice": "alloy", "input": SPEECH_INPUT, "response_format": "wav",
                "speed": 1.25, "instructions": "cheerful"}
    assert {name: sent.json.get(name) for name in expected} == expected
    check_billed(account, before, characters_cost(SPEECH_INPUT), "speech", "tts-m")


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac"])
def test_speech_formats_pass_through_with_their_content_type(account, response_format):
    response = account.client.audio.speech.create(model="tts-m", voice="alloy", input="short", response_format=response_format)
    assert response.content == FIXED_AUDIO[response_format]
    assert response.response.headers["content-type"].split(";")[0] == {
        "mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac"}[response_format]


def test_speech_defaults_to_mp3(account):
    response = account.client.audio.speech.create(model="tts-m", voice="alloy", input="short")
    assert response.content == FIXED_AUDIO["mp3"]
    assert response.response.headers["content-type"].split(";")[0] == "audio/mpeg"


def test_speech_is_streamed_as_it_arrives(account, media_upstream):
    before = account.balance()
    arrivals, pieces = [], []
    with account.client.audio.speech.with_streaming_response.create(
        model="tts-m", voice="alloy", input=SPEECH_INPUT, response_format="wav",
        extra_body={"fake": {"seconds": 1.0, "chunks": 6, "delay_ms": 200}},
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        for piece in response.iter_bytes():
            arrivals.append(time.monotonic())
            pieces.append(piece)
    sent = media_upstream.last("/v1/audio/speech")
    assert b"".join(pieces) == sent.audio == bytes(sent.sent)
    early = [t for t in arrivals if t < sent.finished_at]
    assert len(early) >= 3, f"only {len(early)} pieces arrived before the upstream finished: the audio was buffered"
    assert arrivals[-1] - arrivals[0] >= 0.6
    check_billed(account, before, characters_cost(SPEECH_INPUT), "speech", "tts-m")


def test_speech_as_sse_events(account, media_upstream):
    before = account.balance()
    stream = raw_stream(account.http, "/audio/speech", {"model": "tts-m", "voice": "alloy", "input": SPEECH_INPUT,
                                                         "response_format": "pcm", "stream_format": "sse"})
    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert not stream.stalled and not stream.cut
    events = [data for _, data in events_of(stream.text)]
    for event in events:
        validate(event, "CreateSpeechResponseStreamEvent")
    assert [e["type"] for e in events] == ["speech.audio.delta"] * 6 + ["speech.audio.done"]
    sent = media_upstream.last("/v1/audio/speech")
    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == sent.audio
    assert events[-1] == sent.answer
    check_billed(account, before, characters_cost(SPEECH_INPUT), "speech", "tts-m")


def test_the_character_hold_must_fit(stack, media_upstream):
    account = Account(stack, balance="0.01")  # SPEECH_INPUT costs 0.0168
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            account.client.audio.speech.create(model="tts-m", voice="alloy", input=SPEECH_INPUT)
        assert caught.value.status_code == 402 and error_of(caught.value)["type"] == "insufficient_quota"
        assert media_upstream.received() == []
        assert account.balance() == Decimal("0.01")
    finally:
        account.close()


@pytest.mark.parametrize("response_format, seconds", [("wav", 2.0), ("pcm", 1.5)])
def test_per_second_speech_is_billed_for_the_audio_produced(account, response_format, seconds):
    before = account.balance()
    response = account.client.audio.speech.create(model="tts-sec-m", voice="alloy", input="hello",
                                                  response_format=response_format, extra_body={"fake": {"seconds": seconds}})
    audio_bytes = len(response.content) - (44 if response_format == "wav" else 0)
    assert audio_bytes == seconds * SPEECH_BYTES_PER_SECOND
    check_billed(account, before, speech_seconds_cost(seconds), "speech", "tts-sec-m")


def test_a_suspended_speech_stream_is_billed_for_the_audio_relayed(stack, account, media_upstream):
    """The seed style: end user in the path, stopped by suspend_current_generate mid-stream."""
    user = "speaker-1"
    full = 4.0  # 4 s of audio in 40 pieces, 100 ms apart
    received, answer = bytearray(), None
    with seed_client(stack, account.key, user, "tts-sec-m") as client:
        with client.audio.speech.with_streaming_response.create(
            model="ignored", voice="alloy", input="hello", response_format="wav",
            extra_body={"fake": {"seconds": full, "chunks": 40, "delay_ms": 100}},
        ) as response:
            try:
                for piece in response.iter_bytes():
                    received += piece
                    if answer is None and len(received) > 44 + SPEECH_BYTES_PER_SECOND // 2:
                        answer = suspend(stack, account.key, user)
            except httpx.HTTPError:
                pass  # a stream ended by a cut is inspected all the same
    assert answer is not None and answer["stopped"] == 1, answer
    sent = media_upstream.last("/v1/audio/speech")
    assert media_upstream.wait_disconnected(sent, timeout=5) is not None, "the upstream request was not closed"
    assert not sent.completed and len(sent.sent) < len(sent.audio)
    assert bytes(received) == sent.audio[:len(received)], "the relayed audio is not the upstream's"
    row = account.last_row()
    assert (row["api"], row["model"], row["user"], row["end_reason"]) == ("speech", "tts-sec-m", user, "cancelled"), row
    relayed_seconds = (len(received) - 44) / SPEECH_BYTES_PER_SECOND
    cost = Decimal(row["cost"])
    assert 0 < cost < speech_seconds_cost(full), row
    assert abs(cost - speech_seconds_cost(relayed_seconds)) <= speech_seconds_cost(0.15), (
        f"billed {cost} for {relayed_seconds:.3f} s relayed")


def test_a_client_leaving_a_per_character_speech_is_charged_in_full(account, media_upstream):
    with account.client.audio.speech.with_streaming_response.create(
        model="tts-m", voice="alloy", input=SPEECH_INPUT, response_format="wav",
        extra_body={"fake": {"seconds": 2.0, "chunks": 20, "delay_ms": 100}},
    ) as response:
        for index, _ in enumerate(response.iter_bytes()):
            if index == 1:
                break
    sent = media_upstream.last("/v1/audio/speech")
    assert media_upstream.wait_disconnected(sent, timeout=5) is not None
    row = account.last_row()
    assert row["api"] == "speech" and Decimal(row["cost"]) == characters_cost(SPEECH_INPUT), row


def test_a_speech_stopped_before_any_audio_costs_nothing(stack, account, media_upstream):
    user = "speaker-2"
    result = {}
    before = account.balance()
    with seed_client(stack, account.key, user, "tts-m") as client:
        def stop_soon():
            time.sleep(0.5)
            result["answer"] = suspend(stack, account.key, user)

        stopper = threading.Thread(target=stop_soon)
        stopper.start()
        try:
            with client.audio.speech.with_streaming_response.create(
                model="ignored", voice="alloy", input=SPEECH_INPUT, response_format="wav",
                extra_body={"fake": {"first_byte_delay_ms": 2000}},
            ) as response:
                audio = response.read()
        except (openai.APIError, httpx.HTTPError):
            audio = b""
        stopper.join()
    assert result["answer"]["stopped"] == 1
    assert len(audio) <= 44, "audio arrived although the upstream sent none before the stop"
    row = account.last_row()
    assert Decimal(row["cost"]) == 0, row
    assert account.balance() == before and account.held() == 0


# --- transcriptions and translations ---


def transcribe(client, file=("speech.wav", SOUND, "audio/wav"), **options):
    """The raw response of `audio.transcriptions.create` (its body checked by the caller)."""
    return client.audio.transcriptions.with_raw_response.create(model="whisper-m", file=file, **options)


@pytest.mark.parametrize("response_format", FORMATS)
def test_a_transcription_in_every_format_is_billed_by_the_files_duration(account, media_upstream, response_format):
    before = account.balance()
    raw = transcribe(account.client, response_format=response_format)
    response = raw.http_response
    sent = media_upstream.last("/v1/audio/transcriptions")
    assert response.status_code == 200
    segments = segments_of(TRANSCRIPT, 3.0)
    if response_format == "json":
        validate(response.json(), "CreateTranscriptionResponseJson")
        assert response.json()["text"] == TRANSCRIPT
    elif response_format == "verbose_json":
        validate(response.json(), "CreateTranscriptionResponseVerboseJson")
        assert response.json() == sent.answer
        assert raw.parse().duration == 3.0
    else:
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == {"text": TRANSCRIPT + "\n", "srt": srt(segments), "vtt": vtt(segments)}[response_format]
    assert sent.headers["authorization"] == f"Bearer {MEDIA_KEY}"
    assert [(p.filename, p.content_type, p.data) for p in sent.files("file")] == [("speech.wav", "audio/wav", SOUND)]
    assert sent.field("model") == MEDIA_UPSTREAM["whisper-m"] and sent.field("response_format") == response_format
    check_billed(account, before, whisper_cost(SOUND_SECONDS), "transcriptions", "whisper-m")


def test_transcription_fields_are_forwarded(account, media_upstream):
    transcribe(account.client, response_format="verbose_json", language="en", prompt="A fox story.", temperature=0.2,
               timestamp_granularities=["word", "segment"])
    sent = media_upstream.last("/v1/audio/transcriptions")
    assert (sent.field("language"), sent.field("prompt"), sent.field("temperature")) == ("en", "A fox story.", "0.2")
    assert sent.fields("timestamp_granularities[]") == ["word", "segment"]
    assert "words" in sent.answer


def test_the_upstreams_duration_wins_over_the_files(account):
    before = account.balance()
    reported = transcribe(account.client, extra_body={"fake": json.dumps({"usage": "duration", "seconds": 5})})
    assert reported.http_response.json()["usage"] == {"type": "duration", "seconds": 5}
    check_billed(account, before, whisper_cost(5), "transcriptions", "whisper-m")
    before = account.balance()
    verbose = transcribe(account.client, response_format="verbose_json", extra_body={"fake": json.dumps({"seconds": 7})})
    assert verbose.http_response.json()["duration"] == 7 and "usage" not in verbose.http_response.json()
    check_billed(account, before, whisper_cost(7), "transcriptions", "whisper-m")


def test_the_duration_is_read_from_the_wav_header(account):
    stereo = wav(2.5, rate=44100, channels=2)  # 441044 bytes: 176400 bytes a second
    before = account.balance()
    raw = transcribe(account.client, file=("stereo.wav", stereo, "audio/wav"), response_format="text")
    assert raw.http_response.text == TRANSCRIPT + "\n"
    check_billed(account, before, whisper_cost(2.5), "transcriptions", "whisper-m")


@pytest.mark.parametrize("response_format", ["json", "verbose_json", "text"])
def test_a_translation_is_billed_by_the_files_duration(account, media_upstream, response_format):
    before = account.balance()
    raw = account.client.audio.translations.with_raw_response.create(
        model="whisper-m", file=("speech.wav", SOUND, "audio/wav"), response_format=response_format)
    response = raw.http_response
    if response_format == "text":
        assert response.text == TRANSLATION + "\n"
    else:
        validate(response.json(), {"json": "CreateTranslationResponseJson",
                                   "verbose_json": "CreateTranslationResponseVerboseJson"}[response_format])
        assert response.json()["text"] == TRANSLATION
    sent = media_upstream.last("/v1/audio/translations")
    assert sent.field("model") == MEDIA_UPSTREAM["whisper-m"] and sent.files("file")[0].data == SOUND
    check_billed(account, before, whisper_cost(SOUND_SECONDS), "translations", "whisper-m")


def test_an_upload_over_audio_max_upload_bytes_is_413(account, media_upstream):
    before = account.balance()
    with pytest.raises(openai.APIStatusError) as caught:
        transcribe(account.client, file=("long.wav", silent_wav(AUDIO_MAX_UPLOAD_BYTES + 1), "audio/wav"))
    assert caught.value.status_code == 413
    error_of(caught.value)
    assert media_upstream.received() == []
    assert account.balance() == before and account.held() == 0


def test_an_upload_of_exactly_audio_max_upload_bytes_is_served(account):
    before = account.balance()
    exactly = silent_wav(AUDIO_MAX_UPLOAD_BYTES)
    raw = transcribe(account.client, file=("long.wav", exactly, "audio/wav"), response_format="text")
    assert raw.http_response.status_code == 200
    seconds = Decimal(AUDIO_MAX_UPLOAD_BYTES - 44) / 32000  # 32.767875 s
    check_billed(account, before, whisper_cost(seconds), "transcriptions", "whisper-m")


def test_a_transcription_stream_is_relayed(account, media_upstream):
    before = account.balance()
    fields = [("model", "whisper-m"), ("stream", "true")]
    with post_multipart(account.http, "/audio/transcriptions", fields, [("file", ("speech.wav", SOUND, "audio/wav"))],
                        stream=True) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = [data for _, data in events_of(text)]
    for event in events:
        validate(event, "CreateTranscriptionResponseStreamEvent")
    words = len(TRANSCRIPT.split())
    assert [e["type"] for e in events] == ["transcript.text.delta"] * words + ["transcript.text.done"]
    assert "".join(e["delta"] for e in events[:-1]) == TRANSCRIPT == events[-1]["text"]
    sent = media_upstream.last("/v1/audio/transcriptions")
    assert events == [data for _, data in events_of(bytes(sent.sent).decode())]
    check_billed(account, before, whisper_cost(SOUND_SECONDS), "transcriptions", "whisper-m")


def test_a_transcription_stream_through_the_sdk(account):
    events = list(account.client.audio.transcriptions.create(model="whisper-m", file=("speech.wav", SOUND, "audio/wav"),
                                                             stream=True))
    assert events[-1].type == "transcript.text.done" and events[-1].text == TRANSCRIPT
    assert "".join(e.delta for e in events[:-1]) == TRANSCRIPT
