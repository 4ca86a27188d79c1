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


def quiet_transformers() -> None:
    """No progress bars ("Loading weights") and no warnings below errors from transformers: a
    model load says what it does in BONSAI's own words, and a chat prompt stays clean."""
    import transformers
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    downloads_quiet = are_progress_bars_disabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if not downloads_quiet:
        enable_progress_bars()  # a download from the Hub still shows its progress


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    quiet_transformers()
    return _load("tokenizer", name, AutoTokenizer.from_pretrained)


def load_inference_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer for generating. The embedded model's comes straight from the
    ``tokenizer.json`` its conversion wrote, with the special tokens of its config: 1 s where
    ``AutoTokenizer`` takes 3–4 s to rebuild the same thing (it parses the 33 MB file in Python
    and rebuilds the vocabulary). It encodes and decodes exactly alike (a slow test checks that
    on the sample data); any other model goes through :func:`load_tokenizer`."""
    if name not in EMBEDDED_ALIASES:
        return load_tokenizer(name)
    import json

    from transformers import PreTrainedTokenizerFast

    quiet_transformers()
    folder = Path(ensure_embedded_model())
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    special = ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token")
    return PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        padding_side="left",  # as GemmaTokenizer
        **{key: config[key] for key in special if isinstance(config.get(key), str)},
    )


def load_model(name: str, *, dtype: torch.dtype | str | None = None) -> PreTrainedModel:
    """Load a causal LM on the CPU. ``dtype`` defaults to bfloat16 (fast here, see DESIGN.md)."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return _load("model", name, AutoModelForCausalLM.from_pretrained, dtype=dtype or torch.bfloat16)
