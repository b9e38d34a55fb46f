"""The engine tests share the SDK suite's helpers (raw_http picks httpx or httpx2)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))
