"""Starts the fake upstream, a recording upstream, the fake Anthropic upstream, the fake media upstream
and the gateway once per session.

SWITCHYARD_BIN and SWITCHYARD_FAKE_UPSTREAM_BIN (or its older name FAKE_UPSTREAM_BIN) override the
binaries (default: .build/debug/ in the repo).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

from capture_upstream import CaptureUpstream
from fake_anthropic import FakeAnthropic
from fake_media import FakeMedia
from raw_http import httpx
from sdk_helpers import MAX_BODY_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
# The model the gateway's `claude-fake` asks the fake Anthropic upstream for, and its price per 1K
# prompt / completion tokens.
CLAUDE_UPSTREAM_MODEL = "claude-upstream-1"
CLAUDE_PRICE = {"input": "0.01", "output": "0.02"}
# Media (issue 12): the models behind the fake media upstream (fake_media.py, in this process), the
# upstream model each asks for, and their prices (test_files.py, test_images.py, test_audio.py).
MEDIA_KEY = "media-secret"  # the `media` provider's api_key; the fake answers 401 to anything else
MEDIA_UPSTREAM = {
    "vision-m": "upstream-vision", "image-m": "upstream-dall-e", "gpt-image-m": "upstream-gpt-image-1",
    "tts-m": "upstream-tts", "tts-sec-m": "upstream-tts-sec", "whisper-m": "upstream-whisper",
}
VISION_PRICE = {"input": "0.01", "output": "0.02"}  # per 1K tokens
IMAGE_PRICE = {"1024x1024/standard": "0.04", "1024x1024/hd": "0.08", "*": "0.02"}  # per image
GPT_IMAGE_PRICE = {"input": "0.005", "output": "0.04"}  # per 1K tokens
TTS_CHARACTERS_PRICE = "15.00"  # per 1M input characters
TTS_SECOND_PRICE = "0.01"  # per second of audio produced
WHISPER_SECOND_PRICE = "0.0001"  # per second of audio transcribed
FILES_MAX_BYTES = 1048576  # files.max_bytes
AUDIO_MAX_UPLOAD_BYTES = 1048576  # audio.max_upload_bytes
START_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 20.0



def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(env: str, name: str, *aliases: str) -> Path:
    given = next((os.environ[var] for var in (env, *aliases) if os.environ.get(var)), None)
    path = Path(given or REPO_ROOT / ".build" / "debug" / name)
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `swift build` in {REPO_ROOT} first (or set {env})", pytrace=False)
    return path


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    stderr_path: Path
    stdout_lines: list[str] = field(default_factory=list)

    def stderr_tail(self, limit: int = 8000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


ADMIN_KEY = "sk-admin-sdk-tests"


def start(name: str, argv: list[str], ready_marker: str, workdir: Path, env: dict | None = None) -> tuple[Process, str]:
    """Runs argv and waits for the stdout line containing ready_marker; returns it too."""
    stderr_path = workdir / f"{name}.stderr.log"
    popen = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=open(stderr_path, "wb"), stdin=subprocess.DEVNULL, text=True, bufsize=1,
        env={**os.environ, **(env or {})},
    )
    process = Process(name, popen, stderr_path)
    ready = threading.Event()
    line_found: list[str] = []

    def pump() -> None:  # keeps draining stdout so the child never blocks on a full pipe
        for line in popen.stdout:
            process.stdout_lines.append(line)
            if ready_marker in line and not line_found:
                line_found.append(line.strip())
                ready.set()
        ready.set()

    threading.Thread(target=pump, name=f"{name}-stdout", daemon=True).start()
    ready.wait(START_TIMEOUT_S)
    if not line_found:
        process.stop()
        pytest.fail(
            f"{name} did not print {ready_marker!r} within {START_TIMEOUT_S}s (exit code {popen.poll()}).\n"
            f"argv: {argv}\nstdout:\n{''.join(process.stdout_lines)}\nstderr:\n{process.stderr_tail()}",
            pytrace=False,
        )
    return process, line_found[0]


CONFIG_TEMPLATE = """\
server: {{host: 127.0.0.1, port: {port}, max_body_bytes: {max_body}}}
database: sqlite:{tmp}/sdk.sqlite
log_level: warning
providers:
  fake: {{kind: openai, base_url: "http://127.0.0.1:{fake}/v1", api_key: upstream-secret, timeouts: {{connect: 2s, first_byte: 3s, idle: 2s}}}}
  fake-nostream: {{kind: openai, base_url: "http://127.0.0.1:{fake}/v1", stream: none}}
  fake-always: {{kind: openai, base_url: "http://127.0.0.1:{fake}/v1", stream: always}}
  dead: {{kind: openai, base_url: "http://127.0.0.1:{dead}/v1", timeouts: {{connect: 1s}}}}
  capture: {{kind: openai, base_url: "http://127.0.0.1:{capture}/v1", api_key: upstream-secret}}
  demo: {{kind: test, tokens: 12, token_delay: 1ms}}
  # The fake Anthropic Messages upstream (fake_anthropic.py, in this process); x-api-key sk-ant-test.
  claude: {{kind: anthropic, base_url: "http://127.0.0.1:{anthropic}/v1", api_key: sk-ant-test, timeouts: {{connect: 2s, first_byte: 3s, idle: 2s}}}}
  # Media (issue 12): the fake media upstream (fake_media.py, in this process): vision chat, images, audio.
  media: {{kind: openai, base_url: "http://127.0.0.1:{media}/v1", api_key: {media_key}, timeouts: {{connect: 2s, first_byte: 3s, idle: 2s}}}}
