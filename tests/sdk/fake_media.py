"""A fake OpenAI-compatible media upstream (Python standard library only) that records every request.

    with FakeMedia() as upstream:              # binds 127.0.0.1 on a free port
        upstream.base_url                      # http://127.0.0.1:PORT/v1 (a provider's base_url)
        ...                                    # point the gateway (or the openai SDK) at it
        upstream.last("/v1/images/edits")      # what it received: headers, raw bytes, JSON or multipart parts

Routes (the shapes of OpenAI's API):

- `POST /v1/chat/completions` (JSON, whole or `stream: true`): a vision chat. The answer's text
  describes every image and file it received (`describe_media`): for each `image_url` part whose URL
  is a data URL, its media type, the decoded byte length and SHA-256 (`image 1: image/png, 1234 bytes,
  sha256 ab…`), for other URLs the URL; for each `file` part likewise from `file.file_data` (with
  its `filename`), or its `file_id` if it carried one. The decoded items are also on the record
  (`record.media`). Usage: prompt_tokens = the words of the text parts + MEDIA_TOKENS per image or
  file (at least 1), completion_tokens = the answer's words.
- `POST /v1/images/generations` (JSON) and `/v1/images/edits`, `/v1/images/variations` (multipart):
  `n` images (distinct tiny valid PNGs, `png()`), as `b64_json` or as `url`
  (http://127.0.0.1:PORT/img/N.png, served by `GET`) per `response_format` (default: `b64_json` for
  a model whose name contains "gpt-image", else `url`, as OpenAI's defaults are). For a "gpt-image"
  model the answer also carries `background`, `output_format`, `size` / `quality` (when they are
  values the API documents) and `usage` {input_tokens, output_tokens, total_tokens, details}:
  input_tokens = the prompt's words (at least 1) + MEDIA_TOKENS per input image, output_tokens =
  IMAGE_TOKENS per image returned. `stream: true` (generations and edits): SSE events
  `image_generation.partial_image` (edits: `image_edit.partial_image`) with `b64_json` and
  `partial_image_index`, `partial_images` of them per image, then `image_generation.completed`
  (`image_edit.completed`) per image with its `usage` (the input tokens on the first one), so the
  completed events' usage sums to the whole answer's. Edits require `image` (or `image[]`) and
  `prompt`; variations `image`; generations `prompt`.
- `POST /v1/audio/speech` (JSON): the audio of `response_format` (default mp3): `wav` is a real WAV
  (PCM 16-bit mono 24 kHz, a 440 Hz sine, `seconds` long, default 1.0) and `pcm` its raw samples;
  mp3 / opus / aac / flac are fixed bytes of that format's magic (`FIXED_AUDIO`) with its content
  type. Sent chunked in `chunks` pieces (default 6) with `delay_ms` between them (default
  `chunk_delay_s`, 0.02 s); `record.audio` is the whole planned audio, `record.sent` what was written.
  `stream_format: "sse"`: `speech.audio.delta` events (base64 `audio`, one a piece) then
  `speech.audio.done` with usage {input_tokens = words of `input`, output_tokens = pieces, total}.
- `POST /v1/audio/transcriptions` and `/v1/audio/translations` (multipart; `file` and `model`
  required): TRANSCRIPT (translations: TRANSLATION) in `response_format`:
  json `{"text"}` (plus `usage` only when a directive asks: by default NO usage, so a gateway must
  measure the file itself), verbose_json {task, language, duration, text, segments (two), words with
  `timestamp_granularities[]=word`} where duration is the uploaded WAV's real duration (from its
  header: `wav_duration`; 1.0 for a file that is not WAV), text (`TEXT\n`), srt, vtt (text/plain, as
  OpenAI sends them; the bodies are `srt()` / `vtt()` of the segments). `stream: true`:
  `transcript.text.delta` events (a word each) and `transcript.text.done` {text, usage when asked}.

Directives: a JSON body's `fake` field (an object, or its JSON text) or a multipart field `fake`
(JSON text; or `fake[name]` fields, as the SDK flattens `extra_body={"fake": {...}}`), e.g. {"status": 500}:

    status=NNN            that HTTP status with an OpenAI error body
    retry_after=N         with status: a retry-after header
    delay_ms=N            pause between streamed chunks / events (speech, images, transcripts, chat)
    first_byte_delay_ms=N pause before the answer's first byte
    die_after=N           streamed: the connection is cut (no terminating chunk) after N chunks / events
    hang_up               the connection is closed without an answer
    seconds=S             speech: the audio's length; transcriptions: the duration reported
                          (verbose_json `duration`, usage seconds) instead of the file's
    chunks=N              speech: the number of pieces
    usage="duration"|"tokens"  transcriptions: report usage {"type":"duration","seconds":D} or token
                          usage (input_tokens = TRANSCRIPT_AUDIO_TOKENS, output_tokens = the text's words)
    count=N               images: return N images whatever `n` asked
    revised_prompt="…"    images: each item carries it
    text="…"              the transcript / chat answer text instead of the default

Every request is recorded (`requests`, `last()`, `received()`): method, path, query, headers with
lower-cased names, the raw body bytes, the parsed JSON body (`json`, also `body`) or the multipart
parts (`parts`: name, filename, content type, headers, bytes — `multipart()` parses them strictly:
a malformed body is a 400 and `record.parse_error`), the status answered, the bytes and chunks and SSE
events sent, whether the answer completed, and `disconnected_at` (time.monotonic()) when the client
closed the connection before the end (pauses watch the socket, so a close is seen within
milliseconds); `wait_disconnected()` / `wait_finished()` wait for those. With `api_key=` set, a
request without `Authorization: Bearer API_KEY` is a 401.

Run alone: `python3 tests/sdk/fake_media.py [--port N]`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import select
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MEDIA_TOKENS = 85  # prompt tokens an image or file counts for (chat, gpt-image input images)
IMAGE_TOKENS = 272  # output tokens of one gpt-image image
TRANSCRIPT = "The quick brown fox jumps over the lazy dog."
TRANSLATION = "Hello from the fake translator, in English."
TRANSCRIPT_AUDIO_TOKENS = 20  # input tokens of a transcription's token usage
SPEECH_RATE = 24000  # OpenAI's speech sample rate (wav and pcm)
DEFAULT_SPEECH_SECONDS = 1.0
DEFAULT_SPEECH_CHUNKS = 6
FALLBACK_DURATION = 1.0  # the duration the fake assumes for an upload that is not a WAV

AUDIO_TYPES = {
    "mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav",
    "pcm": "audio/pcm",
}


def _filler(seed: bytes, size: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:size])


# Not real encodings: each format's magic bytes and deterministic filler (3000 bytes).
FIXED_AUDIO = {
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + _filler(b"mp3", 2986),
    "opus": b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead" + _filler(b"opus", 2966),
    "aac": b"\xff\xf1\x50\x80\x02\x1f\xfc" + _filler(b"aac", 2993),
    "flac": b"fLaC\x00\x00\x00\x22" + _filler(b"flac", 2992),
}

IMAGE_SIZES = {"1024x1024", "1024x1536", "1536x1024"}
IMAGE_QUALITIES = {"low", "medium", "high"}
EVENT_SIZES = IMAGE_SIZES | {"auto"}
EVENT_QUALITIES = IMAGE_QUALITIES | {"auto"}

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               429: "rate_limit_exceeded"}


# --- media helpers (also for tests) ---


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int = 4, height: int = 4, seed: str | bytes = "", noise: bool = False) -> bytes:
    """A valid RGB PNG: one colour from `seed`, or with `noise` pseudo-random pixels (large, unique)."""
    seed = seed.encode() if isinstance(seed, str) else seed
    if noise:
        pixels = _filler(b"png" + seed, width * height * 3)
    else:
        colour = hashlib.sha256(b"colour" + seed).digest()[:3]
        pixels = colour * (width * height)
    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows, 9))
            + _png_chunk(b"IEND", b""))


def is_png(data: bytes) -> bool:
    """A PNG signature, an IHDR first and an IEND last, with correct CRCs (enough for the fake's PNGs)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    at, kinds = 8, []
    while at + 12 <= len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length] or b"\0\0\0\0")
        if len(body) != length or zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            return False
        kinds.append(kind)
        at += 12 + length
    return at == len(data) and bool(kinds) and kinds[0] == b"IHDR" and kinds[-1] == b"IEND"


