"""Test support: helpers for tests and benchmarks that need real parts running locally.

Nothing in BONSAI's stages imports this package; it ships so that ``bench/`` and the tests of an
installed copy can use it.

:class:`ScriptedServer` is a small OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies,
latency, status codes and malformed bodies, so the real ``openai`` client is exercised over HTTP.
"""

from bonsai.testing.server import ChatRequest, Reply, ScriptedServer, default_reasoning

__all__ = ["ChatRequest", "Reply", "ScriptedServer", "default_reasoning"]
