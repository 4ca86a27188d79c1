"""Loading a student (or teacher) model and its tokenizer by name, offline-first."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError
from bonsai.student.embedded import EMBEDDED_MODEL, ensure_embedded_model

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_ALIASES = {EMBEDDED_MODEL, "embedded", "gemma-3-270m", "embedded:gemma3-270m"}


def resolve_base_model(name: str) -> str:
    """A folder or Hub id transformers can load. The embedded alias is converted on first use."""
    if name in EMBEDDED_ALIASES:
        return str(ensure_embedded_model())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BonsaiError(
                "not a model folder (no config.json)",
                file=path,
                hint="pass a Hugging Face model folder, a Hub id, or embedded:gemma-3-270m",
            )
        return str(path.resolve())
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BonsaiError("model folder does not exist", file=path)
    return name


def _load(what: str, name: str, loader: Any, **kwargs: Any) -> Any:
    source = resolve_base_model(name)
    try:
        return loader(source, **kwargs)
    except OSError as exc:
        raise BonsaiError(
            f"could not load {what} '{name}': {str(exc).splitlines()[0]}",
            hint="use a local folder or embedded:gemma-3-270m when offline",
        ) from None


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    return _load("tokenizer", name, AutoTokenizer.from_pretrained)


def load_model(name: str, *, dtype: torch.dtype | str | None = None) -> PreTrainedModel:
    """Load a causal LM on the CPU. ``dtype`` defaults to bfloat16 (fast here, see DESIGN.md)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return _load("model", name, AutoModelForCausalLM.from_pretrained, dtype=dtype or torch.bfloat16)