def pcm16(seconds: float, rate: int = SPEECH_RATE, frequency: float = 440.0, amplitude: float = 0.3) -> bytes:
    """Little-endian signed 16-bit mono samples of a sine."""
    count = int(round(seconds * rate))
    peak = amplitude * 32767
    return struct.pack(f"<{count}h", *(int(peak * math.sin(2 * math.pi * frequency * i / rate)) for i in range(count)))


def wav(seconds: float, rate: int = SPEECH_RATE, frequency: float = 440.0, channels: int = 1) -> bytes:
    """A canonical 44-byte-header WAV of 16-bit PCM (the mono sine on every channel)."""
    mono = pcm16(seconds, rate, frequency)
    if channels == 1:
        data = mono
    else:
        samples = struct.unpack(f"<{len(mono) // 2}h", mono)
        data = struct.pack(f"<{len(samples) * channels}h", *(s for s in samples for _ in range(channels)))
    block = 2 * channels
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
    header += b"data" + struct.pack("<I", len(data))
    return header + data


def wav_duration(data: bytes) -> float | None:
    """Seconds of a RIFF/WAVE file's `data` chunk (at most the bytes present), None if not a WAV."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    at, byte_rate = 12, None
    while at + 8 <= len(data):
        kind = data[at:at + 4]
        (size,) = struct.unpack("<I", data[at + 4:at + 8])
        if kind == b"fmt " and at + 16 <= len(data):
            (byte_rate,) = struct.unpack("<I", data[at + 16:at + 20])
        elif kind == b"data":
            if not byte_rate:
                return None
            present = min(size, len(data) - at - 8)
            return present / byte_rate
        at += 8 + size + (size & 1)
    return None


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


@dataclass
class MediaItem:
    """One image or file a chat request carried, decoded."""

    kind: str  # "image" or "file"
    media_type: str | None = None
    data: bytes | None = None  # decoded from a data URL
    filename: str | None = None
    url: str | None = None  # an image URL that is not a data URL
    file_id: str | None = None  # a file part that names a file instead of carrying it
    error: str | None = None  # a data URL that could not be decoded

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None


def parse_data_url(url: str) -> tuple[str, bytes]:
    """(media type, bytes) of a base64 data URL; ValueError otherwise."""
    match = re.fullmatch(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", url, re.S)
    if not match:
        raise ValueError("not a data URL")
    params = [p for p in match.group(2).split(";") if p]
    if "base64" not in params:
        raise ValueError("not a base64 data URL")
    return match.group(1), base64.b64decode(match.group(3), validate=True)


def describe_media(items: list[MediaItem]) -> str:
    """The fake chat's answer for the images and files it received (one clause each)."""
    if not items:
        return "I received no images and no files."
    clauses, counts = [], {"image": 0, "file": 0}
    for item in items:
        counts[item.kind] += 1
        label = f"{item.kind} {counts[item.kind]}"
        if item.error:
            clauses.append(f"{label}: invalid data URL ({item.error})")
        elif item.data is not None:
            name = f", {item.filename}" if item.filename else ""
            clauses.append(f"{label}: {item.media_type}{name}, {len(item.data)} bytes, sha256 {item.sha256}")
        elif item.file_id:
            clauses.append(f"{label}: file_id {item.file_id}")
        else:
            clauses.append(f"{label}: url {item.url}")
    return "; ".join(clauses) + "."