models:
  m: {{deployments: [{{provider: fake, model: upstream-m}}], aliases: [m-alias], context: 8192, description: "Fake upstream model for the SDK tests."}}
  m-nostream: {{deployments: [{{provider: fake-nostream, model: upstream-m}}]}}
  m-unbounded: {{deployments: [{{provider: fake, model: upstream-m}}]}}  # no context window: bodies at the size limit
  m-always: {{deployments: [{{provider: fake-always, model: upstream-m}}]}}
  m-dead: {{deployments: [{{provider: dead}}]}}
  m-capture: {{deployments: [{{provider: capture, model: upstream-capture}}]}}
  demo: {{deployments: [{{provider: demo}}]}}
  priced: {{deployments: [{{provider: fake, model: upstream-m}}], price: {{request: "0.01"}}}}
  emb: {{endpoints: [embeddings], deployments: [{{provider: fake, model: upstream-emb}}]}}
  m-429: {{deployments: [{{provider: fake, model: upstream-429}}]}}
  m-routed: {{deployments: [{{provider: dead, model: gone}}, {{provider: fake, model: upstream-routed, priority: 1}}]}}
  m-limited: {{deployments: [{{provider: fake, model: upstream-limited}}], limits: {{requests_per_minute: 3}}}}
  # Served by the fake Anthropic upstream; priced per token so the ledger shows how cache tokens count.
  claude-fake: {{deployments: [{{provider: claude, model: {claude_upstream}}}], price: {{input: "{claude_input}", output: "{claude_output}"}}}}
  # Media (issue 12), served by the fake media upstream; prices in MEDIA_* / *_PRICE above. The
  # per-second-of-audio price is `audio_second` (what ConfigLoader reads; contract12.md says per_second).
  vision-m: {{deployments: [{{provider: media, model: upstream-vision}}], price: {{input: "0.01", output: "0.02"}}}}
  image-m: {{endpoints: [images], deployments: [{{provider: media, model: upstream-dall-e}}], price: {{image: {{"1024x1024/standard": "0.04", "1024x1024/hd": "0.08", "*": "0.02"}}}}}}
  gpt-image-m: {{endpoints: [images], deployments: [{{provider: media, model: upstream-gpt-image-1}}], price: {{input: "0.005", output: "0.04"}}}}
  tts-m: {{endpoints: [speech], deployments: [{{provider: media, model: upstream-tts}}], price: {{characters: "15.00"}}}}
  tts-sec-m: {{endpoints: [speech], deployments: [{{provider: media, model: upstream-tts-sec}}], price: {{audio_second: "0.01"}}}}
  whisper-m: {{endpoints: [transcriptions, translations], deployments: [{{provider: media, model: upstream-whisper}}], price: {{audio_second: "0.0001"}}}}
