"""The teach stage's settings: one dataclass, filled from the garden config and then from flags."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bonsai.config import TeacherConfig
from bonsai.errors import BonsaiError
from bonsai.util.text import redact_url

BACKENDS: tuple[str, ...] = ("openai", "local", "template")
LANGUAGE_POLICIES: tuple[str, ...] = ("en", "record")


@dataclass
class TeachArgs:
    """What one ``bonsai teach`` run does. The teacher's settings default to the garden's
    ``[teacher]`` section (:class:`~bonsai.config.TeacherConfig`), so each default is written
    once."""

    dataset: str
    """Name of the dataset whose records get a reasoning."""
    backend: str = TeacherConfig.backend
    """'openai' (any OpenAI-compatible endpoint), 'local' (a model through transformers) or
    'template' (offline, deterministic, not an LLM)."""
    base_url: str | None = None
    """Endpoint of the OpenAI-compatible server (None: the client's default, api.openai.com)."""
    model: str | None = None
    """Model the endpoint serves, or for 'local' a model name/folder (default: the student)."""
    api_key_env: str | None = None
    """Environment variable holding the API key (default: OPENAI_API_KEY when it is set)."""
    concurrency: int = TeacherConfig.concurrency
    """Requests in flight at once."""
    language_policy: str = TeacherConfig.language_policy
    """'en': reasoning in English; 'record': reasoning in the record's own language."""
    only_missing: bool = False
    """Teach only records that have no reasoning yet (keep what a person wrote)."""
    limit: int | None = None
    """Teach at most this many records (the first ones, in dataset order)."""
    dry_run: bool = False
    """Print the rendered prompts of a few records; send nothing, write nothing."""
    max_attempts: int = 3
    """Answers asked per record: an invalid answer is asked again with the reason added."""
    max_retries: int = 5
    """Retries of one request after a 429, a 5xx, a timeout or a malformed reply."""
    backoff: float = 1.0
    """First retry delay in seconds; it doubles each retry (with jitter), up to ``backoff_max``."""
    backoff_max: float = 60.0
    """Longest delay between two retries, in seconds (also caps a server's Retry-After)."""
    timeout: float = TeacherConfig.timeout
    """Seconds to wait for one answer."""
    requests_per_minute: float | None = None
    """Most requests started per minute, or None for no limit."""
    max_tokens: int = 400
    """Longest answer, in tokens (a reasoning of 120 words needs about 200)."""
    temperature: float = 0.2
    """Sampling temperature: low, so that answers are focused and reruns similar."""

    def __post_init__(self) -> None:
        if not self.dataset:
            raise BonsaiError("a dataset name is needed", field="dataset")
        if self.backend not in BACKENDS:
            raise BonsaiError(
                f"unknown teacher backend '{self.backend}'",
                field="backend",
                hint=f"choose one of: {', '.join(BACKENDS)}",
            )
        if self.language_policy not in LANGUAGE_POLICIES:
            raise BonsaiError(
                f"unknown language policy '{self.language_policy}'",
                field="language_policy",
                hint="'en' (reasoning in English) or 'record' (in the record's language)",
            )
        positive = {
            "concurrency": self.concurrency,
            "max_attempts": self.max_attempts,
            "max_tokens": self.max_tokens,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise BonsaiError(f"must be a whole number of 1 or more, not {value!r}", field=name)
        if self.limit is not None and self.limit < 1:
            raise BonsaiError(f"must be 1 or more, not {self.limit}", field="limit")
        if self.max_retries < 0:
            raise BonsaiError("must be 0 or more", field="max_retries")
        for name in ("timeout", "backoff_max"):
            if getattr(self, name) <= 0:
                raise BonsaiError("must be more than 0 seconds", field=name)
        if self.backoff < 0:
            raise BonsaiError("must be 0 seconds or more", field="backoff")
        if self.requests_per_minute is not None and self.requests_per_minute <= 0:
            raise BonsaiError("must be more than 0, or unset for no limit", field="rpm")
        if not 0 <= self.temperature <= 2:
            raise BonsaiError("must be between 0 and 2", field="temperature")
        if self.backend == "openai" and not self.model:
            raise BonsaiError(
                "the openai backend needs a model name",
                field="model",
                hint="pass --model NAME or set model in [teacher] of bonsai.toml",
            )

    @classmethod
    def from_config(cls, config: TeacherConfig, dataset: str, **flags: Any) -> TeachArgs:
        """Config values first, then every flag that was given (None means not given).

        A ``--base-url`` with no backend named anywhere means the openai backend: there is no
        other use for a URL.
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            "backend": config.backend,
            "base_url": config.base_url,
            "model": config.model,
            "api_key_env": config.api_key_env,
            "concurrency": config.concurrency,
            "language_policy": config.language_policy,
            "requests_per_minute": config.requests_per_minute,
            "timeout": config.timeout,
        }
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = set(given) - known
        if unknown:
            raise TypeError(f"unknown teach settings: {sorted(unknown)}")
        if "backend" not in given and config.backend == "template" and given.get("base_url"):
            given["backend"] = "openai"
        values.update(given)
        return cls(dataset=dataset, **values)

    def settings(self) -> dict[str, Any]:
        """The settings as plain values, for the run's manifest and the database (never an API
        key, nor credentials written into the URL)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["base_url"] = redact_url(self.base_url)
        return values
