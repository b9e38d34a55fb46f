"""The raw HTTP client of the tests (for what the SDK hides: SSE bytes, headers, malformed bodies).

It is the library the installed `openai` SDK is built on: `httpx2` for openai 3.x, `httpx` for 2.x.
Both have the same API for what the tests use (Client, stream, get, post, Timeout, Limits, Headers,
HTTPError, ReadTimeout, RemoteProtocolError, ReadError), so the tests write `httpx.…` either way:

    from raw_http import httpx
"""

from __future__ import annotations

import openai

# Chosen by the SDK's line, not by what imports: the `anthropic` SDK (in both lock files) brings
# httpx2 into the openai 2.x venv too.
if int(openai.__version__.split(".")[0]) >= 3:
    import httpx2 as httpx
else:  # openai 2.x
    import httpx

__all__ = ["httpx"]