# Media (issue 12): uploads for vision, and the audio upload limit.
files: {{max_bytes: 1048576, retention: 1h}}
audio: {{max_upload_bytes: 1048576}}
# The tests share one gateway: no cooldowns from failures (a test's scripted 500s must not steer the
# next test), and no new attempt after 2 s, so a first-byte timeout (3 s) is answered, not retried.
routing: {{deadline: 2s, backoff: 10ms, cooldown: {{failures: 1000000}}}}
"""


@dataclass
class Stack:
    url: str  # gateway base URL, ending in /v1
    fake_url: str
    capture: CaptureUpstream
    gateway: Process
    fake: Process
    key: str  # the demo account's key, announced on the gateway's first start
    config: Path | None = None  # the gateway's config file, for CLI commands against its database
    anthropic: FakeAnthropic | None = None  # the fake Anthropic upstream behind `claude-fake`
    media: FakeMedia | None = None  # the fake media upstream behind the media models (issue 12)


_STACK: Stack | None = None


@pytest.fixture(scope="session")
def stack():
    global _STACK
    gateway_bin = _binary("SWITCHYARD_BIN", "switchyard")
    fake_bin = _binary("SWITCHYARD_FAKE_UPSTREAM_BIN", "switchyard-fake-upstream", "FAKE_UPSTREAM_BIN")
    with tempfile.TemporaryDirectory(prefix="switchyard-sdk-") as tmp_name:
        tmp = Path(tmp_name)
        fake_port = free_port()
        fake, fake_line = start(
            "fake-upstream", [str(fake_bin), "--host", "127.0.0.1", "--port", str(fake_port)], "fake upstream listening on", tmp
        )
        capture = CaptureUpstream()
        claude = FakeAnthropic()
        media = FakeMedia(api_key=MEDIA_KEY)
        gateway = None
        try:
            port, dead = free_port(), free_port()  # nothing listens on `dead`
            config = tmp / "sdk.yaml"
            config.write_text(
                CONFIG_TEMPLATE.format(
                    port=port, fake=fake_port, dead=dead, capture=capture.port, tmp=tmp, max_body=MAX_BODY_BYTES,
                    anthropic=claude.port, claude_upstream=CLAUDE_UPSTREAM_MODEL, claude_input=CLAUDE_PRICE["input"],
                    claude_output=CLAUDE_PRICE["output"], media=media.port, media_key=MEDIA_KEY,
                )
            )
            gateway, line = start(
                "gateway", [str(gateway_bin), "serve", "--config", str(config)], "switchyard listening on", tmp,
                env={"SWITCHYARD_ADMIN_KEY": ADMIN_KEY},
            )
            url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
            keys = [m.group(0) for l in gateway.stdout_lines if "demo account" in l for m in [re.search(r"sk-sy-[0-9A-Za-z]+", l)] if m]
            assert keys, "the gateway did not announce the demo account's key:\n" + "".join(gateway.stdout_lines)
            _STACK = Stack(
                url=url, fake_url=fake_line.split("listening on ", 1)[1].strip(), capture=capture, gateway=gateway, fake=fake,
                key=keys[0], config=config, anthropic=claude, media=media,
            )
            yield _STACK
        finally:
            _STACK = None
            if gateway is not None:
                gateway.stop()
            fake.stop()
            capture.close()
            claude.close()
            media.close()


@pytest.fixture(scope="session")
def gateway_url(stack) -> str:
    return stack.url


@pytest.fixture(scope="session")
def client(stack) -> openai.OpenAI:
    with openai.OpenAI(base_url=stack.url, api_key=stack.key, max_retries=0, timeout=CLIENT_TIMEOUT_S) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def http(stack) -> httpx.Client:
    """Raw HTTP client for what the SDK hides (SSE bytes, headers, malformed bodies)."""
    with httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=CLIENT_TIMEOUT_S
    ) as raw:
        yield raw


@pytest.fixture
def capture(stack) -> CaptureUpstream:
    stack.capture.clear()
    return stack.capture


@pytest.fixture
def claude_upstream(stack) -> FakeAnthropic:
    """The fake Anthropic upstream behind `claude-fake`, its request log cleared."""
    stack.anthropic.clear()
    return stack.anthropic


@pytest.fixture
def media_upstream(stack) -> FakeMedia:
    """The fake media upstream behind the media models, its request log cleared."""
    stack.media.clear()
    return stack.media


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _STACK is not None:
        report.sections.append(("gateway stderr (tail)", _STACK.gateway.stderr_tail(4000)))
        if _STACK.gateway.popen.poll() is not None:
            report.sections.append(("gateway exited", f"exit code {_STACK.gateway.popen.returncode}"))
