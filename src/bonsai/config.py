"""The garden's config file (``bonsai.toml``): the same values the stage dataclasses hold.

Flags on the command line override what the file says; the file only stores defaults a user chose.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_write_text


@dataclass
class StudentConfig:
    base_model: str = "embedded:gemma-3-270m"
    """Model the garden fine-tunes: 'embedded:gemma-3-270m', a Hugging Face id or a local folder."""


@dataclass
class TeacherConfig:
    backend: str = "template"
    """'template' (offline, deterministic), 'openai' (any OpenAI-compatible endpoint) or 'local'."""
    base_url: str | None = None
    """Endpoint of an OpenAI-compatible server, e.g. http://localhost:11434/v1 for Ollama."""
    model: str | None = None
    """Model name the endpoint serves."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (never the key itself)."""
    concurrency: int = 8
    language_policy: str = "en"
    """'en': reasoning in English; 'record': reasoning in the record's language."""
    requests_per_minute: float | None = None
    """Most requests per minute the endpoint allows (a hosted free tier), or None for no limit."""
    timeout: float = 120.0
    """Seconds to wait for one answer before retrying (a model that loads on first use is slow)."""


@dataclass
class GardenConfig:
    name: str = "my-bonsai"
    default_dataset: str | None = None
    """Dataset a command uses without --dataset (when unset: the garden's only dataset)."""
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)

    def to_toml(self) -> str:
        return _dump_toml(asdict(self))

    @classmethod
    def load(cls, path: Path) -> GardenConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise BonsaiError(f"not valid TOML: {exc}", file=path) from None
        except UnicodeDecodeError:
            raise BonsaiError("not UTF-8 text", file=path) from None
        default = data.get("default_dataset")
        if default is not None and (not isinstance(default, str) or not default.strip()):
            raise BonsaiError(
                "default_dataset must be the name of a dataset", file=path, field="default_dataset"
            )
        config = cls(name=str(data.get("name", cls.name)), default_dataset=default)
        for section, klass in (("student", StudentConfig), ("teacher", TeacherConfig)):
            values = data.get(section, {})
            known = {f.name for f in fields(klass)}
            unknown = set(values) - known
            if unknown:
                raise BonsaiError(
                    f"unknown key(s) in [{section}]: {', '.join(sorted(unknown))}",
                    file=path,
                    hint=f"known keys: {', '.join(sorted(known))}",
                )
            setattr(config, section, klass(**values))
        return config

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.to_toml())


def _dump_toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for our flat sections of strings, numbers and booleans."""
    top = [
        f"{k} = {_toml_value(v)}" if v is not None else f"# {k} ="
        for k, v in data.items()
        if not isinstance(v, dict)
    ]
    lines = ["# BONSAI garden config. Command-line flags override these values.", *top]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"]
            for k, v in value.items():
                lines.append(f"{k} = {_toml_value(v)}" if v is not None else f"# {k} =")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
