"""The raw HTTP client of the tests (for what the SDK hides: SSE bytes, headers, malformed bodies).

It is the library the installed `openai` SDK is built on: `httpx2` for openai 3.x, `httpx` for 2.x.
Both have the same API for what the tests use (Client, stream, get, post, Timeout, Limits, Headers,
HTTPError, ReadTimeout, RemoteProtocolError, ReadError), so the tests write `httpx.…` either way:

    from raw_http import httpx
"""

from __future__ import annotations

try:
    import httpx2 as httpx
except ImportError:  # openai 2.x
    import httpx

__all__ = ["httpx"]