def segments_of(text: str, duration: float) -> list[dict]:
    """Two segments (the text's first and second half of words), timed over `duration`."""
    words = text.split()
    half = max(1, (len(words) + 1) // 2)
    pieces = [" ".join(words[:half]), " ".join(words[half:])]
    pieces = [p for p in pieces if p]
    total = sum(len(p.split()) for p in pieces) or 1
    out, start = [], 0.0
    for index, piece in enumerate(pieces):
        end = duration if index == len(pieces) - 1 else round(duration * len(piece.split()) / total, 3)
        out.append({"id": index, "seek": 0, "start": start, "end": end, "text": " " + piece,
                    "tokens": [50364 + i for i in range(len(piece.split()))], "temperature": 0.0,
                    "avg_logprob": -0.25, "compression_ratio": 1.2, "no_speech_prob": 0.01})
        start = end
    return out


def words_of(text: str, duration: float) -> list[dict]:
    words = text.split()
    step = duration / max(len(words), 1)
    return [{"word": word.strip(".,"), "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
            for i, word in enumerate(words)]


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: list[dict]) -> str:
    return "".join(
        f"{i + 1}\n{_timestamp(s['start'], ',')} --> {_timestamp(s['end'], ',')}\n{s['text'].strip()}\n\n"
        for i, s in enumerate(segments)
    )


def vtt(segments: list[dict]) -> str:
    return "WEBVTT\n\n" + "".join(
        f"{_timestamp(s['start'], '.')} --> {_timestamp(s['end'], '.')}\n{s['text'].strip()}\n\n" for s in segments
    )


# --- multipart ---


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    headers: dict[str, str]  # lower-cased names
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class MultipartError(ValueError):
    pass


_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="a"; filename="b.png"` -> ("form-data", {"name": "a", "filename": "b.png"})."""
    main, _, rest = value.partition(";")
    params = {}
    for match in _PARAM.finditer(";" + rest):
        raw = match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[match.group(1).lower()] = raw
    return main.strip().lower(), params


def multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body (RFC 7578), strictly: a missing boundary, a part without
    `Content-Disposition: form-data; name=…` or a body without its closing delimiter is an error."""
    kind, params = header_params(content_type or "")
    if kind != "multipart/form-data":
        raise MultipartError(f"content type is {kind or 'missing'}, not multipart/form-data")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("no boundary in the content type")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 2:
        raise MultipartError("the boundary does not occur in the body")
    parts, closed = [], False
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            closed = True
            break
        line_end = piece.find(b"\r\n")
        if line_end < 0 or piece[:line_end].strip(b" \t"):
            raise MultipartError("a delimiter line is not followed by CRLF")
        piece = piece[line_end + 2:]
        head, sep, data = piece.partition(b"\r\n\r\n")
        if not sep:
            if piece.startswith(b"\r\n"):  # no headers at all
                head, data = b"", piece[2:]
            else:
                raise MultipartError("a part's headers do not end with an empty line")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if not line:
                continue
            name, colon, value = line.partition(":")
            if not colon:
                raise MultipartError(f"a malformed part header: {line!r}")
            headers[name.strip().lower()] = value.strip()
        disposition, disposition_params = header_params(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in disposition_params:
            raise MultipartError(f"a part without Content-Disposition: form-data; name=…: {headers}")
        parts.append(Part(disposition_params["name"], disposition_params.get("filename"), headers.get("content-type"),
                          headers, data))
    if not closed:
        raise MultipartError("the body does not end with the closing delimiter")
    return parts


# --- records ---


class ClientGone(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


@dataclass
class Recorded:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw: bytes  # the body exactly as received (de-chunked)
    received_at: float  # time.monotonic()
    json: dict | None = None
    parts: list[Part] | None = None  # multipart bodies
    parse_error: str | None = None
    directives: dict = field(default_factory=dict)
    status: int | None = None
    content_type: str | None = None  # of the answer
    stream: bool = False  # answered with a chunked or SSE body
    sent: bytearray = field(default_factory=bytearray)  # the answer body's bytes written (de-chunked)
    chunks_sent: list[int] = field(default_factory=list)  # sizes of the body chunks written
    events_sent: list[str] = field(default_factory=list)  # SSE event names, in order
    audio: bytes | None = None  # speech: the whole planned audio
    images: list[bytes] = field(default_factory=list)  # the PNGs answered (final images, in order)
    media: list[MediaItem] = field(default_factory=list)  # chat: the images and files received, decoded
    answer: dict | str | None = None  # the JSON object or text answered (a stream's final state)
    completed: bool = False
    finished_at: float | None = None  # time.monotonic() when the answer's last byte was written
    disconnected_at: float | None = None  # time.monotonic() when the client closed mid-answer

    @property
    def body(self) -> dict | None:
        return self.json

    def fields(self, name: str) -> list[str]:
        """The values of every multipart field `name` without a filename."""
        return [p.text for p in self.parts or [] if p.name == name and p.filename is None]

    def field(self, name: str) -> str | None:
        values = self.fields(name)
        return values[-1] if values else None

    def files(self, name: str | None = None) -> list[Part]:
        """The multipart parts with a filename (of field `name`)."""
        return [p for p in self.parts or [] if p.filename is not None and (name is None or p.name == name)]


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _int(value, name: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise Refused(400, f"Invalid type for '{name}': expected an integer, but got {value!r}.", name, "invalid_type")


# --- the server ---


class FakeMedia:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        chunk_delay_s: float = 0.02,
        event_delay_s: float = 0.01,
        speech_chunks: int = DEFAULT_SPEECH_CHUNKS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.chunk_delay_s = chunk_delay_s
        self.event_delay_s = event_delay_s
        self.speech_chunks = speech_chunks
        self.requests: list[Recorded] = []
        self.served_images: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sequence = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                owner._handle(self)

            def do_GET(self) -> None:
                owner._handle(self)

            def do_DELETE(self) -> None:
                owner._handle(self)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-media", daemon=True)
        self._thread.start()

    # --- for tests ---

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a provider's `base_url` is (requests go to {base_url}/images/generations, …)."""
        return self.root + "/v1"

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def received(self, path: str | None = None) -> list[Recorded]:
        """The recorded requests (for `path` only), oldest first; image downloads (GET /img/…) are not recorded."""
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def last(self, path: str | None = None) -> Recorded:
        found = self.received(path)
        assert found, f"the fake media upstream received no request{' for ' + path if path else ''}"
        return found[-1]

    def wait_disconnected(self, record: Recorded, timeout: float = 5.0) -> float | None:
        """Waits until the client closed `record`'s connection mid-answer; its time, or None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while record.disconnected_at is None and not record.completed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return record.disconnected_at

    def wait_finished(self, record: Recorded, timeout: float = 5.0) -> bool:
        """Waits until `record`'s answer was sent whole or the client left; whether it ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while record.disconnected_at is None and not record.completed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeMedia":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- serving ---

    def _next(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    def _update(self, record: Recorded, **changes) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(record, name, value)
            self._changed.notify_all()

    @staticmethod
    def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                line = handler.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += handler.rfile.read(size)
                handler.rfile.readline()
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        if handler.command == "GET" and split.path.startswith("/img/"):
            return self._serve_image(handler, split.path)
        raw = self._read_body(handler)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = Recorded(handler.command, split.path, parse_qs(split.query), headers, raw, time.monotonic())
        content_type = headers.get("content-type", "")
        if content_type.lower().startswith("multipart/"):
            try:
                record.parts = multipart(raw, content_type)
            except MultipartError as bad:
                record.parse_error = str(bad)
        elif raw:
            try:
                parsed = json.loads(raw)
                record.json = parsed if isinstance(parsed, dict) else None
                if record.json is None:
                    record.parse_error = "the body is not a JSON object"
            except ValueError as bad:
                record.parse_error = f"invalid JSON: {bad}"
        with self._changed:
            self.requests.append(record)
            self._changed.notify_all()
        exchange = _Exchange(self, handler, record, self._next())
        try:
            exchange.serve()
        except Refused as refused:
            exchange.send_error(refused.status, str(refused), refused.param, refused.code)
        except (ClientGone, BrokenPipeError, ConnectionResetError):
            self._update(record, disconnected_at=time.monotonic(), completed=False)
            handler.close_connection = True

    def _serve_image(self, handler: BaseHTTPRequestHandler, path: str) -> None:
        match = re.fullmatch(r"/img/(\d+)\.png", path)
        with self._lock:
            data = self.served_images.get(int(match.group(1))) if match else None
        if data is None:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


class _Exchange:
    """One request and its answer."""

    def __init__(self, owner: FakeMedia, handler: BaseHTTPRequestHandler, record: Recorded, sequence: int) -> None:
        self.owner, self.handler, self.record, self.sequence = owner, handler, record, sequence
        self.created = int(time.time())
        self.directives: dict = {}

    # --- plumbing ---

    def pause(self, seconds: float) -> None:
        """Sleeps up to `seconds`, raising ClientGone as soon as the client closes the connection."""
        if seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        sock = self.handler.connection
        while True:
            left = deadline - time.monotonic()
            try:
                readable, _, _ = select.select([sock], [], [], max(left, 0))
            except (OSError, ValueError):
                raise ClientGone()
            if readable:
                try:
                    peeked = sock.recv(1, socket.MSG_PEEK)
                except (BlockingIOError, InterruptedError):
                    peeked = b"?"
                except OSError:
                    raise ClientGone()
                if peeked == b"":
                    raise ClientGone()
                time.sleep(min(max(left, 0), 0.005))  # bytes of a next request: not a close
            if left <= 0:
                return

    def send_bytes(self, status: int, data: bytes, content_type: str, extra_headers: dict | None = None) -> None:
        handler = self.handler
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        # Recorded before the last byte goes out: a client may look as soon as it has the answer.
        with self.owner._changed:
            self.record.sent += data
            self.record.chunks_sent.append(len(data))
        self.owner._update(self.record, status=status, content_type=content_type, completed=True,
                           finished_at=time.monotonic())
        handler.wfile.write(data)
        handler.wfile.flush()

    def send_json(self, status: int, payload: dict, extra_headers: dict | None = None) -> None:
        if status < 400:
            self.owner._update(self.record, answer=payload)
        self.send_bytes(status, json.dumps(payload).encode(), "application/json", extra_headers)

    def send_error(self, status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> None:
        kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.send_json(status, {"error": {"message": message, "type": kind, "param": param, "code": code}}, headers)

    def start_stream(self, content_type: str) -> None:
        handler = self.handler
        self.owner._update(self.record, stream=True, status=200, content_type=content_type)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        with self.owner._changed:  # recorded first: the client may look as soon as it has the bytes
            self.record.sent += data
            if data:
                self.record.chunks_sent.append(len(data))
        try:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def event(self, name: str, payload: dict) -> None:
        with self.owner._changed:
            self.record.events_sent.append(name)
        self.write_chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    def finish_body(self, answer=None) -> None:
        self.owner._update(self.record, completed=True, finished_at=time.monotonic(),
                           **({"answer": answer} if answer is not None else {}))
        self.write_chunk(b"")  # the terminating zero-length chunk: the body ends cleanly

    def cut(self) -> None:
        """Closes the connection in the middle of the body, like a crashed upstream."""
        self.handler.close_connection = True
        try:
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.owner._update(self.record, completed=False)

    def delay(self) -> float:
        if "delay_ms" in self.directives:
            return float(self.directives["delay_ms"]) / 1000
        return -1.0

    # --- routing ---

    def serve(self) -> None:
        record, owner = self.record, self.owner
        routes = {
            "/v1/chat/completions": self.chat,
            "/v1/images/generations": lambda: self.images("generations"),
            "/v1/images/edits": lambda: self.images("edits"),
            "/v1/images/variations": lambda: self.images("variations"),
            "/v1/audio/speech": self.speech,
            "/v1/audio/transcriptions": lambda: self.transcription("transcribe"),
            "/v1/audio/translations": lambda: self.transcription("translate"),
        }
        route = routes.get(record.path)
        if record.method != "POST" or route is None:
            raise Refused(404, f"Invalid URL ({record.method} {record.path})", code="unknown_url")
        if owner.api_key is not None and record.headers.get("authorization") != f"Bearer {owner.api_key}":
            raise Refused(401, "Incorrect API key provided.", code="invalid_api_key")
        if record.parse_error:
            raise Refused(400, f"Could not parse the request body: {record.parse_error}")
        multipart_route = record.path in ("/v1/images/edits", "/v1/images/variations", "/v1/audio/transcriptions",
                                          "/v1/audio/translations")
        if multipart_route and record.parts is None:
            raise Refused(400, "This endpoint takes multipart/form-data.")
        if not multipart_route and record.json is None:
            raise Refused(400, "We could not parse the JSON body of your request.")
        self.directives = self._directives()
        record.directives = self.directives
        directives = self.directives
        if directives.get("first_byte_delay_ms"):
            self.pause(float(directives["first_byte_delay_ms"]) / 1000)
        if directives.get("hang_up"):
            return self.cut()
        if directives.get("status") is not None:
            status = int(directives["status"])
            status = status if 400 <= status <= 599 else 500
            headers = {"retry-after": str(directives["retry_after"])} if "retry_after" in directives else None
            return self.send_error(status, f"fake media error {status}", headers=headers)
        route()

    def _directives(self) -> dict:
        record = self.record
        value = record.json.get("fake") if record.json is not None else record.field("fake")
        if value is None and record.parts:
            # The SDK flattens an `extra_body={"fake": {...}}` dict into `fake[name]` fields.
            found = {}
            for part in record.parts:
                match = re.fullmatch(r"fake\[([^\]]+)\]", part.name)
                if match and part.filename is None:
                    try:
                        found[match.group(1)] = json.loads(part.text)
                    except ValueError:
                        found[match.group(1)] = part.text
            return found
        if value is None:
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise Refused(400, f"the `fake` field is not JSON: {value!r}", "fake")
        if not isinstance(value, dict):
            raise Refused(400, "the `fake` field is not an object", "fake")
        return value

    def value(self, name: str):
        """A field of the JSON body or a multipart text field."""
        if self.record.json is not None:
            return self.record.json.get(name)
        return self.record.field(name)

    # --- chat (vision) ---

    def chat(self) -> None:
        body = self.record.json
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise Refused(400, "'messages' is required.", "messages", "missing_required_parameter")
        items, words = [], 0
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                words += len(content.split())
                continue
            for part in content if isinstance(content, list) else []:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    words += len(str(part.get("text") or "").split())
                elif kind == "image_url":
                    url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
                    items.append(self._media("image", url))
                elif kind == "file":
                    spec = part.get("file") if isinstance(part.get("file"), dict) else {}
                    if spec.get("file_data") is not None:
                        item = self._media("file", spec.get("file_data"))
                        item.filename = spec.get("filename")
                        items.append(item)
                    else:
                        items.append(MediaItem("file", file_id=spec.get("file_id"), filename=spec.get("filename")))
        self.record.media = items
        text = self.directives.get("text") or describe_media(items)
        prompt = max(words + MEDIA_TOKENS * len(items), 1)
        completion = max(len(text.split()), 1)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        model = body.get("model", "?")
        base = {"id": f"chatcmpl-media{self.sequence}", "created": self.created, "model": model}
        if body.get("stream") is True:
            return self._chat_stream(body, base, text, usage)
        self.send_json(200, {**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "logprobs": None,
             "finish_reason": "stop"}], "usage": usage})

    def _media(self, kind: str, url) -> MediaItem:
        if not isinstance(url, str):
            return MediaItem(kind, error="no url")
        if not url.startswith("data:"):
            return MediaItem(kind, url=url)
        try:
            media_type, data = parse_data_url(url)
        except ValueError as bad:
            return MediaItem(kind, error=str(bad))
        return MediaItem(kind, media_type=media_type, data=data)

    def _chat_stream(self, body: dict, base: dict, text: str, usage: dict) -> None:
        self.start_stream("text/event-stream")
        base = {**base, "object": "chat.completion.chunk"}

        def data(payload) -> None:
            self.write_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

        pieces = re.findall(r"\S+\s*", text)
        delay = self.delay() if self.delay() >= 0 else self.owner.event_delay_s
        data({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for index, piece in enumerate(pieces):
            if self.directives.get("die_after") is not None and index >= int(self.directives["die_after"]):
                return self.cut()
            self.pause(delay)
            data({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        if self.directives.get("die_after") is not None:
            return self.cut()
        data({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            data({**base, "choices": [], "usage": usage})
        self.owner._update(self.record, answer={"text": text, "usage": usage})
        self.write_chunk(b"data: [DONE]\n\n")
        self.finish_body()

    # --- images ---

    def images(self, operation: str) -> None:
        record, directives = self.record, self.directives
        model = str(self.value("model") or ("dall-e-2" if operation != "generations" else "dall-e-3"))
        gpt_image = "gpt-image" in model
        prompt = self.value("prompt")
        inputs: list[Part] = []
        if operation != "generations":
            inputs = record.files("image") + record.files("image[]")
            if not inputs:
                raise Refused(400, "'image' is required.", "image", "missing_required_parameter")
        if operation != "variations" and not prompt:
            raise Refused(400, "'prompt' is required.", "prompt", "missing_required_parameter")
        n = _int(self.value("n"), "n", 1)
        if not 1 <= n <= 10:
            raise Refused(400, f"Invalid 'n': {n}. Expected a value between 1 and 10.", "n", "invalid_value")
        count = _int(directives.get("count"), "fake.count", n)
        response_format = self.value("response_format") or ("b64_json" if gpt_image else "url")
        if response_format not in ("url", "b64_json"):
            raise Refused(400, f"Invalid 'response_format': {response_format!r}.", "response_format", "invalid_value")
        size, quality = self.value("size"), self.value("quality")
        background = self.value("background") or "opaque"
        output_format = self.value("output_format") or "png"
        images = [png(8, 8, seed=f"image-{self.sequence}-{i}") for i in range(count)]
        self.owner._update(record, images=images)
        input_tokens = max(len(str(prompt or "").split()), 1) + MEDIA_TOKENS * len(inputs)
        text_tokens = input_tokens - MEDIA_TOKENS * len(inputs)

        def usage(inputs_counted: int, outputs: int) -> dict:
            text = text_tokens if inputs_counted else 0
            image = MEDIA_TOKENS * len(inputs) if inputs_counted else 0
            return {"input_tokens": text + image, "output_tokens": IMAGE_TOKENS * outputs,
                    "total_tokens": text + image + IMAGE_TOKENS * outputs,
                    "input_tokens_details": {"text_tokens": text, "image_tokens": image},
                    "output_tokens_details": {"image_tokens": IMAGE_TOKENS * outputs, "text_tokens": 0}}

        if _truthy(self.value("stream")) and operation != "variations":
            prefix = "image_generation" if operation == "generations" else "image_edit"
            partials = _int(self.value("partial_images"), "partial_images", 0)
            return self._images_stream(prefix, images, partials, size, quality, background, output_format, usage)
        items = []
        for data in images:
            if response_format == "url":
                with self.owner._lock:
                    number = len(self.owner.served_images) + 1
                    self.owner.served_images[number] = data
                item = {"url": f"{self.owner.root}/img/{number}.png"}
            else:
                item = {"b64_json": base64.b64encode(data).decode()}
            if directives.get("revised_prompt"):
                item["revised_prompt"] = directives["revised_prompt"]
            items.append(item)
        answer = {"created": self.created, "data": items}
        if gpt_image:
            answer["background"] = background if background in ("transparent", "opaque") else "opaque"
            answer["output_format"] = output_format if output_format in ("png", "webp", "jpeg") else "png"
            if size in IMAGE_SIZES:
                answer["size"] = size
            if quality in IMAGE_QUALITIES:
                answer["quality"] = quality
            answer["usage"] = usage(1, len(images))
        self.send_json(200, answer)

    def _images_stream(self, prefix, images, partials, size, quality, background, output_format, usage) -> None:
        self.start_stream("text/event-stream")
        delay = self.delay() if self.delay() >= 0 else self.owner.event_delay_s
        common = {"size": size if size in EVENT_SIZES else "auto", "quality": quality if quality in EVENT_QUALITIES else "auto",
                  "background": background if background in ("transparent", "opaque", "auto") else "auto",
                  "output_format": output_format if output_format in ("png", "webp", "jpeg") else "png"}
        sent = 0
        die_after = self.directives.get("die_after")
        last = None
        for index, data in enumerate(images):
            for partial in range(partials):
                if die_after is not None and sent >= int(die_after):
                    return self.cut()
                self.pause(delay)
                rough = png(4, 4, seed=f"partial-{self.sequence}-{index}-{partial}")
                self.event(f"{prefix}.partial_image", {
                    "type": f"{prefix}.partial_image", "b64_json": base64.b64encode(rough).decode(),
                    "created_at": self.created, **common, "partial_image_index": partial})
                sent += 1
            if die_after is not None and sent >= int(die_after):
                return self.cut()
            self.pause(delay)
            last = {"type": f"{prefix}.completed", "b64_json": base64.b64encode(data).decode(),
                    "created_at": self.created, **common, "usage": usage(1 if index == 0 else 0, 1)}
            self.event(f"{prefix}.completed", last)
            sent += 1
        self.finish_body(last)

    # --- speech ---

    def speech(self) -> None:
        body, directives = self.record.json, self.directives
        for name in ("model", "input", "voice"):
            if body.get(name) in (None, ""):
                raise Refused(400, f"'{name}' is required.", name, "missing_required_parameter")
        response_format = body.get("response_format") or "mp3"
        if response_format not in AUDIO_TYPES:
            raise Refused(400, f"Invalid 'response_format': {response_format!r}.", "response_format", "invalid_value")
        seconds = float(directives.get("seconds", DEFAULT_SPEECH_SECONDS))
        if response_format == "wav":
            audio = wav(seconds)
        elif response_format == "pcm":
            audio = pcm16(seconds)
        else:
            audio = FIXED_AUDIO[response_format]
        self.owner._update(self.record, audio=audio)
        count = max(1, _int(directives.get("chunks"), "fake.chunks", self.owner.speech_chunks))
        step = -(-len(audio) // count)
        pieces = [audio[i:i + step] for i in range(0, len(audio), step)]
        delay = self.delay() if self.delay() >= 0 else self.owner.chunk_delay_s
        die_after = directives.get("die_after")
        sse = body.get("stream_format") == "sse"
        self.start_stream("text/event-stream" if sse else AUDIO_TYPES[response_format])
        for index, piece in enumerate(pieces):
            if die_after is not None and index >= int(die_after):
                return self.cut()
            if index:
                self.pause(delay)
            if sse:
                self.event("speech.audio.delta", {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()})
            else:
                self.write_chunk(piece)
        if die_after is not None:
            return self.cut()  # every piece went out, but the body never ends
        if sse:
            words = max(len(str(body["input"]).split()), 1)
            done = {"type": "speech.audio.done",
                    "usage": {"input_tokens": words, "output_tokens": len(pieces), "total_tokens": words + len(pieces)}}
            self.pause(delay)
            self.event("speech.audio.done", done)
            return self.finish_body(done)
        self.finish_body()

    # --- transcriptions and translations ---

    def transcription(self, task: str) -> None:
        record, directives = self.record, self.directives
        files = record.files("file")
        if not files:
            raise Refused(400, "'file' is required.", "file", "missing_required_parameter")
        if not record.field("model"):
            raise Refused(400, "'model' is required.", "model", "missing_required_parameter")
        response_format = record.field("response_format") or "json"
        if response_format not in ("json", "verbose_json", "text", "srt", "vtt"):
            raise Refused(400, f"Invalid 'response_format': {response_format!r}.", "response_format", "invalid_value")
        measured = wav_duration(files[0].data)
        duration = float(directives["seconds"]) if "seconds" in directives else (
            measured if measured is not None else FALLBACK_DURATION)
        text = directives.get("text") or (TRANSCRIPT if task == "transcribe" else TRANSLATION)
        usage = None
        if directives.get("usage") == "duration":
            usage = {"type": "duration", "seconds": duration}
        elif directives.get("usage") == "tokens":
            words = len(text.split())
            usage = {"type": "tokens", "input_tokens": TRANSCRIPT_AUDIO_TOKENS, "output_tokens": words,
                     "total_tokens": TRANSCRIPT_AUDIO_TOKENS + words,
                     "input_token_details": {"text_tokens": 0, "audio_tokens": TRANSCRIPT_AUDIO_TOKENS}}
        if _truthy(record.field("stream")):
            return self._transcript_stream(text, usage)
        segments = segments_of(text, duration)
        if response_format == "json":
            return self.send_json(200, {"text": text, **({"usage": usage} if usage else {})})
        if response_format == "verbose_json":
            answer = {"task": task, "language": "english", "duration": duration, "text": text, "segments": segments}
            if task == "transcribe" and "word" in record.fields("timestamp_granularities[]"):
                answer["words"] = words_of(text, duration)
            if usage and usage["type"] == "duration":
                answer["usage"] = usage
            return self.send_json(200, answer)
        body = {"text": text + "\n", "srt": srt(segments), "vtt": vtt(segments)}[response_format]
        self.owner._update(record, answer=body)
        self.send_bytes(200, body.encode(), "text/plain; charset=utf-8")

    def _transcript_stream(self, text: str, usage: dict | None) -> None:
        self.start_stream("text/event-stream")
        delay = self.delay() if self.delay() >= 0 else self.owner.event_delay_s
        die_after = self.directives.get("die_after")
        for index, piece in enumerate(re.findall(r"\s*\S+", text)):
            if die_after is not None and index >= int(die_after):
                return self.cut()
            self.pause(delay)
            self.event("transcript.text.delta", {"type": "transcript.text.delta", "delta": piece})
        done = {"type": "transcript.text.done", "text": text, **({"usage": usage} if usage else {})}
        self.pause(delay)
        self.event("transcript.text.done", done)
        self.finish_body(done)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    upstream = FakeMedia(api_key=args.api_key, port=args.port)
    print(f"fake media listening on {upstream.base_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        upstream.close()


if __name__ == "__main__":
    main()
