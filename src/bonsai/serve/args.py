"""Settings of ``bonsai serve``."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from bonsai.errors import BonsaiError

MB = 1024 * 1024
"""Bytes in a megabyte, as the size limits count them (MiB)."""
MAX_UPLOAD_MB = 64
"""Largest file ``bonsai ui`` imports by upload, in MB (a 16k-record Excel workbook is about
5 MB). The web interface runs on this server, so its limit sits beside the server's."""


@dataclass
class ServeArgs:
    """How the OpenAI-compatible server listens and what it accepts."""

    host: str = "127.0.0.1"
    """Address to listen on. The default only accepts connections from this machine."""
    port: int = 8000
    run: str | None = None
    """Run to serve: a run id, 'latest' or 'base'; None for the promoted/newest/base default."""
    api_key_env: str | None = None
    """Name of an environment variable holding the key clients must send (Bearer); None for no
    key. The key itself never appears on a command line."""
    queue_size: int = 8
    """Requests that may wait for the model; one more beyond that is refused with 429."""
    max_body_bytes: int = 1_048_576
    """Largest request body; a bigger one is refused with 413."""
    max_tokens: int = 1024
    """Most tokens one answer may ask for (``max_tokens`` above it is refused with 400)."""
    default_max_tokens: int = 256
    """Tokens per answer when a request does not say."""
    precision: str = "int8"
    """'int8' (weight-only int8 layers, faster) or 'bf16' (the model's own weights)."""
    engine: str = "transformers"
    """'transformers', or 'llama' (llama.cpp on the run's GGUF, when llama-cpp-python is
    installed)."""
    db_wait_s: float = 10.0
    """Seconds a write waits while another program holds the garden's database. Then feedback
    is answered 503 with Retry-After, and a chat turn is answered anyway and logged as soon as
    the database is free."""
    idle_timeout_s: float = 5.0
    """Seconds a connection may stay open without a request in progress."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise BonsaiError(f"port must be 0–65535, not {self.port}", field="port")
        for name in ("queue_size", "max_body_bytes", "max_tokens", "default_max_tokens"):
            if getattr(self, name) < 1:
                raise BonsaiError(f"{name} must be at least 1", field=name)
        for name in ("db_wait_s", "idle_timeout_s"):
            if not getattr(self, name) > 0:
                raise BonsaiError(f"{name} must be more than 0 seconds", field=name)
        if self.default_max_tokens > self.max_tokens:
            self.default_max_tokens = self.max_tokens

    def api_key(self) -> str | None:
        """The key from the named environment variable (an error if it is unset or empty)."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise BonsaiError(
                f"the environment variable {self.api_key_env} is not set or empty",
                field="api_key_env",
                hint=f"export {self.api_key_env}=… before `bonsai serve`",
            )
        return key

    @property
    def is_local(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
